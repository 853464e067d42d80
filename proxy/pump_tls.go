package proxy

import (
	"bufio"
	"encoding/binary"
	"net"
)

// TLSTransport is the connection to put under a crypto/tls connection that
// a Pump may relay once its handshake is done: c is the TCP connection (or
// a ClientConn over one), r a reader that already holds c's first bytes
// (nil: none). Before the link it reads through r, then c, and writes to c.
// While linked, TLS reads the ciphertext the pump read from the descriptor
// and never waits (errWouldBlock until a whole record is there), and what
// TLS writes is kept for the pump to write. After the link it reads and writes the
// connection the link gave back.
func TLSTransport(c net.Conn, r *bufio.Reader) net.Conn {
	return &tlsTransport{Conn: c, r: r}
}

// tlsTransport is TLSTransport's connection.
type tlsTransport struct {
	net.Conn
	r      *bufio.Reader
	in     []byte // ciphertext read by the pump, not yet taken by TLS
	kept   []byte // holds in between reads of the pump
	out    []byte // ciphertext TLS wrote while linked, not yet written
	linked bool

	// Where the ciphertext handed to TLS stands in its records: header
	// bytes of the next record seen, or body bytes of this one still due.
	hdr  [tlsHeaderLen]byte
	nhdr int
	body int
}

const (
	// tlsHeaderLen is a TLS record header's length: type, version, length.
	tlsHeaderLen = 5
	// tlsMaxRecord bounds a record's body (TLS 1.2's, the larger): a header
	// claiming more is handed to TLS at once, which refuses it.
	tlsMaxRecord = 16384 + 2048
)

// errWouldBlock is what a linked transport's Read says when the pump has
// no more ciphertext: crypto/tls keeps its state on a temporary error and
// reads again on the next call.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "pump: no ciphertext buffered" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

// Read gives TLS, while linked, no more than the rest of the record it is
// in, once the pump has read all of it: TLS then holds no ciphertext after
// a Read that returned plaintext, so the pump knows from recordEnd alone
// whether another Read would get anywhere.
func (t *tlsTransport) Read(p []byte) (int, error) {
	var n int
	var err error
	switch {
	case t.linked:
		end := t.recordEnd()
		if end < 0 {
			return 0, errWouldBlock
		}
		n = copy(p, t.in[:end])
		t.in = t.in[n:]
	case len(t.in) > 0:
		n = copy(p, t.in)
		t.in = t.in[n:]
	case t.r != nil && t.r.Buffered() > 0:
		n, err = t.r.Read(p)
	default:
		t.r = nil // empty: reading through it would read ahead
		n, err = t.Conn.Read(p)
	}
	t.handed(p[:n])
	return n, err
}

// handed follows the records in b, the next bytes given to TLS.
func (t *tlsTransport) handed(b []byte) {
	for len(b) > 0 {
		if t.body > 0 {
			k := min(t.body, len(b))
			t.body -= k
			b = b[k:]
			continue
		}
		k := copy(t.hdr[t.nhdr:], b)
		t.nhdr += k
		b = b[k:]
		if t.nhdr == tlsHeaderLen {
			t.body, t.nhdr = int(binary.BigEndian.Uint16(t.hdr[3:])), 0
			if t.body > tlsMaxRecord { // TLS refuses it from its header
				t.body = 0
			}
		}
	}
}

// recordEnd is how many bytes of in complete the record TLS is in (or the
// next one, at a record's end); -1 if in does not hold them all.
func (t *tlsTransport) recordEnd() int {
	if t.body > 0 {
		if len(t.in) < t.body {
			return -1
		}
		return t.body
	}
	need := tlsHeaderLen - t.nhdr
	if len(t.in) < need {
		return -1
	}
	var h [tlsHeaderLen]byte
	copy(h[copy(h[:], t.hdr[:t.nhdr]):], t.in[:need])
	body := int(binary.BigEndian.Uint16(h[3:]))
	if body > tlsMaxRecord {
		return need
	}
	end := need + body
	if len(t.in) < end {
		return -1
	}
	return end
}

func (t *tlsTransport) Write(p []byte) (int, error) {
	if t.linked {
		t.out = append(t.out, p...)
		return len(p), nil
	}
	return t.Conn.Write(p)
}
