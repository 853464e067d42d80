package postgres

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// keepBodyCap is the body buffer a scanner keeps between messages; one
// that grew larger for a big message is released.
const keepBodyCap = 64 << 10

// frameScanner follows message boundaries in one direction of the relay.
// It sees the bytes as they are read, before they are forwarded unchanged,
// and hands each message to handle: with its body for the types in want
// (which the audit decodes), with only its size for the rest (DataRow,
// CopyData: never buffered, never decoded, of any size).
type frameScanner struct {
	max    int        // largest body of a type in want
	want   *[256]bool // types whose body handle needs
	handle func(typ byte, size int, body []byte) error
	// long, when set, takes a message of a type in longWant whose body is
	// over max a part at a time as it passes (end marks the last part),
	// instead of the session ending on it.
	long     func(typ byte, size int, part []byte, end bool) error
	longWant *[256]bool

	hdr       [5]byte
	nhdr      int
	typ       byte
	size      int
	remain    int
	inBody    bool
	streaming bool // the body goes to long
	body      []byte
}

// errMessageTooLarge is wrapped by feed's error for an oversized message.
var errMessageTooLarge = fmt.Errorf("message too large")

// errBadLength is wrapped by feed's error for a length below the header's.
var errBadLength = errors.New("invalid message length")

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
		if f.streaming {
			if err := f.long(f.typ, f.size, chunk, f.remain == 0); err != nil {
				return err
			}
			f.inBody, f.streaming = f.remain > 0, f.remain > 0
			continue
		}
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
	switch {
	case n < 4:
		return fmt.Errorf("%w: message %q of %d bytes", errBadLength, f.typ, n)
	case n-4 <= int64(f.max) || !f.want[f.typ]:
	case f.long != nil && f.longWant[f.typ]:
		f.streaming = true
	default:
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
	// clientWants: Query, Parse, Bind, Describe, Execute, Close, Sync,
	// FunctionCall.
	clientWants = wantSet("QPBDECSF")
	// serverWants: CommandComplete, ErrorResponse, ReadyForQuery,
	// Copy{In,Out,Both}Response, ParameterDescription,
	// NotificationResponse.
	serverWants = wantSet("CEZGHWtA")
	// longWants: Query, whose text is not needed whole (see longQuery).
	longWants = wantSet("Q")
)

// The audit reads the few message bodies it needs by hand: pgproto3's
// Decode allocates every field (and copies of the parameters) per message,
// which per query cost more than relaying it. The checks are pgproto3's,
// and so are the errors, so a malformed message ends the session with the
// same reason as before.

// Malformed bodies, worded as pgproto3 words them.
var (
	errBadQuery                = invalidBody("Query", "")
	errBadParse                = invalidBody("Parse", "")
	errBadBind                 = invalidBody("Bind", "")
	errBadExecute              = invalidBody("Execute", "")
	errBadClose                = invalidBody("Close", "")
	errBadDescribe             = invalidBody("Describe", "")
	errBadReadyForQuery        = invalidBody("ReadyForQuery", "")
	errBadNotification         = invalidBody("NotificationResponse", "")
	errBadParameterDescription = invalidBody("ParameterDescription", "")
	errUnterminatedTag         = invalidBody("CommandComplete", "unterminated string")
	errEarlyTag                = invalidBody("CommandComplete", "string terminated too early")
)

func invalidBody(typ, details string) error {
	return errors.New(typ + " body is invalid " + details)
}

// cbytes splits a NUL-terminated string off b; false when b has no NUL.
func cbytes(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, b, false
	}
	return b[:i], b[i+1:], true
}

// readQuery is a Query's SQL.
func readQuery(body []byte) ([]byte, error) {
	if len(body) == 0 || bytes.IndexByte(body, 0) != len(body)-1 {
		return nil, errBadQuery
	}
	return body[:len(body)-1], nil
}

// readParse is a Parse's statement name, SQL and parameter type OIDs (4
// bytes each).
func readParse(body []byte) (name, sql, oids []byte, err error) {
	var ok bool
	if name, body, ok = cbytes(body); !ok {
		return nil, nil, nil, io.EOF
	}
	if sql, body, ok = cbytes(body); !ok {
		return nil, nil, nil, io.EOF
	}
	if len(body) < 2 || len(body)-2 < 4*int(binary.BigEndian.Uint16(body)) {
		return nil, nil, nil, errBadParse
	}
	return name, sql, body[2 : 2+4*int(binary.BigEndian.Uint16(body))], nil
}

// bindMsg is a Bind as the audit needs it; its slices alias the body.
type bindMsg struct {
	portal, stmt []byte
	formats      []byte // parameter format codes, two bytes each
	nparams      int
	values       []byte // the parameters, each length-prefixed
}

// readBind reads and checks a whole Bind.
func readBind(body []byte) (m bindMsg, err error) {
	var ok bool
	if m.portal, body, ok = cbytes(body); !ok {
		return m, errBadBind
	}
	if m.stmt, body, ok = cbytes(body); !ok {
		return m, errBadBind
	}
	if m.formats, body, ok = codes(body); !ok {
		return m, errBadBind
	}
	if len(body) < 2 {
		return m, errBadBind
	}
	m.nparams, body = int(binary.BigEndian.Uint16(body)), body[2:]
	values := body
	for range m.nparams {
		_, rest, ok := param(body)
		if !ok {
			return m, errBadBind
		}
		body = rest
	}
	m.values = values[:len(values)-len(body)]
	if _, _, ok = codes(body); !ok {
		return m, errBadBind // the result format codes
	}
	return m, nil
}

// codes splits a count-prefixed list of format codes off b.
func codes(b []byte) (list, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, b, false
	}
	n := 2 * int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, b, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// param splits a length-prefixed value off b: nil for NULL (length -1),
// false when b is too short or the length negative otherwise.
func param(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, b, false
	}
	n := int(int32(binary.BigEndian.Uint32(b)))
	switch {
	case n == -1:
		return nil, b[4:], true
	case n < 0 || len(b)-4 < n:
		return nil, b, false
	}
	return b[4 : 4+n : 4+n], b[4+n:], true
}

// readExecute is an Execute's portal name.
func readExecute(body []byte) ([]byte, error) {
	portal, rest, ok := cbytes(body)
	if !ok {
		return nil, io.EOF
	}
	if len(rest) < 4 {
		return nil, errBadExecute // the row limit
	}
	return portal, nil
}

// readClose is what a Close closes: 'S' and a statement name, or a portal.
func readClose(body []byte) (typ byte, name []byte, err error) {
	if len(body) < 2 || bytes.IndexByte(body[1:], 0) != len(body)-2 {
		return 0, nil, errBadClose
	}
	return body[0], body[1 : len(body)-1], nil
}

// readTag is a CommandComplete's tag.
func readTag(body []byte) ([]byte, error) {
	switch i := bytes.IndexByte(body, 0); {
	case i < 0:
		return nil, errUnterminatedTag
	case i != len(body)-1:
		return nil, errEarlyTag
	}
	return body[:len(body)-1], nil
}

// readError is an ErrorResponse's SQLSTATE and message; of fields that
// repeat, the last counts.
func readError(body []byte) (code, msg []byte, err error) {
	for {
		if len(body) == 0 {
			return nil, nil, io.EOF
		}
		k := body[0]
		if k == 0 {
			return code, msg, nil
		}
		v, rest, ok := cbytes(body[1:])
		if !ok {
			return nil, nil, io.EOF
		}
		switch k {
		case 'C':
			code = v
		case 'M':
			msg = v
		}
		body = rest
	}
}
