//go:build !linux

package proxy

import (
	"errors"
	"net"
)

// Pump relays nothing here: it waits on epoll, which only Linux has.
// Usable reports false, so the proxies relay every session with their
// goroutine pumps; this file lets the rest of sallyport (replay, verify,
// the registry tools an auditor runs on a laptop) build everywhere.
type Pump struct {
	// Loops is ignored.
	Loops int
}

// Link is never made here.
type Link struct{}

var errNoPump = errors.New("pump: relaying by epoll needs Linux")

// Link always fails here.
func (pp *Pump) Link(a, b net.Conn, firstA, firstB []byte, fromA, fromB Flow) (*Link, error) {
	return nil, errNoPump
}

// Usable reports false: no connection can be relayed by a pump here.
func Usable(c net.Conn) bool { return false }

func (l *Link) Start()                           {}
func (l *Link) Stop()                            {}
func (l *Link) Pause(side int)                   {}
func (l *Link) Resume(side int)                  {}
func (l *Link) Send(side int, b []byte)          {}
func (l *Link) Done() <-chan struct{}            { return nil }
func (l *Link) Wait() (a, b net.Conn, err error) { return nil, nil, errNoPump }
