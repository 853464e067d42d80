package recorder

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Exec channels (ssh CMD, scp, rsync, Ansible modules) have no terminal:
// their stdin, stdout and stderr are recorded as they are, each as its own
// stream of raw bytes ("exec-<channel>.<stdin|stdout|stderr>"), chunked,
// compressed and hash-chained like every other stream. Where each stretch of
// bytes falls in time is told by data events in events.jsonl (stream,
// offset, byte count), so readers can interleave them. Past the capture
// limit a stream is only counted and hashed; the channel's exec_end event
// carries every stream's total length and SHA-256, kept or not.

// Exec stream names, as Session.Data takes them and as data events and
// exec_end's streams name them.
const (
	StreamStdin  = "stdin"
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// execStreams are the stream names in record order: a record's dir field
// is the index plus one.
var execStreams = [...]string{StreamStdin, StreamStdout, StreamStderr}

// DefaultExecCaptureLimit is what Config.ExecCaptureLimit zero means.
const DefaultExecCaptureLimit = 16 << 20

// ExecCapture is how much of an exec channel's streams a session keeps, as
// session.json records it.
type ExecCapture struct {
	// Limit is the most bytes kept of each stream of a channel; 0 keeps
	// none (counts and hashes only).
	Limit int64 `json:"limit"`
	// Stdin is false when stdin is not kept at all (it may carry secrets a
	// pipeline pipes in).
	Stdin bool `json:"stdin"`
}

// execStreamName is the recording stream of one direction of channel ch.
func execStreamName(ch int, stream string) string {
	return "exec-" + strconv.Itoa(ch) + "." + stream
}

// isExecStream reports whether a chunk's stream is raw exec data.
func isExecStream(name string) bool {
	rest, ok := strings.CutPrefix(name, "exec-")
	if !ok {
		return false
	}
	num, dir, ok := strings.Cut(rest, ".")
	if _, err := strconv.Atoi(num); err != nil || !ok {
		return false
	}
	return dir == StreamStdin || dir == StreamStdout || dir == StreamStderr
}

// execKey names one stream of one channel.
type execKey struct {
	ch  int
	dir int // index in execStreams
}

// execTally is what a session knows of one exec stream: every byte is
// counted and hashed on the relay's path; the first Limit are queued.
type execTally struct {
	total, captured int64
	sum             hash.Hash
	truncated       bool
}

// capture is the session's exec capture policy: the config's, with stdin
// off for the targets the config names.
func (r *Recorder) capture(target string) ExecCapture {
	c := ExecCapture{Limit: r.Config.ExecCaptureLimit, Stdin: !r.Config.ExecStdinOff}
	switch {
	case c.Limit == 0:
		c.Limit = DefaultExecCaptureLimit
	case c.Limit < 0:
		c.Limit = 0
	}
	for _, t := range r.Config.ExecStdinOffTargets {
		if t == target {
			c.Stdin = false
		}
	}
	return c
}

// Data records p, bytes of stream (StreamStdin, StreamStdout or
// StreamStderr) of exec channel ch. Every byte is counted and hashed; the
// first ExecCapture.Limit of each stream are kept, and the first byte past
// the limit leaves a note saying where the stream was cut.
func (s *Session) Data(ch int, stream string, p []byte) error {
	dir := execDir(stream)
	if dir < 0 {
		return fmt.Errorf("record exec data: stream %q is not stdin, stdout or stderr", stream)
	}
	keep, cut := s.tally(execKey{ch, dir}, p)
	if cut >= 0 {
		c := ch
		_ = s.Event(Event{Type: EventNote, Channel: &c, Stream: stream, Offset: cut,
			Text: fmt.Sprintf("%s of channel %d truncated at %d bytes (recordings.exec_capture_limit): the rest is counted and hashed, not kept", stream, ch, cut)})
	}
	if len(keep) == 0 {
		return s.status()
	}
	return s.put(record{kind: kindData, ch: ch, dir: byte(dir + 1)}, keep)
}

func execDir(stream string) int {
	for i, name := range execStreams {
		if name == stream {
			return i
		}
	}
	return -1
}

// tally counts and hashes p and returns the part of it to keep, and the
// offset where capture stopped when this write crossed the limit (else -1).
func (s *Session) tally(k execKey, p []byte) (keep []byte, cut int64) {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	if s.exec == nil {
		s.exec = map[execKey]*execTally{}
	}
	t := s.exec[k]
	if t == nil {
		t = &execTally{sum: sha256.New()}
		s.exec[k] = t
	}
	t.sum.Write(p)
	t.total += int64(len(p))
	limit := s.capture.Limit
	if k.dir == 0 && !s.capture.Stdin {
		limit = 0
	}
	room := max(limit-t.captured, 0)
	keep = p[:min(int64(len(p)), room)]
	t.captured += int64(len(keep))
	cut = -1
	if len(keep) < len(p) && !t.truncated && limit > 0 {
		t.truncated, cut = true, t.captured
	}
	return keep, cut
}

// EndExec writes exec channel ch's exec_end event: for every stream that
// carried data (stdin included when it carried none), its length, SHA-256
// and how much was kept; with the exit status or the signal that ended
// the command when the target sent one.
func (s *Session) EndExec(ch int, exitStatus *int, signal string) error {
	streams := map[string]ExecStream{}
	s.execMu.Lock()
	for i, name := range execStreams {
		k := execKey{ch, i}
		t := s.exec[k]
		if t == nil {
			t = &execTally{sum: sha256.New()}
		}
		es := ExecStream{Bytes: t.total, SHA256: hex.EncodeToString(t.sum.Sum(nil)), Captured: t.captured, Truncated: t.truncated}
		switch {
		case i == 0 && !s.capture.Stdin:
			es.NotCaptured = "recordings.exec_capture_stdin is off"
		case s.capture.Limit == 0:
			es.NotCaptured = "recordings.exec_capture_limit is 0"
		}
		streams[name] = es
		delete(s.exec, k)
	}
	s.execMu.Unlock()
	c := ch
	return s.Event(Event{Type: EventExecEnd, Channel: &c, Streams: streams, ExitStatus: exitStatus, Signal: signal})
}

// dataGap is how close in time two writes of one exec stream must follow
// each other to share a data event: a bulk transfer's thousands of reads
// become a few events, while a dialogue's turns stay apart.
const dataGap = 50 * time.Millisecond

// pendingData is a data event not yet written: a stretch of one stream.
type pendingData struct {
	st          *stream
	ch, dir     int
	at          int64
	offset, len int64
}

// addData appends one exec data record to its raw stream, and notes it in
// the pending data event, which is written to events.jsonl once another
// stream or event comes in between, or too much time passed.
func (e *encoder) addData(r record, data []byte) *stream {
	dir := int(r.dir) - 1
	st := e.stream(execStreamName(r.ch, execStreams[dir]))
	p := &e.pending
	if p.st != st || r.at-p.at > int64(dataGap) {
		e.writePending()
		*p = pendingData{st: st, ch: r.ch, dir: dir, at: r.at, offset: st.total}
	}
	p.len += int64(len(data))
	st.buf = append(st.buf, data...)
	st.total += int64(len(data))
	if dir == 0 {
		st.input += int64(len(data))
	} else {
		st.output += int64(len(data))
	}
	return st
}

// writePending writes the pending data event, if any, to events.jsonl.
func (e *encoder) writePending() {
	p := &e.pending
	if p.st == nil {
		return
	}
	ch := p.ch
	ev := Event{Time: time.Unix(0, p.at).UTC(), Type: EventData, Channel: &ch, Stream: execStreams[p.dir], Offset: p.offset, Bytes: p.len}
	line, err := appendEvent(nil, &ev)
	*p = pendingData{}
	if err != nil {
		return // a data event has nothing appendEvent cannot write
	}
	e.addEventLine(ev.Time.UnixNano(), line)
}

// ExportStream writes the exact bytes kept of one exec stream, named as in
// the recording ("exec-0.stdout"), checking the hash chain as it reads.
// A stream the recording does not hold is an error naming the ones it does.
func ExportStream(ctx context.Context, src Source, w io.Writer, name string) error {
	if !isExecStream(name) {
		return fmt.Errorf("export %s: %q is not an exec stream name (exec-<channel>.stdin|stdout|stderr)", src.label(), name)
	}
	found := false
	var have []string
	_, err := src.walk(ctx, func(h ChunkHeader, payload *bufio.Reader) error {
		if h.Stream != name {
			if isExecStream(h.Stream) && !slices.Contains(have, h.Stream) {
				have = append(have, h.Stream)
			}
			return nil
		}
		found = true
		_, err := io.Copy(w, payload)
		return err
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", src.label(), err)
	}
	if !found {
		return fmt.Errorf("export %s: no stream %s in the recording (exec streams: %s)", src.label(), name, orNone(have))
	}
	return nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Exec streams often carry data that is compressed already (tar.gz, zip,
// images, encrypted files): compressing it again costs the recorder as
// much CPU as text and saves nothing. Before a chunk of an exec stream is
// compressed, a sample of it is: when the sample does not shrink by at
// least incompressibleSaving, the chunk is stored plain (chunk/1).
const (
	compressSample       = 32 << 10
	incompressibleSaving = 0.05
)

// incompressible reports whether an exec stream chunk's payload looks
// incompressible by its first compressSample bytes.
func incompressible(payload []byte) bool {
	sample := payload[:min(len(payload), compressSample)]
	if len(sample) < 4<<10 {
		return false // too little to judge, and cheap to compress anyway
	}
	buf := sampleBuffers.Get().(*[]byte)
	defer sampleBuffers.Put(buf)
	*buf = zstdEncoder().EncodeAll(sample, (*buf)[:0])
	return float64(len(*buf)) > float64(len(sample))*(1-incompressibleSaving)
}

var sampleBuffers = sync.Pool{New: func() any { b := make([]byte, 0, compressSample+1024); return &b }}
