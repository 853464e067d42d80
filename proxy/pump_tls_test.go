//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/proxy/tlscert"
)

// tlsPeers is a user and a target that speak TLS to a pump, which ends
// the user's TLS and speaks TLS to the target, as the database proxies do.
type tlsPeers struct {
	user, target *tls.Conn
	userRaw      *corkConn // the TCP connection under user
	link         *Link
}

// tlsPumpPeers links the two TLS connections with a pump. The user speaks
// first, before the pump takes over: those bytes are read ahead.
func tlsPumpPeers(t *testing.T, p *Pump, fromUser, fromTarget Flow) *tlsPeers {
	t.Helper()
	dir := t.TempDir()
	cert, _, err := tlscert.LoadOrCreate(filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"), tlscert.ParseNames("localhost"), time.Now())
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	server := &tls.Config{Certificates: []tls.Certificate{cert}}
	client := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	pair := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(); s.Close() })
		for _, x := range []net.Conn{c, s} {
			require.NoError(t, x.SetDeadline(time.Now().Add(10*time.Second)))
		}
		return c, s
	}
	userConn, a := pair()
	b, targetRaw := pair()
	userRaw := &corkConn{Conn: userConn}
	pp := &tlsPeers{user: tls.Client(userRaw, client), target: tls.Server(targetRaw, server), userRaw: userRaw}
	go func() { _, _ = pp.user.Write([]byte("early")) }() // handshake, then bytes at once
	r := bufio.NewReader(a)
	_, err = r.Peek(1) // the ClientHello is read ahead, as MySQL's SSLRequest is
	require.NoError(t, err)
	ta := tls.Server(TLSTransport(a, r), server)
	require.NoError(t, ta.Handshake())
	go func() { _ = pp.target.Handshake() }()
	tb := tls.Client(TLSTransport(b, nil), client)
	require.NoError(t, tb.Handshake())
	for _, c := range []net.Conn{a, b} {
		require.NoError(t, c.SetDeadline(time.Time{}))
	}
	require.True(t, Usable(ta) && Usable(tb), "TLS connections past their handshake can be linked")
	pp.link, err = p.Link(ta, tb, nil, nil, fromUser, fromTarget)
	require.NoError(t, err)
	pp.link.Start()
	return pp
}

func readN(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	got := make([]byte, n)
	_, err := io.ReadFull(r, got)
	require.NoError(t, err)
	return string(got)
}

func TestPumpTLSRelaysAndGivesTLSBack(t *testing.T) {
	var p Pump
	pp := tlsPumpPeers(t, &p, same, same)
	assert.Equal(t, "early", readN(t, pp.target, 5), "bytes sent with the handshake are relayed")
	_, err := pp.user.Write([]byte("query"))
	require.NoError(t, err)
	assert.Equal(t, "query", readN(t, pp.target, 5))

	want := make([]byte, 4<<20) // many records, beyond the socket buffers
	_, _ = rand.Read(want)
	go func() { _, _ = pp.target.Write(want) }()
	time.Sleep(100 * time.Millisecond)
	got := make([]byte, len(want))
	_, err = io.ReadFull(pp.user, got)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "bytes arrive whole and in order")

	require.NoError(t, pp.user.CloseWrite()) // close_notify
	a, b, err := pp.link.Wait()
	var le *LinkError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, LinkError{Side: 0, Op: "read", Err: io.EOF}, *le)
	_, err = a.Write([]byte("bye"))
	require.NoError(t, err, "the client's TLS connection is given back for a farewell")
	assert.Equal(t, "bye", readN(t, pp.user, 3))
	require.NoError(t, b.Close())
	_, err = pp.target.Read(got)
	assert.ErrorIs(t, err, io.EOF, "closing the given-back connection says close_notify")
}

