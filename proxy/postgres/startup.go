package postgres

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sallyport/sallyport/proxy"
)

// First-packet codes (the protocol's "version" field of special requests).
const (
	codeCancel = 80877102
	codeSSL    = 80877103
	codeGSSENC = 80877104
)

const (
	// maxStartupPacket is PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
	maxStartupPacket = 10_000
	// minStartupPacket is a length word plus a code.
	minStartupPacket = 8
	// maxFirstPackets bounds SSLRequest/GSSENCRequest rounds before the
	// startup message (libpq sends at most GSSENC, then SSL).
	maxFirstPackets = 3
	// clientReadBuffer is the client reader's buffer; the relay reads
	// through it, and reads this large bypass it.
	clientReadBuffer = 16 << 10
)

// startup is what a client asked for in its StartupMessage.
type startup struct {
	major, minor uint16
	params       map[string]string // user, database and the rest
	unknownOpts  []string          // _pq_.* options, which sallyport does not support
}

// errFirstPacket marks a malformed or unsupported first packet.
var errFirstPacket = errors.New("invalid startup packet")

// readStartupPacket reads one length-prefixed packet of the startup phase
// and returns its code and the rest of its body.
func readStartupPacket(r io.Reader) (uint32, []byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("read startup packet: %w", err)
	}
	n := int(binary.BigEndian.Uint32(hdr[:4]))
	if n < minStartupPacket || n > maxStartupPacket {
		return 0, nil, fmt.Errorf("%w: length %d not in [%d, %d]", errFirstPacket, n, minStartupPacket, maxStartupPacket)
	}
	body := make([]byte, n-minStartupPacket)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, fmt.Errorf("read startup packet: %w", err)
	}
	return binary.BigEndian.Uint32(hdr[4:]), body, nil
}

// parseStartup decodes a StartupMessage body (after the version word):
// name/value pairs of NUL-terminated strings, ended by an empty name.
func parseStartup(code uint32, body []byte) (*startup, error) {
	st := &startup{major: uint16(code >> 16), minor: uint16(code), params: map[string]string{}}
	if st.major != 3 {
		return nil, fmt.Errorf("%w: unsupported frontend protocol %d.%d: sallyport speaks 3.0 and 3.2", errFirstPacket, st.major, st.minor)
	}
	for {
		name, rest, ok := cstring(body)
		if !ok {
			return nil, fmt.Errorf("%w: unterminated parameter name", errFirstPacket)
		}
		if name == "" {
			if len(rest) != 0 {
				return nil, fmt.Errorf("%w: %d bytes after the parameters", errFirstPacket, len(rest))
			}
			return st, nil
		}
		value, rest2, ok := cstring(rest)
		if !ok {
			return nil, fmt.Errorf("%w: unterminated value of parameter %q", errFirstPacket, name)
		}
		if strings.HasPrefix(name, "_pq_.") {
			st.unknownOpts = append(st.unknownOpts, name)
		} else {
			st.params[name] = value
		}
		body = rest2
	}
}

func cstring(b []byte) (string, []byte, bool) {
	i := indexNUL(b)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// negotiation is where the first packets left a client connection.
type negotiation struct {
	conn   net.Conn // the client, TLS-wrapped when it asked for TLS
	r      *bufio.Reader
	tls    bool
	st     *startup                // nil for a cancel request
	cancel *pgproto3.CancelRequest // set for a cancel request
}

// negotiate answers SSLRequest and GSSENCRequest until the client sends its
// StartupMessage or a CancelRequest. On error, n is where the client was
// left (to send it a FATAL).
func (s *Server) negotiate(conn net.Conn) (*negotiation, error) {
	n := &negotiation{conn: conn, r: bufio.NewReaderSize(conn, clientReadBuffer)}
	for range maxFirstPackets {
		code, body, err := readStartupPacket(n.r)
		if err != nil {
			return n, err
		}
		switch {
		case code == codeSSL && len(body) == 0:
			err = n.startTLS(s.TLSConfig)
		case code == codeGSSENC && len(body) == 0:
			_, err = n.conn.Write([]byte{'N'}) // no GSSAPI; libpq goes on with SSL or plain
		case code == codeCancel:
			n.cancel = &pgproto3.CancelRequest{}
			return n, n.cancel.Decode(append(binary.BigEndian.AppendUint32(nil, code), body...))
		default:
			n.st, err = parseStartup(code, body)
			return n, err
		}
		if err != nil {
			return n, err
		}
	}
	return n, fmt.Errorf("%w: no startup message after %d requests", errFirstPacket, maxFirstPackets)
}

// startTLS answers an SSLRequest: 'N' without a certificate, else 'S' and
// the handshake. Bytes the client sent after the request but before the
// handshake would be read as if they came over TLS, so they are refused
// (CVE-2021-23222's class of bug).
func (n *negotiation) startTLS(cfg *tls.Config) error {
	if n.tls {
		return fmt.Errorf("%w: SSLRequest inside TLS", errFirstPacket)
	}
	if cfg == nil {
		_, err := n.conn.Write([]byte{'N'})
		return err
	}
	if n.r.Buffered() > 0 {
		return fmt.Errorf("%w: %d unencrypted bytes after SSLRequest", errFirstPacket, n.r.Buffered())
	}
	if _, err := n.conn.Write([]byte{'S'}); err != nil {
		return fmt.Errorf("answer SSLRequest: %w", err)
	}
	tc := tls.Server(proxy.TLSTransport(n.conn, nil), cfg) // the pump may take it over
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	n.conn, n.r, n.tls = tc, bufio.NewReaderSize(tc, clientReadBuffer), true
	return nil
}
