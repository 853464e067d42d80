package proxy

import (
	"bufio"
	"net"
)

// TLSTransport is the connection to put under a crypto/tls connection that
// a Pump may relay once its handshake is done: c is the TCP connection (or
// a ClientConn over one), r a reader that already holds c's first bytes
// (nil: none). Before the link it reads through r, then c, and writes to c.
// While linked, TLS reads the ciphertext the pump read from the descriptor
// and never waits (errWouldBlock when none is left), and what TLS writes
// is kept for the pump to write. After the link it reads and writes the
// connection the link gave back.
func TLSTransport(c net.Conn, r *bufio.Reader) net.Conn {
	return &tlsTransport{Conn: c, r: r}
}

// tlsTransport is TLSTransport's connection.
type tlsTransport struct {
	net.Conn
	r      *bufio.Reader
	in     []byte // ciphertext read by the pump, not yet taken by TLS
	out    []byte // ciphertext TLS wrote while linked, not yet written
	linked bool
}

// errWouldBlock is what a linked transport's Read says when the pump has
// no more ciphertext: crypto/tls keeps its state on a temporary error and
// reads again on the next call.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "pump: no ciphertext buffered" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

func (t *tlsTransport) Read(p []byte) (int, error) {
	if len(t.in) > 0 {
		n := copy(p, t.in)
		t.in = t.in[n:]
		return n, nil
	}
	if t.linked {
		return 0, errWouldBlock
	}
	if t.r != nil {
		if t.r.Buffered() > 0 {
			return t.r.Read(p)
		}
		t.r = nil // empty: reading through it would read ahead
	}
	return t.Conn.Read(p)
}

func (t *tlsTransport) Write(p []byte) (int, error) {
	if t.linked {
		t.out = append(t.out, p...)
		return len(p), nil
	}
	return t.Conn.Write(p)
}
