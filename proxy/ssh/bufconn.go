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
//
// Corked (see cork), it holds every write and sends them together when
// uncorked: a relay write of 256 KiB becomes eight SSH packets, and one
// socket write instead of eight saves the syscalls and, above all, seven
// wakeups of the reader. Held bytes never wait longer than holdDelay, so
// a corked writer that blocks (on the peer's channel window, say) cannot
// stall the bytes the peer needs to see before it opens the window.
type relayConn struct {
	net.Conn
	buf  *[]byte // borrowed while read-ahead data is pending
	data []byte  // read ahead, not yet returned

	wmu    sync.Mutex
	held   *[]byte // writes not yet sent: a split one, or all while corked
	corked int     // cork calls not yet uncorked
	armed  bool    // the timer will send what is held
	iov    [2][]byte
	timer  *time.Timer
	werr   error // from sending held writes on the timer

	onClose   func() // runs once, at the first Close; nil: nothing
	closeOnce sync.Once
}

const (
	gulpThreshold = 4 << 10
	gulpSize      = 64 << 10
	// splitSize is the size of x/crypto's bufio.Writer (the default).
	splitSize = 4 << 10
	// corkSize is what a corked connection holds at most: more is sent at
	// once. It fits a relay write's packets (see stdoutBuffer).
	corkSize = 288 << 10
	// holdDelay bounds how long a held write waits for the next; the rest
	// of a split packet follows within microseconds.
	holdDelay = time.Millisecond
	// closeFlushTimeout bounds sending a held write at Close to a peer
	// that may have stopped reading.
	closeFlushTimeout = 100 * time.Millisecond
)

var (
	gulpBuffers = sync.Pool{New: func() any { b := make([]byte, gulpSize); return &b }}
	holdBuffers = sync.Pool{New: func() any { b := make([]byte, 0, corkSize); return &b }}
)

func newRelayConn(c net.Conn) *relayConn { return &relayConn{Conn: c} }

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
	switch {
	case c.corked > 0:
		if c.held != nil && len(*c.held)+len(p) > corkSize {
			if err := c.sendHeldLocked(); err != nil {
				return 0, err
			}
		}
		if len(p) > corkSize {
			return c.Conn.Write(p)
		}
		c.hold(p)
		return len(p), nil
	case c.held != nil:
		held := c.held
		c.held = nil
		defer releaseHeld(held)
		c.iov = [2][]byte{*held, p}
		bufs := net.Buffers(c.iov[:])
		n, err := bufs.WriteTo(c.Conn)
		c.iov = [2][]byte{}
		return max(int(n)-len(*held), 0), err
	case len(p) == splitSize:
		c.hold(p)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// hold keeps a copy of p to send later, and makes sure that later comes
// within holdDelay; called locked.
func (c *relayConn) hold(p []byte) {
	if c.held == nil {
		c.held = holdBuffers.Get().(*[]byte)
	}
	*c.held = append(*c.held, p...)
	if c.armed {
		return
	}
	c.armed = true
	if c.timer == nil {
		c.timer = time.AfterFunc(holdDelay, c.onTimer)
	} else {
		c.timer.Reset(holdDelay)
	}
}

// cork holds writes until as many uncork calls: call it before a write
// that x/crypto sends as several packets.
func (c *relayConn) cork() {
	c.wmu.Lock()
	c.corked++
	c.wmu.Unlock()
}

// uncork ends a cork; the last one sends what was held.
func (c *relayConn) uncork() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.corked--
	if c.corked == 0 && c.held != nil {
		c.werr = c.sendHeldLocked()
	}
}

// onTimer sends what was held longer than holdDelay.
func (c *relayConn) onTimer() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.armed = false
	if c.held != nil && c.werr == nil {
		c.werr = c.sendHeldLocked()
	}
}

// sendHeldLocked sends the held writes; called locked.
func (c *relayConn) sendHeldLocked() error {
	held := c.held
	c.held = nil
	defer releaseHeld(held)
	_, err := c.Conn.Write(*held)
	return err
}

func releaseHeld(b *[]byte) {
	*b = (*b)[:0]
	holdBuffers.Put(b)
}

// Close sends a held write first, unless a write is in progress: that
// write sends the held bytes itself, or is stuck on a peer that does not
// read, which only closing ends.
func (c *relayConn) Close() error {
	if c.onClose != nil {
		c.closeOnce.Do(c.onClose)
	}
	if c.wmu.TryLock() {
		if c.held != nil {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
			_ = c.sendHeldLocked()
		}
		c.wmu.Unlock()
	}
	return c.Conn.Close()
}
