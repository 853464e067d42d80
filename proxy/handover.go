package proxy

import "sync"

// Handover moves slow work (handing recorded statements to the recorder)
// off a pump's goroutine, which relays for other sessions too: one
// goroutine at a time runs it, and a backlog that grew too big stops
// reading one side of the link until it is done. The zero value is ready.
type Handover struct {
	mu       sync.Mutex
	flushing bool // a hand-over goroutine runs
	paused   bool // side is not read until it is done
}

// Give runs flush on its own goroutine unless one already runs; full
// pauses side of l until that goroutine is done. flush reports whether
// side may be read again: false leaves it paused for a session that is
// ending (its recording failed), so nothing more is relayed unrecorded.
// Called from l's Flow.
func (h *Handover) Give(l *Link, side int, full bool, flush func() bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if full && !h.paused {
		h.paused = true
		l.Pause(side)
	}
	if h.flushing {
		return
	}
	h.flushing = true
	go func() {
		resume := flush()
		h.mu.Lock()
		h.flushing = false
		paused := h.paused
		h.paused = false
		h.mu.Unlock()
		if paused && resume {
			l.Resume(side)
		}
	}()
}
