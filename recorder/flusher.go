package recorder

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Default sizes; Recorder fields override them.
const (
	defaultChunkSize  = 4 << 20  // big enough to amortise fsync, small enough to upload in one PUT
	defaultBufferSize = 16 << 20 // about 80 ms of a saturated relay at 200 MB/s
)

// stream is one output object being filled: a pty channel's asciicast or
// events.jsonl.
type stream struct {
	name        string
	cast        bool
	buf         []byte
	first, last int64
	records     int64
	output      int64
	input       int64
	start       int64 // cast: time zero of the asciicast
	started     bool  // cast: header written
	carry       [2][]byte
	total       int64       // exec: bytes written to the stream so far
	cmds        *cmdTracker // cast: the commands typed in the terminal (commands.go)
}

// encoder turns queued records into stream payloads and cuts chunks,
// which it hands to the session's chunk writer.
type encoder struct {
	s       *Session
	streams map[string]*stream
	order   []*stream
	jobs    chan<- *chunkJob
	free    chan []byte // buffers the chunk pipeline is done with
	pending pendingData // the exec data event not yet written (exec.go)
}

// run is the session's flusher: it drains the queue whenever poked, cuts
// chunks as they fill, and has every stream written and fsync'd at least
// once per flush interval. It exits after sealing the closed session.
func (s *Session) run(interval time.Duration) {
	defer close(s.finished)
	jobs, written := make(chan *chunkJob, pendingChunks), make(chan struct{})
	enc := &encoder{s: s, streams: map[string]*stream{}, jobs: jobs, free: make(chan []byte, spareBuffers)}
	go s.writeChunks(jobs, enc.free, written)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	every := interval
	for {
		flush := false
		select {
		case <-s.wake:
		case <-tick.C:
			flush = true
		}
		var faster bool
		every, faster = s.pace(tick, every, interval)
		flush = flush || faster // a new watcher gets what is held at once
		if s.drain(enc) {
			enc.releaseCarry()
			enc.flushAll()
			close(jobs)
			<-written
			s.sealErr = s.finish()
			return
		}
		if flush {
			enc.flushAll()
			jobs <- &chunkJob{sync: true}
		}
	}
}

// WatchedFlushInterval is how often the recording of a session watched
// from another replica's console is flushed (FlushFasterUntil): that
// console follows it in the store, and shows its output within a second
// (this, the upload, and a poll of the store).
const WatchedFlushInterval = 250 * time.Millisecond

// FlushFasterUntil has the session's recording flushed, and so uploaded,
// every WatchedFlushInterval (or its flush interval, if shorter) until t,
// then at its flush interval again. A later t extends the faster pace, an
// earlier one is ignored. It never blocks, and takes no lock the relay
// writes through.
func (s *Session) FlushFasterUntil(t time.Time) {
	until := t.UnixNano()
	for {
		cur := s.faster.Load()
		if until <= cur {
			return
		}
		if s.faster.CompareAndSwap(cur, until) {
			break
		}
	}
	select {
	case s.wake <- struct{}{}: // the flusher takes the new pace now, not at its next tick
	default:
	}
}

// FlushFasterUntil is Session.FlushFasterUntil for the live session id of
// this recorder; it reports whether one is live here.
func (r *Recorder) FlushFasterUntil(id string, t time.Time) bool {
	r.mu.Lock()
	s := r.live[id]
	r.mu.Unlock()
	if s == nil {
		return false
	}
	s.FlushFasterUntil(t)
	return true
}

// pace resets tick to the flush interval the session needs now: the
// faster one while it is watched (FlushFasterUntil), interval otherwise.
// every is the ticker's current period; pace returns the new one, and
// whether it just became faster. A session never watched costs one
// atomic load.
func (s *Session) pace(tick *time.Ticker, every, interval time.Duration) (time.Duration, bool) {
	until := s.faster.Load()
	if until == 0 && every == interval {
		return every, false
	}
	want := interval
	if time.Now().UnixNano() < until {
		want = min(interval, WatchedFlushInterval)
	}
	if want != every {
		tick.Reset(want)
	}
	return want, want < every
}

