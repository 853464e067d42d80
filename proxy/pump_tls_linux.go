package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"slices"
	"syscall"
)

// A side of a link may be a crypto/tls connection over a TLSTransport whose
// handshake is done: the pump reads the ciphertext from the descriptor when
// epoll says so and has TLS decrypt it on the pump's goroutine, one record
// per Read, while a whole record is buffered; what a Flow passes to such a
// side is encrypted by TLS and written like any output. TLS's own messages after
// the handshake (alerts, close_notify, TLS 1.3 key updates and tickets) go
// through crypto/tls as on any connection; it refuses renegotiation, which
// ends the link with a read error.

// tlsEnd is the TLS of one side of a link.
type tlsEnd struct {
	conn *tls.Conn
	t    *tlsTransport
}

// tlsRecordSpace is the part of the pump's read buffer that takes
// ciphertext; the rest takes the plaintext of one record (at most 16 KiB).
const tlsRecordSpace = pumpReadBuffer / 2

// Usable reports whether c can be relayed by a pump: a TCP connection, or
// a crypto/tls connection past its handshake over a TLSTransport over one.
func Usable(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		t, ok := tc.NetConn().(*tlsTransport)
		return ok && !t.linked && tc.ConnectionState().HandshakeComplete && Usable(t.Conn)
	}
	_, ok := unwrapClient(c).(*net.TCPConn)
	return ok
}

// linkable is the connection whose descriptor a link takes for c, and c's
// TLS if it has one.
func linkable(c net.Conn) (net.Conn, *tlsEnd) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return c, nil
	}
	t, ok := tc.NetConn().(*tlsTransport)
	if !ok {
		return c, nil // takeFD refuses it
	}
	return t.Conn, &tlsEnd{conn: tc, t: t}
}

// closeTaken closes the connection a link took c's descriptor from: for
// TLS the one under it, which says nothing to the peer.
func closeTaken(c net.Conn, te *tlsEnd) {
	if te == nil {
		c.Close()
		return
	}
	te.t.Conn.Close()
	te.t.linked = true
	if r := te.t.r; r != nil && r.Buffered() > 0 { // read ahead before TLS
		b, _ := r.Peek(r.Buffered())
		te.t.in = slices.Clone(b)
	}
	te.t.r = nil
}

// giveBack is what Wait returns for side e, c being its descriptor again.
func (e *end) giveBack(c net.Conn) net.Conn {
	if e.tls == nil {
		return c
	}
	t := e.tls.t
	t.Conn, t.linked = c, false
	return e.tls.conn
}

// readTLS reads the ciphertext side e has and forwards what it decrypts,
// after what was kept of a record read in part.
func (p *loop) readTLS(e *end) {
	t := e.tls.t
	kept := copy(p.buf[:tlsRecordSpace], t.in) // less than a record: see recordEnd
	n, err := rawIO(syscall.SYS_READ, e.fd, p.buf[kept:tlsRecordSpace])
	switch {
	case n > 0:
		t.in = p.buf[:kept+n]
		p.drainTLS(e, false)
	case err == syscall.EAGAIN || err == syscall.EINTR:
	case err == nil: // EOF without close_notify: as on a plain side
		e.closed = true
		p.closing(e)
	default:
		p.finish(e.l, &LinkError{Side: e.side, Op: "read", Err: err})
	}
}

// drainTLS feeds e's flow what TLS can decrypt without reading more, a
// record at a time, until it would need more, the flow pauses or the link
// ends. What is left over is kept (it was in the pump's buffer). TLS may
// hold records of its own only when the link starts (read with the
// handshake): then the drain goes on until TLS says it would block;
// afterwards until the pump holds no whole record.
func (p *loop) drainTLS(e *end, held bool) {
	plain := p.buf[tlsRecordSpace:]
	for !e.paused && !e.l.ended() && (held || e.tls.t.recordEnd() >= 0) {
		n, err := e.tls.conn.Read(plain)
		p.flushTLS(e) // alerts and key updates TLS answered with
		if n > 0 {
			p.feed(e, plain[:n])
		}
		if err == errWouldBlock {
			break
		}
		if err == io.EOF { // close_notify
			e.closed = true
			p.closing(e)
			break
		}
		if err != nil {
			p.finish(e.l, &LinkError{Side: e.side, Op: "read", Err: err})
			break
		}
	}
	if t := e.tls.t; len(t.in) > 0 { // in the pump's buffer
		t.kept = append(t.kept[:0], t.in...)
		t.in = t.kept
	}
}

// send writes b to e: encrypted first if e is TLS.
func (p *loop) send(e *end, b []byte) {
	if e.tls == nil {
		p.write(e, b)
		return
	}
	if e.l.ended() {
		return
	}
	_, err := e.tls.conn.Write(b)
	p.flushTLS(e)
	if err != nil {
		p.finish(e.l, &LinkError{Side: e.side, Op: "write", Err: err})
	}
}

// flushTLS writes the ciphertext TLS wrote for e.
func (p *loop) flushTLS(e *end) {
	t := e.tls.t
	if len(t.out) == 0 {
		return
	}
	p.write(e, t.out)
	t.out = t.out[:0]
	if cap(t.out) > pumpReadBuffer { // a large burst's buffer is not kept
		t.out = nil
	}
}
