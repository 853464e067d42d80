package mysql

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/sallyport/sallyport/proxy"
)

// Capability flags (the ones sallyport reads or sets).
const (
	capLongPassword     = 1 << 0 // also "CLIENT_MYSQL": no MariaDB extended capabilities
	capFoundRows        = 1 << 1
	capLongFlag         = 1 << 2
	capConnectWithDB    = 1 << 3
	capCompress         = 1 << 5
	capLocalFiles       = 1 << 7
	capIgnoreSpace      = 1 << 8
	capProtocol41       = 1 << 9
	capInteractive      = 1 << 10
	capSSL              = 1 << 11
	capTransactions     = 1 << 13
	capSecureConn       = 1 << 15
	capMultiStatements  = 1 << 16
	capMultiResults     = 1 << 17
	capPSMultiResults   = 1 << 18
	capPluginAuth       = 1 << 19
	capConnectAttrs     = 1 << 20
	capPluginAuthLenenc = 1 << 21
	capDeprecateEOF     = 1 << 24
)

// serverCaps is what the bastion offers clients: the 4.1 protocol with
// multi-statements and multi-results, no compression, no LOAD DATA LOCAL
// (the target could read the client's files), no session tracking or query
// attributes (formats the audit does not follow).
const serverCaps = capLongPassword | capFoundRows | capLongFlag | capConnectWithDB | capIgnoreSpace |
	capProtocol41 | capInteractive | capTransactions | capSecureConn | capMultiStatements |
	capMultiResults | capPSMultiResults | capPluginAuth | capConnectAttrs | capPluginAuthLenenc | capDeprecateEOF

// formatCaps change packet formats: the target must agree to the ones the
// client chose, since packets are relayed unchanged.
const formatCaps = capProtocol41 | capDeprecateEOF

// Authentication plugins.
const (
	pluginNative = "mysql_native_password"
	pluginClear  = "mysql_clear_password"
)

const (
	// serverVersion is what clients see as the server's version.
	serverVersion = "5.7.99-sallyport"
	// charsetUTF8MB4 is utf8mb4_general_ci, the greeting's default charset.
	charsetUTF8MB4 = 45
	// sslRequestLen is the size of an SSLRequest: a handshake response cut
	// after its fixed part.
	sslRequestLen = 32
	// maxHandshakePacket bounds the packets of the login phase: a token is
	// a few KB at most.
	maxHandshakePacket = 64 << 10
	// clientReadBuffer is the client reader's buffer.
	clientReadBuffer = 16 << 10
)

// errHandshake marks a malformed handshake from the client.
var errHandshake = errors.New("invalid handshake")

// login is what a client asked for in its HandshakeResponse41.
type login struct {
	caps     uint32
	charset  byte
	user     string
	auth     []byte
	database string
	plugin   string
}

// client is one client connection in its login phase.
type client struct {
	*packetConn
	id   uint32 // the connection id the client was given
	tls  bool
	seed [20]byte
	l    *login
}

// source is the client's IP address (proxy.ClientAddr); zero when the
// conn has none.
func (c *client) source() netip.Addr {
	return proxy.ClientAddr(c.conn).Addr()
}

// greet sends HandshakeV10 and reads the client's answer, upgrading to TLS
// when the client sends an SSLRequest.
func (s *Server) greet(conn net.Conn, id uint32) (*client, error) {
	c := &client{packetConn: newPacketConn(conn, maxHandshakePacket), id: id}
	if _, err := rand.Read(c.seed[:]); err != nil {
		return nil, fmt.Errorf("make auth seed: %w", err)
	}
	for i := range c.seed { // the seed is NUL-terminated on the wire
		c.seed[i] = c.seed[i]&0x7f | 1
	}
	if err := c.write(greeting(id, c.seed, s.offeredCaps())); err != nil {
		return nil, fmt.Errorf("send greeting: %w", err)
	}
	p, err := c.read()
	if err != nil {
		return c, err
	}
	if len(p) == sslRequestLen {
		if p, err = c.startTLS(p, s.TLSConfig); err != nil {
			return c, err
		}
	}
	c.l, err = parseLogin(p)
	if err == nil {
		c.l.caps &= s.offeredCaps() &^ capSSL
	}
	return c, err
}

