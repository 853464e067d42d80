package mysql

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/proxy"
)

// Users mints and drops per-session users on a target; *camysql.Issuer
// has it.
type Users interface {
	// Create makes the account of a session, granted role.
	Create(ctx context.Context, sessionID, role string) (*camysql.User, error)
	// Drop locks the account, kills its threads and removes it.
	Drop(ctx context.Context, u *camysql.User) error
}

// QueryKiller is the optional ability of Users to end the statement
// running on a target thread; with it, a client's KILL QUERY of its own
// other session (Ctrl-C in the mysql client) works through the bastion.
type QueryKiller interface {
	KillQuery(ctx context.Context, threadID uint64) error
}

// Target is a MariaDB or MySQL server the bastion brokers sessions to.
type Target struct {
	// Name is the target's name in the registry: the client's database.
	Name string
	// Address is the server's host:port. Required.
	Address string
	// Database is the database sessions start in. Empty: Name.
	Database string
	// TLS secures the bastion's logins to the target: set, each login asks
	// for TLS right after the target's greeting (an SSLRequest), verifies
	// the target as the config says, and is refused — the client told why —
	// when the target does not offer TLS or its certificate does not
	// verify. Nil: plaintext (caching_sha2_password then encrypts the
	// password with the target's RSA key).
	TLS *tls.Config
	// Users mints the per-session users. Required.
	Users Users
}

func (t *Target) database() string {
	if t.Database != "" {
		return t.Database
	}
	return t.Name
}

// upstream is the bastion's logged-in connection to a target.
type upstream struct {
	conn   net.Conn
	r      *packetConn
	thread uint64 // the target's connection id
	status uint16 // server status after login
	caps   uint32
	tlsCfg *tls.Config // the login asks for TLS with it; nil: plaintext
	tls    bool        // the connection is encrypted
}

// tlsError is a failure to set up TLS with a target: it does not offer
// TLS, or its certificate did not verify. The client is told, not only
// the log.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "tls with target: " + e.err.Error() }

func (e *tlsError) Unwrap() error { return e.err }

// targetGreeting is what a HandshakeV10 of the target says.
type targetGreeting struct {
	thread uint64
	caps   uint32
	seed   []byte
	plugin string
}

