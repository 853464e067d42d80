package proxy

import (
	"errors"
	"fmt"
)

// A Flow sees the bytes of one direction, as they are read, on the pump's
// goroutine; it must not block. It returns the bytes to write to the other
// side (p itself, or its own buffer, used before the next call) and an
// error that ends the link after out is written. A nil p asks a Flow that
// was paused to go on with what it kept. l is the link it serves.
type Flow func(l *Link, p []byte) (out []byte, err error)

// LinkError is why a link ended: a side's read or write failed (Err is
// io.EOF for a side that closed), or a Flow refused bytes.
type LinkError struct {
	Side int    // 0 or 1, as given to Link
	Op   string // "read", "write" or "flow"
	Err  error
}

func (e *LinkError) Error() string { return fmt.Sprintf("side %d %s: %v", e.Side, e.Op, e.Err) }

func (e *LinkError) Unwrap() error { return e.Err }

// ErrLinkStopped is Wait's error after Stop.
var ErrLinkStopped = errors.New("link stopped")
