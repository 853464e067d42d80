package recorder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// defaultMaxWriteWait is how long a relay write waits for buffer space when
// the spool falls behind: long enough to ride out a busy disk or a loaded
// machine, short enough that a stuck spool ends (or degrades) the session
// within seconds rather than freezing it.
const defaultMaxWriteWait = 2 * time.Second

// ErrRecordingFailed is returned by Session writes once the session cannot
// be recorded and Config.FailClosed is set: the proxy must end the session.
// Session.Err says why.
var ErrRecordingFailed = errors.New("recording failed")

// ErrCannotKeepUp is the cause when the spool fell behind for longer than
// the relay may wait.
var ErrCannotKeepUp = errors.New("spool cannot keep up with the session")

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("recording closed")

// Record kinds in the queue between the relay and the flusher.
const (
	kindOutput = 'o'
	kindInput  = 'i'
	kindResize = 'r'
	kindHeader = 'h'
	kindEvent  = 'e'
	kindData   = 'd' // exec stdin, stdout or stderr (exec.go)
)

// record is one queued write; its bytes live in the queue's arena.
type record struct {
	at         int64 // unix nanoseconds
	kind       byte
	ch         int
	off, n     int
	cols, rows int
	dir        byte // kindData: 1 + index in execStreams
	noWait     bool // put returns errNoRoom rather than wait for space
}

// queue is a batch of records the relay appended and the flusher drains.
type queue struct {
	recs  []record
	arena []byte
}

// keepBufferBelow is the capacity a quiet session's buffers may keep
// between batches; larger buffers from a burst are released when a batch
// uses less than a quarter of them, so idle sessions hold little memory.
const keepBufferBelow = 1 << 20

func (q *queue) reset() {
	q.recs = q.recs[:0]
	q.arena = recycle(q.arena)
}

// recycle empties b, releasing it when it is large and was mostly unused.
func recycle(b []byte) []byte {
	if cap(b) > keepBufferBelow && len(b) < cap(b)/4 {
		return nil
	}
	return b[:0]
}

// Session records one session. Its methods are safe for concurrent use;
// writes copy their arguments and return quickly.
type Session struct {
	rec   *Recorder
	meta  SessionMeta
	dir   string // store key prefix
	spool *spoolSession

	mu       sync.Mutex
	q        *queue
	spare    *queue
	space    chan struct{} // closed when the flusher drained the queue
	err      error         // why recording failed or degraded
	failed   chan struct{}
	closing  bool
	end      End
	dropped  int64
	wake     chan struct{}
	finished chan struct{}
	sealErr  error

	capture ExecCapture  // set at Open
	crossed atomic.Int64 // every byte that crossed (crossed.go)
	faster  atomic.Int64 // flush faster until this Unix ns time (flusher.go)
	execMu  sync.Mutex
	exec    map[execKey]*execTally
	taps    taps // live watchers (watch.go), guarded by mu
}

// Meta returns the session's metadata as recorded in session.json.
func (s *Session) Meta() SessionMeta { return s.meta }

// Dir returns the store key prefix of the session's objects.
func (s *Session) Dir() string { return s.dir }

// Failed is closed when the session must end because it cannot be recorded
// (only with Config.FailClosed). Proxies select on it next to their relay.
func (s *Session) Failed() <-chan struct{} { return s.failed }

// Err says why the recording failed or is degraded; nil while healthy.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// OpenTerminal starts the asciicast stream of pty channel ch with the
// terminal's size and TERM. Output on a channel without it gets 80x24, and
// so does a size of 0 (ssh -tt from a non-terminal asks for a 0x0 pty):
// a 0 width or height becomes 80 or 24, as terminals assume.
func (s *Session) OpenTerminal(ch, cols, rows int, term string) error {
	cols, rows = termSize(cols, rows)
	return s.put(record{kind: kindHeader, ch: ch, cols: cols, rows: rows}, []byte(term))
}

// termSize replaces a width or height of 0 (unknown) by 80 or 24.
func termSize(cols, rows int) (int, int) {
	if cols <= 0 {
		cols = 80
	}
	if rows <= 0 {
		rows = 24
	}
	return cols, rows
}

// Output records terminal output p of pty channel ch (asciicast "o").
func (s *Session) Output(ch int, p []byte) error {
	s.crossed.Add(int64(len(p)))
	return s.put(record{kind: kindOutput, ch: ch}, p)
}

// Input records keystrokes of pty channel ch (asciicast "i") when
// Config.RecordInput is set, and drops them otherwise.
func (s *Session) Input(ch int, p []byte) error {
	s.crossed.Add(int64(len(p)))
	if !s.rec.Config.RecordInput {
		return s.status()
	}
	return s.put(record{kind: kindInput, ch: ch}, p)
}

// Resize records a window change of pty channel ch (asciicast "r"); a 0
// width or height is recorded as 80 or 24, as in OpenTerminal.
func (s *Session) Resize(ch, cols, rows int) error {
	cols, rows = termSize(cols, rows)
	return s.put(record{kind: kindResize, ch: ch, cols: cols, rows: rows}, nil)
}

// Event appends ev to events.jsonl; a zero ev.Time means now.
func (s *Session) Event(ev Event) error {
	_, err := s.event(&ev, true)
	return err
}

// TryEvents is Event for a caller that must not block (a pump's
// goroutine), for a run of events in order: it queues them until the
// buffer has no room (where Event would wait for the flusher) or
// recording fails, and returns how many it queued, recording nothing of
// the rest, so the caller keeps evs[n:] for later (the proxies' hand-over
// of finished statements on a pump's goroutine).
func (s *Session) TryEvents(evs []Event) (n int, err error) {
	for ; n < len(evs); n++ {
		ok, err := s.event(&evs[n], false)
		if err != nil || !ok {
			return n, err
		}
	}
	return n, nil
}