// connect logs in to t as u with the capabilities the client chose, takes
// the entitled role and the target database.
func (s *Server) connect(ctx context.Context, t *Target, u *camysql.User, role string, l *login) (*upstream, error) {
	conn, err := s.dial(ctx, "tcp", t.Address)
	if err != nil {
		return nil, fmt.Errorf("connect to target %s: %w", t.Name, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	up := &upstream{conn: conn, r: newPacketConn(conn, maxHandshakePacket), tlsCfg: t.TLS}
	if err := up.login(u, l); err != nil {
		conn.Close()
		var te *tlsError
		if errors.As(err, &te) {
			// An operator must fix the target's TLS settings or its
			// certificate; the client hears so rather than "ask an operator".
			r := refuse(codeUnknownError, stateConnection, "cannot connect securely to target %s: %v; ask an operator to check the target's TLS settings (tls.mode, tls.ca_file) and certificate",
				t.Name, te.err)
			r.cause = err
			return nil, r
		}
		return nil, fmt.Errorf("log in to target %s as %s: %w", t.Name, u.Name, err)
	}
	for _, q := range []string{"SET ROLE " + quoteIdent(role), "USE " + quoteIdent(t.database())} {
		if err := up.exec(q); err != nil {
			conn.Close()
			return nil, fmt.Errorf("session on target %s: %s: %w", t.Name, q, err)
		}
	}
	up.r.max = s.maxMessage()
	return up, nil
}

// login runs the client side of the target's handshake, over TLS when
// up.tlsCfg is set.
func (up *upstream) login(u *camysql.User, l *login) error {
	p, err := up.r.read()
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	g, err := parseGreeting(p)
	if err != nil {
		return err
	}
	up.thread = g.thread
	want := l.caps&^(capSSL|capConnectWithDB|capConnectAttrs|capCompress|capLocalFiles) |
		capLongPassword | capProtocol41 | capSecureConn | capPluginAuth
	if missing := want & formatCaps &^ g.caps; missing != 0 {
		return fmt.Errorf("the target lacks capabilities %#x the client uses", missing)
	}
	up.caps = want & (g.caps | capLongPassword)
	if up.tlsCfg != nil {
		if err := up.startTLS(g.caps, l.charset, up.tlsCfg); err != nil {
			return err
		}
	}
	plugin := g.plugin
	if plugin != pluginCachingSHA2 {
		plugin = pluginNative
	}
	data, _ := authData(plugin, g.seed, u.Password)
	if err := up.r.write(handshakeResponse(up.caps, l.charset, u.Name, plugin, data)); err != nil {
		return fmt.Errorf("send handshake response: %w", err)
	}
	return up.authResult(plugin, u.Password, g.seed)
}

// startTLS sends an SSLRequest and does the TLS handshake; the login goes
// on over it.
func (up *upstream) startTLS(targetCaps uint32, charset byte, cfg *tls.Config) error {
	if targetCaps&capSSL == 0 {
		return &tlsError{errors.New("the target does not offer TLS, which its TLS settings require")}
	}
	if n := up.r.r.Buffered(); n > 0 {
		// They came in clear and would be read as if from inside TLS.
		return &tlsError{fmt.Errorf("the target sent %d bytes before the TLS handshake", n)}
	}
	up.caps |= capSSL
	if err := up.r.write(responsePrefix(up.caps, charset)); err != nil {
		return fmt.Errorf("send SSLRequest: %w", err)
	}
	tc := tls.Client(proxy.TLSTransport(up.conn, nil), cfg) // the pump may take it over
	if err := tc.Handshake(); err != nil {
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			err = verr.Err // "x509: certificate signed by unknown authority", without the wrapping
		}
		return &tlsError{err}
	}
	seq := up.r.seq
	up.conn, up.r, up.tls = tc, newPacketConn(tc, maxHandshakePacket), true
	up.r.seq = seq
	return nil
}

// exec runs one statement with no result set.
func (up *upstream) exec(sql string) error {
	up.r.seq = 0
	if err := up.r.write(append([]byte{comQuery}, sql...)); err != nil {
		return err
	}
	p, err := up.r.read()
	if err != nil {
		return err
	}
	if code, _, msg, ok := parseErr(p); ok {
		return fmt.Errorf("error %d: %s", code, msg)
	}
	if firstByte(p) != hdrOK {
		return fmt.Errorf("unexpected answer %#x", firstByte(p))
	}
	_, up.status, _ = parseOK(p)
	return nil
}

func parseGreeting(p []byte) (*targetGreeting, error) {
	if len(p) < 1 || p[0] != 10 {
		return nil, fmt.Errorf("target greeting: protocol %d, want 10", firstByte(p))
	}
	_, rest, ok := cstring(p[1:])
	if !ok || len(rest) < 4+8+1+2+1+2+2+1+10 {
		return nil, errors.New("target greeting: truncated")
	}
	g := &targetGreeting{thread: uint64(binary.LittleEndian.Uint32(rest))}
	g.seed = append(g.seed, rest[4:12]...)
	rest = rest[13:]
	g.caps = uint32(binary.LittleEndian.Uint16(rest))
	g.caps |= uint32(binary.LittleEndian.Uint16(rest[5:])) << 16
	seedLen := int(rest[7])
	rest = rest[18:]
	n := max(13, seedLen-8)
	if len(rest) < n {
		return nil, errors.New("target greeting: truncated seed")
	}
	g.seed = append(g.seed, trimNUL(rest[:n])...)
	g.plugin, _, _ = cstring(rest[n:])
	if g.plugin == "" {
		g.plugin = pluginNative
	}
	return g, nil
}

// handshakeResponse is a HandshakeResponse41 with no database.
func handshakeResponse(caps uint32, charset byte, user, plugin string, auth []byte) []byte {
	b := responsePrefix(caps, charset)
	b = append(append(b, user...), 0)
	b = append(append(b, byte(len(auth))), auth...)
	return append(append(b, plugin...), 0)
}

// responsePrefix is the fixed part of a HandshakeResponse41, which alone
// is an SSLRequest.
func responsePrefix(caps uint32, charset byte) []byte {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 128), caps)
	b = binary.LittleEndian.AppendUint32(b, maxPacketPayload)
	b = append(b, charset)
	return append(b, make([]byte, 23)...)
}

func firstByte(p []byte) byte {
	if len(p) == 0 {
		return 0
	}
	return p[0]
}

// quoteIdent quotes an identifier with backticks.
func quoteIdent(name string) string {
	b := []byte{'`'}
	for i := 0; i < len(name); i++ {
		if name[i] == '`' {
			b = append(b, '`')
		}
		b = append(b, name[i])
	}
	return string(append(b, '`'))
}
