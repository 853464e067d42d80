package ssh

import (
	"net"
	"sync"
	"time"
)

// relayConn wraps both of a session's sockets (client and target) to save
// the syscalls, and the wakeups of the other side, that x/crypto's 4 KiB
// bufio buffers cost on bulk transfers.
//
// Reads: x/crypto reads each packet in two parts, the start through its
// buffer, then the rest straight from the socket. relayConn turns the
// second read, while data flows, into one large read whose surplus serves
// the next packets. Reads of gulpThreshold bytes or less, such as the one
// an idle connection blocks in, go straight to the socket, so an idle
// connection holds no gulp buffer.
//
// Writes: x/crypto buffers a packet's 4-byte length, so a packet larger
// than its buffer reaches the socket as a write of exactly splitSize
// bytes, then the rest: two TCP segments, two wakeups of the reader.
// relayConn holds such a write and sends it with the next one in a single
// writev. A held write that nothing follows (a packet that happened to end
// there) goes out after holdDelay.
type relayConn struct {
	net.Conn
	buf  *[]byte // borrowed while read-ahead data is pending
	data []byte  // read ahead, not yet returned

	wmu   sync.Mutex
	held  *[]byte // a split write not yet sent
	iov   [2][]byte
	timer *time.Timer
	werr  error // from sending a held write on the timer
}

const (
	gulpThreshold = 4 << 10
	gulpSize      = 64 << 10
	// splitSize is the size of x/crypto's bufio.Writer (the default).
	splitSize = 4 << 10
	// holdDelay bounds how long a held write waits for the next; the rest
	// of a split packet follows within microseconds.
	holdDelay = time.Millisecond
	// closeFlushTimeout bounds sending a held write at Close to a peer
	// that may have stopped reading.
	closeFlushTimeout = 100 * time.Millisecond
)

var (
	gulpBuffers  = sync.Pool{New: func() any { b := make([]byte, gulpSize); return &b }}
	splitBuffers = sync.Pool{New: func() any { b := make([]byte, splitSize); return &b }}
)

func newRelayConn(c net.Conn) net.Conn { return &relayConn{Conn: c} }

func (c *relayConn) Read(p []byte) (int, error) {
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

func (c *relayConn) release() {
	if c.buf != nil {
		gulpBuffers.Put(c.buf)
		c.buf, c.data = nil, nil
	}
}

func (c *relayConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.held != nil {
		c.timer.Stop()
		held := c.held
		c.held = nil
		defer splitBuffers.Put(held)
		c.iov = [2][]byte{*held, p}
		bufs := net.Buffers(c.iov[:])
		n, err := bufs.WriteTo(c.Conn)
		c.iov = [2][]byte{}
		return max(int(n)-splitSize, 0), err
	}
	if len(p) != splitSize {
		return c.Conn.Write(p)
	}
	held := splitBuffers.Get().(*[]byte)
	copy(*held, p)
	c.held = held
	if c.timer == nil {
		c.timer = time.AfterFunc(holdDelay, c.sendHeld)
	} else {
		c.timer.Reset(holdDelay)
	}
	return len(p), nil
}

// sendHeld sends a held write that no other write followed.
func (c *relayConn) sendHeld() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.held == nil {
		return
	}
	_, c.werr = c.Conn.Write(*c.held)
	splitBuffers.Put(c.held)
	c.held = nil
}

// Close sends a held write first, unless a write is in progress: that
// write sends the held bytes itself, or is stuck on a peer that does not
// read, which only closing ends.
func (c *relayConn) Close() error {
	if c.wmu.TryLock() {
		if c.held != nil {
			c.timer.Stop()
			_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
			_, _ = c.Conn.Write(*c.held)
			splitBuffers.Put(c.held)
			c.held = nil
		}
		c.wmu.Unlock()
	}
	return c.Conn.Close()
}