func (s *Server) offeredCaps() uint32 {
	if s.TLSConfig != nil {
		return serverCaps | capSSL
	}
	return serverCaps
}

// greeting is a HandshakeV10 offering mysql_native_password: the client's
// first answer then carries no secret, and the token is asked for in clear
// only once the connection is known to be encrypted.
func greeting(id uint32, seed [20]byte, caps uint32) []byte {
	b := append([]byte{10}, serverVersion...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = append(append(b, seed[:8]...), 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps))
	b = append(b, charsetUTF8MB4)
	b = binary.LittleEndian.AppendUint16(b, statusAutocommit)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16))
	b = append(b, byte(len(seed)+1))
	b = append(b, make([]byte, 10)...)
	b = append(append(b, seed[8:]...), 0)
	return append(append(b, pluginNative...), 0)
}

// startTLS answers an SSLRequest with the TLS handshake and reads the real
// handshake response over it. The client starts the handshake right after
// the request, without an answer, so its first bytes may already be in the
// reader's buffer: TLS reads through it (TLS authenticates every record,
// so nothing sent in clear can pass for encrypted).
func (c *client) startTLS(req []byte, cfg *tls.Config) ([]byte, error) {
	if cfg == nil || binary.LittleEndian.Uint32(req)&capSSL == 0 {
		return nil, fmt.Errorf("%w: SSLRequest without TLS offered", errHandshake)
	}
	tc := tls.Server(proxy.TLSTransport(c.conn, c.r), cfg) // the pump may take it over
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	c.conn, c.r, c.tls = tc, bufio.NewReaderSize(tc, clientReadBuffer), true
	return c.read()
}

// parseLogin decodes a HandshakeResponse41.
func parseLogin(p []byte) (*login, error) {
	if len(p) < sslRequestLen {
		return nil, fmt.Errorf("%w: handshake response of %d bytes", errHandshake, len(p))
	}
	l := &login{caps: binary.LittleEndian.Uint32(p), charset: p[8]}
	if l.caps&capProtocol41 == 0 {
		return nil, fmt.Errorf("%w: client does not speak protocol 4.1", errHandshake)
	}
	rest := p[sslRequestLen:]
	var ok bool
	if l.user, rest, ok = cstring(rest); !ok {
		return nil, fmt.Errorf("%w: unterminated user name", errHandshake)
	}
	if l.auth, rest, ok = authResponse(l.caps, rest); !ok {
		return nil, fmt.Errorf("%w: truncated auth response", errHandshake)
	}
	if l.caps&capConnectWithDB != 0 && len(rest) > 0 {
		if l.database, rest, ok = cstring(rest); !ok {
			return nil, fmt.Errorf("%w: unterminated database name", errHandshake)
		}
	}
	if l.caps&capPluginAuth != 0 && len(rest) > 0 {
		if l.plugin, _, ok = cstring(rest); !ok {
			return nil, fmt.Errorf("%w: unterminated plugin name", errHandshake)
		}
	}
	return l, nil // connection attributes are not passed on
}

func authResponse(caps uint32, b []byte) (auth, rest []byte, ok bool) {
	switch {
	case caps&capPluginAuthLenenc != 0:
		return lenencBytes(b)
	case caps&capSecureConn != 0:
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, nil, false
		}
		return b[1 : 1+b[0]], b[1+b[0]:], true
	}
	s, rest, ok := cstring(b)
	return []byte(s), rest, ok
}

// token asks for the password in clear (it is a bearer token, not
// something to prove knowledge of): taken from the first answer when the
// client already used mysql_clear_password, else through an auth switch.
func (c *client) token() (string, error) {
	if c.l.plugin == pluginClear {
		return string(trimNUL(c.l.auth)), nil
	}
	if c.l.caps&capPluginAuth == 0 {
		return "", refuse(codeAccessDenied, stateAccessDenied, "the client cannot switch to mysql_clear_password; use a client with plugin authentication")
	}
	if err := c.write(append(append([]byte{hdrEOF}, pluginClear...), 0)); err != nil {
		return "", fmt.Errorf("send auth switch: %w", err)
	}
	p, err := c.read()
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	return string(trimNUL(p)), nil
}

func trimNUL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == 0 {
		return b[:n-1]
	}
	return b
}