// drain swaps the queue for the spare one and encodes what was in it.
func (s *Session) drain(enc *encoder) (closing bool) {
	s.mu.Lock()
	q := s.q
	s.q, s.spare = s.spare, q
	closing = s.closing
	close(s.space)
	s.space = make(chan struct{})
	s.mu.Unlock()
	for _, r := range q.recs {
		enc.add(r, q.arena[r.off:r.off+r.n])
	}
	q.reset()
	return closing
}

func (e *encoder) stream(name string) *stream {
	st := e.streams[name]
	if st == nil {
		st = &stream{name: name, cast: name != eventsStream && !isExecStream(name)}
		e.streams[name] = st
		e.order = append(e.order, st)
	}
	return st
}

// add encodes one record into its stream and cuts a chunk when it is full.
func (e *encoder) add(r record, data []byte) {
	var st *stream
	switch r.kind {
	case kindData:
		st = e.addData(r, data)
	case kindEvent:
		e.writePending()
		e.addEventLine(r.at, data)
		return
	default:
		e.writePending()
		st = e.stream(castStream(r.ch))
		e.addCast(st, r, data)
		e.trackCommands(st, r, data)
	}
	e.counted(st, r.at)
}

// addEventLine appends one events.jsonl line.
func (e *encoder) addEventLine(at int64, line []byte) {
	st := e.stream(eventsStream)
	st.buf = append(append(st.buf, line...), '\n')
	e.counted(st, at)
}

// counted counts a record into st and cuts a chunk when st is full.
func (e *encoder) counted(st *stream, at int64) {
	if st.records == 0 {
		st.first = at
	}
	st.records++
	st.last = max(st.last, at)
	if len(st.buf) >= e.s.rec.chunkSize() {
		e.cut(st)
	}
}

func (e *encoder) addCast(st *stream, r record, data []byte) {
	if !st.started {
		cols, rows, term := 80, 24, ""
		if r.kind == kindHeader {
			cols, rows, term = r.cols, r.rows, string(data)
		}
		st.buf = appendCastHeader(st.buf, cols, rows, time.Unix(0, r.at), term)
		st.start, st.started = r.at, true
		if r.kind == kindHeader {
			return
		}
	}
	t := time.Duration(max(r.at-st.start, 0))
	switch r.kind {
	case kindHeader, kindResize:
		st.buf = appendCastEvent(st.buf, t, 'r', []byte(strconv.Itoa(r.cols)+"x"+strconv.Itoa(r.rows)))
	case kindOutput:
		st.output += int64(len(data))
		st.appendPieces(t, 0, 'o', data)
	case kindInput:
		st.input += int64(len(data))
		st.appendPieces(t, 1, 'i', data)
	}
}

// maxCastPrefix bounds what an asciicast event line holds besides its data.
const maxCastPrefix = 64

// maxEventData bounds the data of one asciicast event, so that readers
// hold at most one short line in memory however large a relay's write was.
const maxEventData = 32 << 10

// appendPieces splits data into events of at most maxEventData bytes,
// cutting only between UTF-8 characters.
func (st *stream) appendPieces(t time.Duration, slot int, code byte, data []byte) {
	for len(data) > maxEventData {
		cut := maxEventData
		for cut > maxEventData-utf8.UTFMax && !utf8.RuneStart(data[cut]) {
			cut--
		}
		st.buf = st.appendText(st.buf, t, slot, code, data[:cut])
		data = data[cut:]
	}
	st.buf = st.appendText(st.buf, t, slot, code, data)
}

// appendText appends an "o" or "i" event, holding back an incomplete UTF-8
// sequence at the end for the next write of the same kind.
func (st *stream) appendText(dst []byte, t time.Duration, slot int, code byte, data []byte) []byte {
	if c := st.carry[slot]; len(c) > 0 {
		data = append(c, data...)
		st.carry[slot] = nil
	}
	if n := incompleteTail(data); n > 0 {
		st.carry[slot] = append([]byte(nil), data[len(data)-n:]...)
		data = data[:len(data)-n]
	}
	if len(data) == 0 {
		return dst
	}
	return appendCastEvent(dst, t, code, data)
}

