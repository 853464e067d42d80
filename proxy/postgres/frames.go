package postgres

import (
	"encoding/binary"
	"fmt"
)

// keepBodyCap is the body buffer a scanner keeps between messages; one
// that grew larger for a big message is released.
const keepBodyCap = 64 << 10

// frameScanner follows message boundaries in one direction of the relay.
// It sees the bytes as they are read, before they are forwarded unchanged,
// and hands each message to handle: with its body for the types in want
// (which the audit decodes), with only its size for the rest (DataRow,
// CopyData: never buffered, never decoded).
type frameScanner struct {
	max    int        // largest body accepted
	want   *[256]bool // types whose body handle needs
	handle func(typ byte, size int, body []byte) error

	hdr    [5]byte
	nhdr   int
	typ    byte
	size   int
	remain int
	inBody bool
	body   []byte
}

// errMessageTooLarge is wrapped by feed's error for an oversized message.
var errMessageTooLarge = fmt.Errorf("message too large")

// feed scans p. The body passed to handle may alias p: handle must copy
// what it keeps.
func (f *frameScanner) feed(p []byte) error {
	for len(p) > 0 {
		if !f.inBody {
			k := copy(f.hdr[f.nhdr:], p)
			p, f.nhdr = p[k:], f.nhdr+k
			if f.nhdr < len(f.hdr) {
				return nil
			}
			if err := f.begin(); err != nil {
				return err
			}
		}
		take := min(len(p), f.remain)
		chunk := p[:take]
		p, f.remain = p[take:], f.remain-take
		keep := f.want[f.typ]
		if f.remain > 0 {
			if keep {
				f.body = append(f.body, chunk...)
			}
			return nil
		}
		if err := f.finish(keep, chunk); err != nil {
			return err
		}
	}
	return nil
}

// begin reads the header of the next message.
func (f *frameScanner) begin() error {
	f.nhdr = 0
	f.typ = f.hdr[0]
	n := int64(binary.BigEndian.Uint32(f.hdr[1:]))
	if n < 4 || n-4 > int64(f.max) {
		return fmt.Errorf("%w: message %q of %d bytes (limit %d)", errMessageTooLarge, f.typ, n, f.max)
	}
	f.size, f.remain, f.inBody = int(n-4), int(n-4), true
	return nil
}

// finish hands a complete message to handle.
func (f *frameScanner) finish(keep bool, last []byte) error {
	f.inBody = false
	var body []byte
	switch {
	case !keep:
	case len(f.body) == 0:
		body = last // the whole message is in this read: no copy
	default:
		f.body = append(f.body, last...)
		body = f.body
	}
	err := f.handle(f.typ, f.size, body)
	f.body = f.body[:0]
	if cap(f.body) > keepBodyCap {
		f.body = nil
	}
	return err
}

// wantSet builds a want table.
func wantSet(types string) *[256]bool {
	var w [256]bool
	for i := range len(types) {
		w[types[i]] = true
	}
	return &w
}

var (
	// clientWants: Query, Parse, Bind, Execute, Close, Sync, FunctionCall.
	clientWants = wantSet("QPBECSF")
	// serverWants: CommandComplete, ErrorResponse, ReadyForQuery,
	// Copy{In,Out,Both}Response.
	serverWants = wantSet("CEZGHW")
)
