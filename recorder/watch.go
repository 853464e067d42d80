package recorder

import (
	"bytes"
	"maps"
	"slices"
	"sync"
	"time"
)

// Kinds of Watched.
const (
	WatchTerminal = "terminal" // a pty channel opened: Cols, Rows
	WatchOutput   = "output"   // terminal output of Channel: Data
	WatchResize   = "resize"   // a pty channel's new size: Cols, Rows
	WatchEvent    = "event"    // an event (query, exec, file, ...): Data is its JSON line
	WatchData     = "data"     // exec stream bytes kept: Channel, Stream, Data
	WatchLost     = "lost"     // Lost records were dropped before this one
	WatchEnd      = "end"      // the session ended: Data is the end event's JSON line
)

// watchBuffer is how many records a watcher may have waiting. At a
// terminal's pace (a few hundred writes a second at most) that is seconds of
// slack; a watcher slower than that loses records and is told so, and the
// session never waits for it.
const watchBuffer = 1024

// Watched is one record of a live session as a watcher sees it, in the
// order the session wrote them.
type Watched struct {
	Time    time.Time
	Kind    string // WatchTerminal, WatchOutput, ...
	Channel int
	// Cols and Rows are a terminal's size (WatchTerminal, WatchResize).
	Cols, Rows int
	// Stream is stdin, stdout or stderr (WatchData).
	Stream string
	// Data is a copy the watcher owns.
	Data []byte
	// Lost counts the records dropped since the last one delivered
	// (WatchLost).
	Lost int64
}

// watcher is one tap on a session.
type watcher struct {
	ch     chan Watched
	lost   int64 // records dropped since the last one delivered
	closed bool
}

// taps is a session's watchers and what a new watcher starts from.
// Guarded by Session.mu, so watchers see records in queue order.
type taps struct {
	watchers []*watcher
	start    watchStart
}

// watchStart is what a new watcher is shown first, by Recorder.Watch and
// by Tail: the size of each terminal and the latest exec commands.
type watchStart struct {
	sizes map[int][2]int // pty channel → cols, rows
	execs [][]byte       // the last keptExecs exec events' JSON lines
}

// keptExecs is how many exec commands a new watcher is shown: a session
// runs a few; one that runs thousands shows the latest.
const keptExecs = 16

// size notes terminal ch's size.
func (w *watchStart) size(ch, cols, rows int) {
	if w.sizes == nil {
		w.sizes = map[int][2]int{}
	}
	w.sizes[ch] = [2]int{cols, rows}
}

// exec notes an exec event's JSON line, which w keeps.
func (w *watchStart) exec(line []byte) {
	if len(w.execs) == keptExecs {
		w.execs = w.execs[1:]
	}
	w.execs = append(w.execs, line)
}

// records are what a watcher starting at now is sent first: the terminals
// in channel order, then the exec commands.
func (w *watchStart) records(now time.Time) []Watched {
	evs := make([]Watched, 0, len(w.sizes)+len(w.execs))
	for _, ch := range slices.Sorted(maps.Keys(w.sizes)) {
		size := w.sizes[ch]
		evs = append(evs, Watched{Time: now, Kind: WatchTerminal, Channel: ch, Cols: size[0], Rows: size[1]})
	}
	for _, line := range w.execs {
		evs = append(evs, Watched{Time: now, Kind: WatchEvent, Data: line})
	}
	return evs
}

// Watch taps the live session id of this recorder: the records it writes
// from now on, and first the size of each terminal it has open. The channel
// closes after a WatchEnd event, or when stop is called. A watcher that
// does not keep up loses records (a WatchLost event says how many); it never
// slows the session. ok is false when no session id is live here.
func (r *Recorder) Watch(id string) (events <-chan Watched, stop func(), ok bool) {
	r.mu.Lock()
	s := r.live[id]
	r.mu.Unlock()
	if s == nil {
		return nil, nil, false
	}
	w := &watcher{ch: make(chan Watched, watchBuffer)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, nil, false
	}
	for _, ev := range s.taps.start.records(r.now()) {
		w.ch <- ev
	}
	s.taps.watchers = append(s.taps.watchers, w)
	var once sync.Once
	return w.ch, func() { once.Do(func() { s.unwatch(w) }) }, true
}

// unwatch removes and closes w unless the session's end already did.
func (s *Session) unwatch(w *watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.taps.watchers {
		if x == w {
			s.taps.watchers = append(s.taps.watchers[:i], s.taps.watchers[i+1:]...)
			break
		}
	}
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
}

// tap hands a record just queued to the watchers. Called with s.mu held,
// from put; with nobody watching it only notes terminal sizes.
func (s *Session) tap(r record, data []byte) {
	t := &s.taps
	switch {
	case r.kind == kindHeader || r.kind == kindResize:
		t.start.size(r.ch, r.cols, r.rows)
	case r.kind == kindEvent && s.meta.Protocol == "ssh" && isExecEvent(data):
		t.start.exec(append([]byte(nil), data...))
	}
	// Keystrokes are never watched: a password typed at a prompt stays in
	// the recording (when record_input is on) and off every screen.
	if len(t.watchers) == 0 || r.kind == kindInput {
		return
	}
	ev := watched(r, data)
	for _, w := range t.watchers {
		w.send(ev)
	}
}

// isExecEvent tells an exec event's JSON line by its type, which the
// encoder writes right after the time.
func isExecEvent(line []byte) bool {
	i := bytes.Index(line, []byte(`","type":`))
	return i >= 0 && bytes.HasPrefix(line[i+len(`","type":`):], []byte(`"`+EventExec+`"`))
}

// tapEnd tells the watchers the session ended and closes their channels.
// Called with s.mu held, from Close.
func (s *Session) tapEnd(at int64, line []byte) {
	ev := Watched{Time: time.Unix(0, at).UTC(), Kind: WatchEnd, Data: append([]byte(nil), line...)}
	for _, w := range s.taps.watchers {
		w.send(ev)
		w.closed = true
		close(w.ch)
	}
	s.taps.watchers = nil
}

// send delivers ev without waiting: a full channel drops it, and the next
// one delivered is preceded by a WatchLost event counting the drops.
func (w *watcher) send(ev Watched) {
	if w.lost > 0 {
		if len(w.ch)+2 > cap(w.ch) {
			w.lost++
			return
		}
		w.ch <- Watched{Time: ev.Time, Kind: WatchLost, Lost: w.lost}
		w.lost = 0
	}
	select {
	case w.ch <- ev:
	default:
		w.lost++
	}
}

// watched turns a queued record into what watchers get, with a copy of
// its bytes (the queue's arena is reused).
func watched(r record, data []byte) Watched {
	ev := Watched{Time: time.Unix(0, r.at).UTC(), Channel: r.ch, Cols: r.cols, Rows: r.rows}
	if len(data) > 0 && r.kind != kindHeader {
		ev.Data = append([]byte(nil), data...)
	}
	switch r.kind {
	case kindHeader:
		ev.Kind = WatchTerminal
	case kindOutput:
		ev.Kind = WatchOutput
	case kindResize:
		ev.Kind = WatchResize
	case kindEvent:
		ev.Kind = WatchEvent
	case kindData:
		ev.Kind, ev.Stream = WatchData, execStreams[r.dir-1]
	}
	return ev
}