func TestPumpTLSTargetCloseNotify(t *testing.T) {
	var p Pump
	pp := tlsPumpPeers(t, &p, same, same)
	assert.Equal(t, "early", readN(t, pp.target, 5))
	_, err := pp.target.Write([]byte("last"))
	require.NoError(t, err)
	require.NoError(t, pp.target.Close())
	assert.Equal(t, "last", readN(t, pp.user, 4), "what came before close_notify is relayed")
	_, _, err = pp.link.Wait()
	var le *LinkError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, LinkError{Side: 1, Op: "read", Err: io.EOF}, *le)
}

// A record that does not decrypt, or whose header claims more than a
// record may hold, ends the link with a read error at once, and the sender
// gets TLS's alert (the user's own TLS did not send that record, so its
// next read sees the alert).
func TestPumpTLSForgedRecord(t *testing.T) {
	for name, tc := range map[string]struct {
		record []byte
		alert  string
	}{
		"undecryptable": {append([]byte{23, 3, 3, 0, 32}, make([]byte, 32)...), "bad record MAC"},
		"oversized":     {[]byte{23, 3, 3, 0xff, 0xff}, "record overflow"},
	} {
		t.Run(name, func(t *testing.T) {
			var p Pump
			pp := tlsPumpPeers(t, &p, same, same)
			assert.Equal(t, "early", readN(t, pp.target, 5))
			_, err := pp.userRaw.Write(tc.record)
			require.NoError(t, err)
			_, _, err = pp.link.Wait()
			var le *LinkError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, 0, le.Side)
			assert.Equal(t, "read", le.Op)
			assert.NotErrorIs(t, err, io.EOF)
			_, err = pp.user.Read(make([]byte, 16))
			assert.ErrorContains(t, err, tc.alert, "the sender is told by an alert")
		})
	}
}

func TestPumpTLSStop(t *testing.T) {
	var p Pump
	pp := tlsPumpPeers(t, &p, same, same)
	start := time.Now()
	pp.link.Stop()
	a, _, err := pp.link.Wait()
	require.ErrorIs(t, err, ErrLinkStopped)
	assert.Less(t, time.Since(start), time.Second)
	_, err = a.Write([]byte("ended"))
	require.NoError(t, err)
	assert.Equal(t, "ended", readN(t, pp.user, 5))
}

// A flow that pauses the user side mid-way gets the rest of what TLS
// decrypted after Resume, in order, though no more bytes arrive.
func TestPumpTLSPauseResume(t *testing.T) {
	var p Pump
	var kept []byte
	fromUser := func(l *Link, in []byte) ([]byte, error) {
		kept = append(kept, in...)
		for i, c := range kept {
			if c == '?' {
				out := append([]byte(nil), kept[:i]...)
				kept = append([]byte(nil), kept[i+1:]...)
				l.Pause(0)
				go func() { time.Sleep(50 * time.Millisecond); l.Send(0, []byte("answer")); l.Resume(0) }()
				return out, nil
			}
		}
		out := append([]byte(nil), kept...)
		kept = kept[:0]
		return out, nil
	}
	pp := tlsPumpPeers(t, &p, fromUser, same)
	assert.Equal(t, "early", readN(t, pp.target, 5))
	pp.userRaw.corked.Store(true) // three records in one write: one read of the pump
	for _, s := range []string{"ab?", "cd?", "ef"} {
		_, err := pp.user.Write([]byte(s))
		require.NoError(t, err)
	}
	require.NoError(t, pp.userRaw.uncork())
	assert.Equal(t, "answeranswer", readN(t, pp.user, 12))
	assert.Equal(t, "abcdef", readN(t, pp.target, 6))
}

// corkConn keeps what is written while corked, for one write at uncork.
type corkConn struct {
	net.Conn
	corked atomic.Bool
	kept   []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	if c.corked.Load() {
		c.kept = append(c.kept, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) uncork() error {
	c.corked.Store(false)
	_, err := c.Conn.Write(c.kept)
	return err
}
