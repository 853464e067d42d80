package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sallyport/sallyport/proxy"
)

// maxLoginMessage bounds a message the target sends while the bastion logs in.
const maxLoginMessage = 64 << 10

// upstream is the bastion's logged-in connection to a target.
type upstream struct {
	conn     net.Conn
	tls      *tls.Config // nil: the connection is not encrypted
	pid      uint32
	secret   []byte
	params   map[string]string
	txStatus byte
}

// targetError is an ErrorResponse the target sent during the login.
type targetError struct{ code, msg string }

func (e *targetError) Error() string { return fmt.Sprintf("target: %s (SQLSTATE %s)", e.msg, e.code) }

// tlsError is a failure to set up TLS with a target: it refused TLS, or
// its certificate did not verify. The client is told, not only the log.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "tls with target: " + e.err.Error() }

func (e *tlsError) Unwrap() error { return e.err }

// The login is done here rather than by pgconn because the relay must own
// every byte after ReadyForQuery: pgconn may start a background reader
// during a slow write, which can swallow the first reply after a hijack.
// Messages are read unbuffered, so nothing past ReadyForQuery is consumed.

// loginAs opens a connection to addr, negotiates TLS as tlsCfg says
// (nil: plaintext; preferTLS: plaintext when the server declines), and logs
// in with SCRAM-SHA-256.
func (s *Server) loginAs(ctx context.Context, addr string, tlsCfg *tls.Config, preferTLS bool, params map[string]string, password string) (*upstream, error) {
	conn, err := s.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	up, err := s.startUpstream(conn, tlsCfg, preferTLS, params, password)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = up.conn.SetDeadline(time.Time{})
	return up, nil
}

func (s *Server) startUpstream(conn net.Conn, tlsCfg *tls.Config, preferTLS bool, params map[string]string, password string) (*upstream, error) {
	up := &upstream{conn: conn, params: map[string]string{}}
	if tlsCfg != nil {
		if err := up.startTLS(tlsCfg, preferTLS); err != nil {
			return nil, err
		}
	}
	startup := &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: params}
	if err := up.send(startup); err != nil {
		return nil, err
	}
	if err := up.authenticate(params["user"], password); err != nil {
		return nil, err
	}
	return up, up.awaitReady()
}

func (up *upstream) startTLS(cfg *tls.Config, prefer bool) error {
	conn, err := requestTLS(up.conn, cfg)
	switch {
	case err != nil:
		return err
	case conn != nil:
		up.conn, up.tls = conn, cfg
	case !prefer:
		return &tlsError{errors.New("the target does not accept TLS, which its TLS settings require")}
	}
	return nil
}

// requestTLS sends an SSLRequest on conn and, when the server accepts,
// does the TLS handshake. It returns nil, nil when the server declines.
func requestTLS(conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	if _, err := conn.Write(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), codeSSL)); err != nil {
		return nil, fmt.Errorf("request tls: %w", err)
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return nil, fmt.Errorf("request tls: %w", err)
	}
	if answer[0] != 'S' {
		return nil, nil
	}
	tc := tls.Client(proxy.TLSTransport(conn, nil), cfg) // the pump may take it over
	if err := tc.Handshake(); err != nil {
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			err = verr.Err // "x509: certificate signed by unknown authority", without the wrapping
		}
		return nil, &tlsError{err}
	}
	return tc, nil
}

func (up *upstream) send(m pgproto3.FrontendMessage) error {
	buf, err := m.Encode(nil)
	if err != nil {
		return err
	}
	_, err = up.conn.Write(buf)
	return err
}