// errNoRoom is put's error when it may not wait for space.
var errNoRoom = errors.New("no room in the recording buffer")

// event encodes ev and queues it; wait says whether it may wait for
// space. It reports whether ev was queued.
func (s *Session) event(ev *Event, wait bool) (bool, error) {
	if ev.Time.IsZero() {
		ev.Time = s.rec.now()
	}
	buf := eventBuffers.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxKeptEventBuffer {
			eventBuffers.Put(buf)
		}
	}()
	b, err := appendEvent((*buf)[:0], ev)
	*buf = b
	if err != nil {
		s.crossed.Add(crossedBy(ev))
		return false, fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	err = s.put(record{kind: kindEvent, at: ev.Time.UnixNano(), noWait: !wait}, b) // put copies b
	if err == errNoRoom {
		return false, nil
	}
	s.crossed.Add(crossedBy(ev))
	return err == nil, err
}

// eventBuffers lend Event the buffer it encodes into; one that grew past
// maxKeptEventBuffer (a huge statement) is left to the collector.
var eventBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxKeptEventBuffer = 64 << 10

// status is the error a write returns right now: ErrRecordingFailed once
// the session must end, nil otherwise.
func (s *Session) status() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeErr()
}

func (s *Session) writeErr() error {
	if s.err != nil && s.rec.Config.FailClosed {
		return fmt.Errorf("%w: %w", ErrRecordingFailed, s.err)
	}
	return nil
}

// wakeFlusherAtMost is how much queued data wakes the flusher before its
// next tick. Waking it for every write would cost a goroutine switch per
// relay read; nothing becomes durable sooner that way, since chunks are
// written when full or at the tick.
const wakeFlusherAtMost = 256 << 10

func (r *Recorder) wakeFlusherAt() int { return min(wakeFlusherAtMost, r.bufferSize()/4) }

// put queues one record, waiting up to Recorder.MaxWriteWait for space.
func (s *Session) put(r record, data []byte) error {
	deadline := time.Time{}
	s.mu.Lock()
	for {
		if s.closing {
			s.mu.Unlock()
			return ErrClosed
		}
		if err := s.writeErr(); err != nil {
			s.mu.Unlock()
			return err
		}
		if len(s.q.arena)+len(data) <= s.rec.bufferSize() || len(s.q.arena) == 0 {
			break
		}
		if r.noWait {
			s.mu.Unlock()
			s.poke()
			return errNoRoom
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(s.rec.maxWriteWait())
		}
		if !s.waitSpace(deadline) {
			return s.overflow(len(data))
		}
	}
	if r.at == 0 {
		r.at = s.rec.now().UnixNano()
	}
	r.off, r.n = len(s.q.arena), len(data)
	s.q.arena = append(grow(s.q.arena, len(data)), data...)
	s.q.recs = append(s.q.recs, r)
	s.tap(r, data)
	wake := len(s.q.arena) >= s.rec.wakeFlusherAt()
	s.mu.Unlock()
	if wake {
		s.poke()
	}
	return nil
}

// waitSpace releases the lock until the flusher drains the queue or the
// deadline passes; it returns with the lock held, false on timeout.
func (s *Session) waitSpace(deadline time.Time) bool {
	space := s.space
	s.mu.Unlock()
	s.poke()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-space:
		s.mu.Lock()
		return true
	case <-t.C:
		s.mu.Lock()
		return false
	}
}

// overflow handles a write that found no space in time; called locked.
func (s *Session) overflow(n int) error {
	s.dropped += int64(n)
	s.mu.Unlock()
	s.rec.Metrics.dropped(n)
	s.fail(ErrCannotKeepUp)
	return s.status()
}

func (s *Session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// fail records the first cause of failure and tells the proxy.
func (s *Session) fail(cause error) {
	s.mu.Lock()
	first := s.err == nil
	if first {
		s.err = cause
	}
	s.mu.Unlock()
	if !first {
		return
	}
	s.rec.logger().Warn("recording degraded", "session", s.meta.ID, "err", cause, "fail_closed", s.rec.Config.FailClosed)
	if s.rec.Config.FailClosed {
		close(s.failed)
	}
	s.rec.report(StateChange{Meta: s.meta, State: StateDegraded, Dir: s.dir, Reason: cause.Error()})
}

// Close writes the end event, flushes, seals the recording with its signed
// manifest and hands it to the uploader. It waits for the flusher at most
// until ctx is done.
func (s *Session) Close(ctx context.Context, end End) error {
	ev := Event{Time: s.rec.now(), Type: EventEnd, ExitStatus: end.ExitStatus, Reason: end.Reason, Bytes: s.crossed.Load()}
	line, err := appendEvent(nil, &ev)
	if err != nil {
		return fmt.Errorf("close recording %s: encode end event: %w", s.meta.ID, err)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	// The end event goes in even past the buffer limit or after a failure:
	// it is the last record, and says how the session ended.
	s.q.recs = append(s.q.recs, record{kind: kindEvent, at: ev.Time.UnixNano(), off: len(s.q.arena), n: len(line)})
	s.q.arena = append(s.q.arena, line...)
	s.closing, s.end = true, end
	s.tapEnd(ev.Time.UnixNano(), line)
	s.mu.Unlock()
	s.poke()
	select {
	case <-s.finished:
		return s.sealErr
	case <-ctx.Done():
		return fmt.Errorf("close recording %s: %w", s.meta.ID, ctx.Err())
	}
}
