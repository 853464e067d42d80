package ssh

import (
	"net"
	"sync"
)

// x/crypto reads each packet in two parts through a 4 KiB buffer of its
// own: the start of the packet, then the rest straight from the socket.
// gulpConn turns the second read, while data flows, into one large read
// whose surplus serves the next packet, saving read syscalls (a large
// share of the relay's CPU on bulk transfers). Reads of gulpThreshold
// bytes or less, such as the one an idle connection blocks in, go straight
// to the socket, so an idle connection holds no gulp buffer.
const (
	gulpThreshold = 4 << 10
	gulpSize      = 64 << 10
)

var gulpBuffers = sync.Pool{New: func() any { b := make([]byte, gulpSize); return &b }}

// gulpConn is a net.Conn whose large reads read ahead.
type gulpConn struct {
	net.Conn
	buf  *[]byte // borrowed while data is pending
	data []byte  // read ahead, not yet returned
}

func newGulpConn(c net.Conn) net.Conn { return &gulpConn{Conn: c} }

func (c *gulpConn) Read(p []byte) (int, error) {
	if len(c.data) > 0 {
		n := copy(p, c.data)
		c.data = c.data[n:]
		if len(c.data) == 0 {
			c.release()
		}
		return n, nil
	}
	if len(p) <= gulpThreshold || len(p) >= gulpSize {
		return c.Conn.Read(p)
	}
	buf := gulpBuffers.Get().(*[]byte)
	n, err := c.Conn.Read(*buf)
	k := copy(p, (*buf)[:n])
	if k < n {
		c.buf, c.data = buf, (*buf)[k:n]
	} else {
		gulpBuffers.Put(buf)
	}
	return k, err
}

func (c *gulpConn) release() {
	if c.buf != nil {
		gulpBuffers.Put(c.buf)
		c.buf, c.data = nil, nil
	}
}
