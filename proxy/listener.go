package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// DefaultHeaderTimeout is ProxyProtocol.HeaderTimeout's default: a
// balancer sends the header in the connection's first segment, so a peer
// that has not sent it within seconds is not one, and must not hold a
// connection slot.
const DefaultHeaderTimeout = 5 * time.Second

// ErrUntrustedHeader is the error of a connection whose peer is not a
// trusted balancer but opened with a PROXY header: its claim is refused,
// never believed.
var ErrUntrustedHeader = errors.New("PROXY protocol header from a peer that is not a trusted balancer")

// ProxyProtocol is a listener's PROXY protocol setting (proxy_protocol:
// in the ssh:, postgres: and mysql: sections of the config).
type ProxyProtocol struct {
	// Trusted are the networks of the load balancers. A peer in one must
	// open with a PROXY header (v1 or v2), whose client address then
	// stands for the connection; a peer outside all of them must not send
	// one. Empty: no peer is trusted, every header is refused.
	Trusted []netip.Prefix
	// HeaderTimeout bounds the wait for a trusted peer's header. Zero:
	// DefaultHeaderTimeout.
	HeaderTimeout time.Duration
}

// Listen is the door every protocol's clients pass: Serve of the SSH,
// PostgreSQL and MySQL servers accepts from it, and each connection goroutine
// calls Open before speaking the protocol. With pp nil, Listen returns ln:
// no header is expected and the peer's address is the client's. Refused
// connections are logged to log (nil: slog.Default()).
func Listen(ln net.Listener, pp *ProxyProtocol, log *slog.Logger) net.Listener {
	if pp == nil {
		return ln
	}
	if log == nil {
		log = slog.Default()
	}
	return &listener{Listener: ln, pp: pp, log: log}
}

type listener struct {
	net.Listener
	pp  *ProxyProtocol
	log *slog.Logger
}

// Accept returns the next connection without reading from it: the header
// is read by Open in the connection's own goroutine, so a slow or silent
// peer never holds up the accept loop.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &ClientConn{Conn: c, l: l}, nil
}

// Open reads the PROXY header of a connection accepted from Listen, if its
// peer is a trusted balancer, and returns the connection whose RemoteAddr
// is the client's. A connection from any other listener is returned as it
// is. On error the connection is closed, and the refusal logged.
func Open(c net.Conn) (net.Conn, error) {
	cc, ok := c.(*ClientConn)
	if !ok {
		return c, nil
	}
	if err := cc.open(); err != nil {
		cc.Conn.Close()
		return nil, err
	}
	return cc, nil
}

// ClientConn is a connection accepted from Listen. It reads and writes the
// peer's stream unbuffered (the Pump can take it over), and its RemoteAddr
// is the client address a trusted balancer's header gave.
type ClientConn struct {
	net.Conn
	l *listener

	once   sync.Once
	err    error
	remote net.Addr // from the header; nil: the peer's own address
	guard  []byte   // an untrusted peer's first bytes, while they could open a header
	fenced bool     // guard is on
	forged error    // set once an untrusted peer sent a header: every Read fails
}

// open reads the header once; later calls return the first result.
func (c *ClientConn) open() error {
	c.once.Do(func() {
		c.err = c.readHeader()
		if c.err != nil {
			c.refused(c.err)
		}
	})
	return c.err
}

// refused logs why the connection is refused: the one line every PROXY
// protocol refusal leaves, whatever the protocol then says.
func (c *ClientConn) refused(err error) {
	c.l.log.Info("client refused: PROXY protocol", "listener", c.l.Addr().String(),
		"peer", c.Conn.RemoteAddr().String(), "err", err)
}

// readHeader reads a trusted peer's header under the header deadline, and
// fences an untrusted peer's stream against one.
func (c *ClientConn) readHeader() error {
	peer := ClientAddr(c.Conn)
	if !c.l.pp.trusts(peer.Addr()) {
		c.fenced = true
		return nil
	}
	timeout := c.l.pp.HeaderTimeout
	if timeout <= 0 {
		timeout = DefaultHeaderTimeout
	}
	if err := c.Conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("read PROXY header from trusted peer %s: %w", peer, err)
	}
	h, err := ReadHeader(c.Conn)
	if err != nil {
		return fmt.Errorf("trusted peer %s: %w", peer, err)
	}
	if err := c.Conn.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("read PROXY header from trusted peer %s: %w", peer, err)
	}
	if !h.Local {
		c.remote = net.TCPAddrFromAddrPort(h.Source)
	}
	return nil
}

func (p *ProxyProtocol) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.Trusted {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// Read reads the peer's stream; an untrusted peer's first bytes are
// watched for a PROXY signature, which ends the connection.
func (c *ClientConn) Read(b []byte) (int, error) {
	if err := c.open(); err != nil {
		return 0, err
	}
	if c.forged != nil {
		return 0, c.forged
	}
	n, err := c.Conn.Read(b)
	if c.fenced && n > 0 {
		if c.forged = c.watch(b[:n]); c.forged != nil {
			c.refused(c.forged)
			return 0, c.forged
		}
	}
	return n, err
}

// watch checks an untrusted peer's first bytes against both signatures,
// and lifts the fence as soon as they can no longer open a header.
func (c *ClientConn) watch(b []byte) error {
	c.guard = append(c.guard, b[:min(len(b), len(v2Signature)-len(c.guard))]...)
	if bytes.HasPrefix(c.guard, v1Signature) || bytes.HasPrefix(c.guard, v2Signature) {
		return ErrUntrustedHeader
	}
	if !isPrefix(c.guard, v1Signature) && !isPrefix(c.guard, v2Signature) {
		c.fenced, c.guard = false, nil
	}
	return nil
}

// isPrefix reports whether b could still grow into sig.
func isPrefix(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return bytes.Equal(b[:n], sig[:n])
}

// RemoteAddr is the client's address: from the header of a trusted
// balancer, or the peer's own (an untrusted peer, a LOCAL command).
func (c *ClientConn) RemoteAddr() net.Addr {
	if c.open() == nil && c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// CloseWrite half-closes the connection, as the *net.TCPConn under it
// would: a proxy that says its last word and then drains the client needs it.
func (c *ClientConn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("client connection cannot half-close")
	}
	return cw.CloseWrite()
}

// SyscallConn gives the Pump the descriptor of the TCP connection: nothing
// is buffered here, so the stream can be taken over as it stands.
func (c *ClientConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("client connection has no descriptor")
	}
	return sc.SyscallConn()
}

// unwrapClient returns the TCP connection under a ClientConn that is past
// its header and fence, for Usable.
func unwrapClient(c net.Conn) net.Conn {
	if cc, ok := c.(*ClientConn); ok && cc.open() == nil && !cc.fenced {
		return cc.Conn
	}
	return c
}

// ClientAddr is where the client of c connects from, as admission (from:
// rules), audit events, recordings, hygiene and logs see it: the address a
// trusted balancer's PROXY header gave, else the peer's own, the IP
// unmapped. Zero when c has no IP address.
func ClientAddr(c net.Conn) netip.AddrPort {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