// receive reads one message without reading ahead.
func (up *upstream) receive() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(up.conn, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("read from target: %w", err)
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if n < 4 || n-4 > maxLoginMessage {
		return 0, nil, fmt.Errorf("target sent a %q message of %d bytes during login", hdr[0], n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(up.conn, body); err != nil {
		return 0, nil, fmt.Errorf("read from target: %w", err)
	}
	if hdr[0] == 'E' {
		var e pgproto3.ErrorResponse
		_ = e.Decode(body)
		return 0, nil, &targetError{code: e.Code, msg: e.Message}
	}
	return hdr[0], body, nil
}

// authRequest reads an Authentication message and returns its code and data.
func (up *upstream) authRequest() (uint32, []byte, error) {
	typ, body, err := up.receive()
	if err != nil {
		return 0, nil, err
	}
	if typ != 'R' || len(body) < 4 {
		return 0, nil, fmt.Errorf("target sent %q where an authentication request belongs", typ)
	}
	return binary.BigEndian.Uint32(body), body[4:], nil
}

// authenticate answers the target's authentication with SCRAM-SHA-256.
func (up *upstream) authenticate(user, password string) error {
	code, data, err := up.authRequest()
	if err != nil {
		return err
	}
	if code == pgproto3.AuthTypeOk {
		return nil
	}
	if code != pgproto3.AuthTypeSASL || !strings.Contains(string(data), "SCRAM-SHA-256\x00") {
		return fmt.Errorf("target asks for authentication type %d; per-session roles log in with SCRAM-SHA-256", code)
	}
	sc := newSCRAM(password)
	if err := up.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte(sc.clientFirst())}); err != nil {
		return err
	}
	if code, data, err = up.authRequest(); err != nil || code != pgproto3.AuthTypeSASLContinue {
		return errors.Join(err, errors.New("scram: expected the server-first message"))
	}
	final, err := sc.clientFinal(string(data))
	if err != nil {
		return err
	}
	if err := up.send(&pgproto3.SASLResponse{Data: []byte(final)}); err != nil {
		return err
	}
	if code, data, err = up.authRequest(); err != nil || code != pgproto3.AuthTypeSASLFinal {
		return errors.Join(err, errors.New("scram: expected the server-final message"))
	}
	if err := sc.verifyServer(string(data)); err != nil {
		return err
	}
	if code, _, err = up.authRequest(); err != nil || code != pgproto3.AuthTypeOk {
		return errors.Join(err, errors.New("scram: expected AuthenticationOk"))
	}
	return nil
}

// awaitReady collects ParameterStatus and BackendKeyData until ReadyForQuery.
func (up *upstream) awaitReady() error {
	for {
		typ, body, err := up.receive()
		if err != nil {
			return err
		}
		switch typ {
		case 'S':
			var m pgproto3.ParameterStatus
			if err := m.Decode(body); err != nil {
				return err
			}
			up.params[m.Name] = m.Value
		case 'K':
			var m pgproto3.BackendKeyData
			if err := m.Decode(body); err != nil {
				return err
			}
			up.pid, up.secret = m.ProcessID, m.SecretKey
		case 'Z':
			if len(body) != 1 {
				return errors.New("malformed ReadyForQuery from target")
			}
			up.txStatus = body[0]
			return nil
		}
	}
}

// scram is the client side of one SCRAM-SHA-256 exchange (RFC 5802/7677)
// without channel binding.
type scram struct {
	password    string
	nonce       string
	firstBare   string
	authMessage string
	serverKey   []byte
}

func newSCRAM(password string) *scram {
	b := make([]byte, 18)
	rand.Read(b)
	return &scram{password: password, nonce: base64.RawStdEncoding.EncodeToString(b)}
}

func (c *scram) clientFirst() string {
	c.firstBare = "n=,r=" + c.nonce // PostgreSQL takes the user from the startup message
	return "n,," + c.firstBare
}

func (c *scram) clientFinal(serverFirst string) (string, error) {
	attrs := scramAttrs(serverFirst)
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	iters, ierr := strconv.Atoi(attrs["i"])
	if !strings.HasPrefix(attrs["r"], c.nonce) || err != nil || ierr != nil || iters < 1 {
		return "", errors.New("scram: malformed server-first message")
	}
	salted, err := pbkdf2.Key(sha256.New, c.password, salt, iters, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	clientKey := scramHMAC(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	withoutProof := "c=biws,r=" + attrs["r"]
	c.authMessage = c.firstBare + "," + serverFirst + "," + withoutProof
	signature := scramHMAC(storedKey[:], c.authMessage)
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, signature)
	c.serverKey = scramHMAC(salted, "Server Key")
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (c *scram) verifyServer(serverFinal string) error {
	got, err := base64.StdEncoding.DecodeString(scramAttrs(serverFinal)["v"])
	if err != nil || !hmac.Equal(got, scramHMAC(c.serverKey, c.authMessage)) {
		return errors.New("scram: the target's signature does not match: it does not know the role's verifier")
	}
	return nil
}

func scramAttrs(msg string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(msg, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

func scramHMAC(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
