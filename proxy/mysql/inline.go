package mysql

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

// inlineFlush hands a pump session's finished statements to the recorder
// on the pump's goroutine, as the target's reads complete them: a ticker
// per session woke a thread 40 times a second even when idle, and
// waking another goroutine costs more than the encoding. A statement the
// recorder has no room for waits, in order, for a timer that runs only
// while statements wait.
type inlineFlush struct {
	timer atomic.Pointer[time.Timer] // nil: a goroutine-pumped session
	armed atomic.Bool
}

// startInline sets up the timer for statements that wait; it returns
// what hands over the last statements when the session ends.
func (ss *session) startInline() (stop func()) {
	t := time.AfterFunc(time.Hour, func() {
		ss.inline.armed.Store(false)
		ss.flushEvents()
	})
	t.Stop()
	ss.inline.timer.Store(t)
	return func() {
		t.Stop()
		ss.flushEvents()
	}
}

// armFlush starts the timer for waiting statements unless it runs; a
// goroutine-pumped session's ticker needs none.
func (ss *session) armFlush() {
	if t := ss.inline.timer.Load(); t != nil && ss.inline.armed.CompareAndSwap(false, true) {
		t.Reset(eventFlushEvery)
	}
}

// handOver gives the finished statements to the recorder without
// waiting, in order; it returns how many still wait (for the timer, or
// the pump's hand-over when they pile up). A recording error is left to
// the flush that follows (it ends the session). waiting is how many
// wait now.
func (ss *session) handOver(waiting int) int {
	if ss.inline.timer.Load() == nil { // not started (an audit alone)
		return waiting
	}
	if !ss.flushMu.TryLock() { // a flush runs: it or the timer takes them
		ss.armFlush()
		return waiting
	}
	defer ss.flushMu.Unlock()
	evs := ss.audit.take(ss.spare)
	i, _ := ss.rec.TryEvents(evs) // an error is the flush's to report
	if i == len(evs) {
		ss.spare = evs
		return 0
	}
	ss.spare = nil // evs[i:] go back
	n := ss.audit.putBack(evs[i:])
	ss.armFlush()
	return n
}

// putBack returns events the recorder had no room for to the front of
// the completed ones, in order, and says how many wait.
func (a *audit) putBack(rest []recorder.Event) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = append(slices.Clip(rest), a.done...)
	return len(a.done)
}
