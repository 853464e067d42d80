package postgres

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy"
)

// SQLSTATEs the bastion itself sends.
const (
	codeInvalidAuthorization = "28000" // refused by the registry, or no TLS
	codeProtocolViolation    = "08P01" // a malformed or oversized message
	codeCannotConnect        = "08006" // the target or the registry failed
	codeAdminShutdown        = "57P01" // killed, revoked, or recording failed
	codeFeatureNotSupported  = "0A000" // replication connections
)

// maxPasswordMessage bounds the PasswordMessage: a workload JWT is a few KB.
const maxPasswordMessage = 64 << 10

// client is a client connection past its first packets.
type client struct {
	conn net.Conn
	r    *bufio.Reader
	tls  bool
	st   *startup
}

// source is the client's IP address (proxy.ClientAddr); zero when the
// conn has none.
func (c *client) source() netip.Addr {
	return proxy.ClientAddr(c.conn).Addr()
}

// addrPort is where the client connects from, as its session's recording
// names it: "10.0.0.7:52144", "[2001:db8::1]:52144" (proxy.ClientAddr).
func addrPort(c net.Conn) string {
	if ap := proxy.ClientAddr(c); ap.IsValid() {
		return ap.String()
	}
	return c.RemoteAddr().String()
}

// send writes msgs in one write.
func (c *client) send(msgs ...pgproto3.BackendMessage) error {
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = m.Encode(buf); err != nil {
			return fmt.Errorf("encode %T: %w", m, err)
		}
	}
	if _, err := c.conn.Write(buf); err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	return nil
}

// fatal is an ErrorResponse that ends the connection.
func fatal(code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg}
}

// readPassword asks for a cleartext password and reads it.
func (c *client) readPassword() (string, error) {
	if err := c.send(&pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return "", err
	}
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return "", fmt.Errorf("read password message: %w", err)
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if hdr[0] != 'p' || n < 5 || n > maxPasswordMessage {
		return "", &refusal{code: codeProtocolViolation,
			msg: fmt.Sprintf("sallyport: expected a password message of at most %d bytes", maxPasswordMessage)}
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return "", fmt.Errorf("read password message: %w", err)
	}
	var pm pgproto3.PasswordMessage
	if err := pm.Decode(body); err != nil {
		return "", &refusal{code: codeProtocolViolation, msg: "sallyport: malformed password message"}
	}
	return pm.Password, nil
}

// refusal is an error the client sees as a FATAL ErrorResponse.
type refusal struct {
	code  string
	msg   string
	cause error // for the log only; the client sees msg
	// audit is the refusal's audit event: a failed login (no credential
	// proven), or a refusal no admission decision recorded. Nil: none.
	audit *iga.Refusal
}

func (r *refusal) Error() string { return r.msg }

func (r *refusal) Unwrap() error { return r.cause }

func refuse(code, format string, args ...any) *refusal {
	return &refusal{code: code, msg: "sallyport: " + fmt.Sprintf(format, args...)}
}