// releaseCarry records bytes held back for an incomplete UTF-8 sequence
// that will never be completed, as the session is ending.
func (e *encoder) releaseCarry() {
	for _, st := range e.order {
		t := time.Duration(max(st.last-st.start, 0))
		for slot, code := range []byte{'o', 'i'} {
			if c := st.carry[slot]; len(c) > 0 {
				st.buf = appendCastEvent(st.buf, t, code, c)
				st.carry[slot] = nil
			}
		}
	}
}

// flushAll cuts a chunk of every stream holding data.
func (e *encoder) flushAll() {
	e.writePending()
	for _, st := range e.order {
		if len(st.buf) > 0 {
			e.cut(st)
		}
	}
}

// cut hands st's buffer to the chunk pipeline as the next chunk: its
// compression starts now, and the writer stores it in chain order.
func (e *encoder) cut(st *stream) {
	stats := chunkStats{stream: st.name, first: time.Unix(0, st.first).UTC(), last: time.Unix(0, st.last).UTC(),
		records: st.records, output: st.output, input: st.input}
	plain := e.s.behind() || (isExecStream(st.name) && e.s.rec.Config.Compression != CompressionNone && incompressible(st.buf))
	j := &chunkJob{payload: st.buf, stats: stats, ready: make(chan struct{}), plain: plain}
	full := len(st.buf) >= e.s.rec.chunkSize()
	go e.s.rec.encodeChunk(j, e.free)
	e.jobs <- j
	st.buf = takeBuffer(e.free)
	if st.buf == nil && full { // busy: the next chunk fills too, allocate it whole
		st.buf = make([]byte, 0, e.s.rec.chunkSize()+maxEscapedLen(maxEventData)+maxCastPrefix)
	}
	st.records, st.output, st.input = 0, 0, 0
}

// behind reports whether the relay has queued half the buffer while the
// flusher was busy: the recording is falling behind the session.
func (s *Session) behind() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q.arena) >= s.rec.bufferSize()/2
}

// lost accounts for data the spool could not take.
func (s *Session) lost(n int, err error) {
	s.mu.Lock()
	s.dropped += int64(n)
	s.mu.Unlock()
	s.rec.Metrics.dropped(n)
	s.fail(err)
}

// finish seals the recording once its last chunks are written, and hands
// it to the uploader. Chunks written while closing were not queued for
// upload (see writeChunks): a short session reaches the uploader sealed
// and whole, which the file store takes by one directory rename.
func (s *Session) finish() error {
	defer s.rec.forget(s)
	if err := s.spool.syncChunks(); err != nil {
		s.fail(err)
	}
	m := manifestFrom(s.meta.ID, s.spool.entries)
	s.mu.Lock()
	m.State, m.ExitStatus, m.Counts.DroppedBytes = ManifestComplete, s.end.ExitStatus, s.dropped
	if s.err != nil {
		m.State, m.Reason = ManifestDegraded, s.err.Error()
	}
	s.mu.Unlock()
	m.StartedAt, m.EndedAt = s.meta.StartedAt, s.rec.now().UTC()
	if err := seal(s.spool.dir, m, s.rec.Key); err != nil {
		// Recovery will need the log now: make it durable, and ship what
		// is in the spool meanwhile.
		if s.spool.keepLog() == nil {
			s.spool.close()
			s.rec.queueUpload(s.meta.ID)
		}
		s.rec.logger().Error("seal recording; it will be recovered as incomplete on restart", "session", s.meta.ID, "err", err)
		return fmt.Errorf("seal recording %s: %w", s.meta.ID, err)
	}
	s.spool.release()
	// Reported before the upload is queued: the uploader reports stored
	// from its own goroutine, and an index must not end at uploading.
	s.rec.report(StateChange{Meta: s.meta, State: StateUploading, Dir: s.dir, EndedAt: m.EndedAt,
		Bytes: max(s.crossed.Load(), m.Counts.OutputBytes+m.Counts.InputBytes), Events: m.Counts.Events, Reason: m.Reason})
	s.rec.handOver(sealedSession{meta: s.meta, manifest: m})
	return nil
}
