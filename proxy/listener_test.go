package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/syncbuf"
)

// echoAddr serves Listen(ln, pp) with an Acceptor whose sessions answer
// each client "ADDR LINE" (the client address they see and the first line
// they read) or "refused: ERR"; it returns the address and a count of the
// sessions that ran.
func echoAddr(t *testing.T, pp *ProxyProtocol) (string, *atomic.Int32) {
	addr, sessions, _ := echoAddrLog(t, pp)
	return addr, sessions
}

// echoAddrLog is echoAddr with the listener's log.
func echoAddrLog(t *testing.T, pp *ProxyProtocol) (string, *atomic.Int32, *syncbuf.Buffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sessions atomic.Int32
	var a Acceptor
	log := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Serve(ctx, Listen(ln, pp, slog.New(slog.NewTextHandler(log, nil))), func(_ context.Context, c net.Conn) {
			defer c.Close()
			sessions.Add(1)
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				io.WriteString(c, "refused: "+err.Error()+"\n")
				return
			}
			io.WriteString(c, ClientAddr(c).String()+" "+line)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), &sessions, log
}

// ask connects, sends b and returns the answer line ("" when the bastion
// closed the connection without one).
func ask(t *testing.T, addr string, b []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(line, "\n")
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func TestListenTrustedBalancerNamesTheClient(t *testing.T) {
	addr, _ := echoAddr(t, &ProxyProtocol{Trusted: loopback})
	tests := []struct {
		name   string
		header []byte
		want   string
	}{
		{"v1", []byte("PROXY TCP4 198.51.100.7 10.0.0.5 52144 5432\r\n"), "198.51.100.7:52144 hello"},
		{"v2", v2Header(1, 0x11, client4, lb4, nil), "198.51.100.7:52144 hello"},
		{"v2 inet6", v2Header(1, 0x21, client6, lb6, nil), "[2001:db8::7]:52144 hello"},
		{"v2 4 KB of TLVs", v2Header(1, 0x11, client4, lb4, tlv(0xE0, make([]byte, 4093))), "198.51.100.7:52144 hello"},
		{"v2 local: the balancer's own", v2Header(0, 0x00, netip.AddrPort{}, netip.AddrPort{}, nil), "127.0.0.1:"},
		{"v1 unknown: the balancer's own", []byte("PROXY UNKNOWN\r\n"), "127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ask(t, addr, append(tt.header, "hello\n"...))
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestListenRefusesWhatItMustNotBelieve(t *testing.T) {
	trusted, trustedSessions, trustedLog := echoAddrLog(t, &ProxyProtocol{Trusted: loopback, HeaderTimeout: 300 * time.Millisecond})
	untrusted, _, untrustedLog := echoAddrLog(t, &ProxyProtocol{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	tests := []struct {
		name string
		addr string
		send []byte
		want string
	}{
		{"trusted peer without a header", trusted, []byte("SSH-2.0-OpenSSH_9.6\r\nhello\n"), ""},
		{"trusted peer, malformed header", trusted, []byte("PROXY TCP4 198.51.100.7 10.0.0.5 99999 5432\r\nhello\n"), ""},
		{"trusted peer, truncated header", trusted, v2Header(1, 0x11, client4, lb4, nil)[:20], ""},
		{"untrusted peer with a v1 header", untrusted, []byte("PROXY TCP4 198.51.100.7 10.0.0.5 52144 5432\r\nhello\n"), "refused: " + ErrUntrustedHeader.Error()},
		{"untrusted peer with a v2 header", untrusted, append(v2Header(1, 0x11, client4, lb4, nil), "hello\n"...), "refused: " + ErrUntrustedHeader.Error()},
		{"untrusted peer without one", untrusted, []byte("hello\n"), "127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ask(t, tt.addr, tt.send); !strings.HasPrefix(got, tt.want) || (tt.want == "" && got != "") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if n := trustedSessions.Load(); n != 0 {
		t.Errorf("%d sessions ran for refused trusted peers, want none", n)
	}
	for _, l := range []struct {
		log  fmt.Stringer
		want int
	}{{trustedLog, 3}, {untrustedLog, 2}} {
		if got := strings.Count(l.log.String(), `msg="client refused: PROXY protocol"`); got != l.want {
			t.Errorf("got %d refusal lines, want %d:\n%s", got, l.want, l.log)
		}
	}
}

// A header that trickles in is cut off at the header deadline, and the
// listener serves other clients meanwhile.
func TestListenSlowHeaderHoldsNobodyElse(t *testing.T) {
	addr, _ := echoAddr(t, &ProxyProtocol{Trusted: loopback, HeaderTimeout: 1500 * time.Millisecond})
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	trickled := make(chan error, 1)
	go func() {
		for _, b := range []byte("PROXY TCP4 198.51.100.7 10.0.0.5 52144 5432\r\n") {
			if _, err := slow.Write([]byte{b}); err != nil {
				trickled <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		trickled <- nil
	}()
	start := time.Now()
	if got := ask(t, addr, append(v2Header(1, 0x11, client4, lb4, nil), "hello\n"...)); got != "198.51.100.7:52144 hello" {
		t.Errorf("prompt client: got %q", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("prompt client waited %v behind slow ones", d)
	}
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("silent balancer: got %v, want the bastion to close it (EOF)", err)
	}
	if err := <-trickled; err == nil {
		t.Errorf("a header trickled over 2.3s was read to its end, want it cut at 1.5s")
	}
}

// A connection past its header is still a bare TCP connection to the Pump
// (plain sessions behind a balancer are relayed by epoll like any other)
// and can half-close like one.
func TestListenClientStaysPumpable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := Listen(ln, &ProxyProtocol{Trusted: loopback}, slog.New(slog.DiscardHandler))
	halfClosed := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			halfClosed <- err
			return
		}
		defer c.Close()
		c.Write(v2Header(1, 0x11, client4, lb4, nil))
		_, err = c.Read(make([]byte, 1))
		halfClosed <- err
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := Open(c); err != nil {
		t.Fatal(err)
	}
	if got, want := Usable(c), Usable(&net.TCPConn{}); got != want {
		t.Errorf("Usable after the header: got %v, want %v as for a bare TCP connection", got, want)
	}
	hc, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("a client connection cannot half-close; a TCP connection can")
	}
	if err := hc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := <-halfClosed; !errors.Is(err, io.EOF) {
		t.Errorf("the client read %v after CloseWrite, want EOF", err)
	}
}

// peerConn is one end of a net.Pipe that says it comes from a balancer.
type peerConn struct{ net.Conn }

func (peerConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(lb4) }

// SetReadDeadline behaves as TCP's does once the peer has closed: it
// succeeds (a net.Pipe refuses it with io.ErrClosedPipe, which made Open
// fail when the fuzzer's writer closed right after the header).
func (p peerConn) SetReadDeadline(t time.Time) error {
	if err := p.Conn.SetReadDeadline(t); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return err
	}
	return nil
}

// FuzzOpen feeds arbitrary bytes to a trusted balancer's connection: Open
// must not panic; the client address it gives must be the balancer's own
// or one ReadHeader finds in the same bytes; and whatever follows the
// header must reach the protocol unchanged.
func FuzzOpen(f *testing.F) {
	f.Add(append([]byte("PROXY TCP4 198.51.100.7 10.0.0.5 52144 5432\r\n"), "SSH-2.0-x\r\n"...))
	f.Add(append(v2Header(1, 0x21, client6, lb6, tlv(0x05, []byte("id"))), 0, 0, 0, 8))
	f.Add(v2Header(0, 0x00, netip.AddrPort{}, netip.AddrPort{}, nil))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00"))
	ln, err := net.Listen("tcp", "127.0.0.1:0") // named in the refusal log line
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() { b.Write(in); b.Close() }()
		l := &listener{pp: &ProxyProtocol{Trusted: []netip.Prefix{netip.PrefixFrom(lb4.Addr(), 32)}, HeaderTimeout: time.Second},
			log: slog.New(slog.DiscardHandler), Listener: ln}
		c, err := Open(&ClientConn{Conn: peerConn{a}, l: l})
		want, werr := ReadHeader(bytes.NewReader(in))
		if (err == nil) != (werr == nil) {
			t.Fatalf("Open: %v, ReadHeader: %v", err, werr)
		}
		if err != nil {
			return
		}
		got := ClientAddr(c)
		switch {
		case want.Local && got != lb4:
			t.Fatalf("local header: got %v, want the balancer's own %v", got, lb4)
		case !want.Local && got != netip.AddrPortFrom(want.Source.Addr().Unmap(), want.Source.Port()):
			t.Fatalf("got %v, the header says %v", got, want.Source)
		}
		rest, _ := io.ReadAll(c)
		hr := bytes.NewReader(in)
		ReadHeader(hr)
		if !bytes.Equal(rest, in[len(in)-hr.Len():]) {
			t.Fatalf("after the header the protocol got %q, want %q", rest, in[len(in)-hr.Len():])
		}
	})
}
