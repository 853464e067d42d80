package proxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pumpPeers links two loopback connections with a pump and returns the
// far ends: what user writes reaches target through flows, and back.
func pumpPeers(t *testing.T, p *Pump, fromUser, fromTarget Flow) (user, target net.Conn, l *Link) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	pair := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s
	}
	user, a := pair()
	b, target := pair()
	l, err = p.Link(a, b, nil, nil, fromUser, fromTarget)
	require.NoError(t, err)
	l.Start()
	for _, c := range []net.Conn{user, target} {
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	}
	return user, target, l
}

func same(_ *Link, p []byte) ([]byte, error) { return p, nil }

func TestPumpRelaysBothWaysAndGivesConnectionsBack(t *testing.T) {
	var p Pump
	user, target, l := pumpPeers(t, &p, same, same)
	_, err := user.Write([]byte("query"))
	require.NoError(t, err)
	got := make([]byte, 5)
	_, err = io.ReadFull(target, got)
	require.NoError(t, err)
	assert.Equal(t, "query", string(got))
	_, err = target.Write([]byte("rows!"))
	require.NoError(t, err)
	_, err = io.ReadFull(user, got)
	require.NoError(t, err)
	assert.Equal(t, "rows!", string(got))

	require.NoError(t, user.(*net.TCPConn).CloseWrite())
	a, b, err := l.Wait()
	var le *LinkError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, LinkError{Side: 0, Op: "read", Err: io.EOF}, *le)
	_, err = a.Write([]byte("bye"))
	require.NoError(t, err, "the client's connection is given back for a farewell")
	_, err = io.ReadFull(user, got[:3])
	require.NoError(t, err)
	assert.Equal(t, "bye", string(got[:3]))
	require.NoError(t, b.Close())
	_, err = target.Read(got)
	assert.ErrorIs(t, err, io.EOF, "closing the given-back connection closes the socket")
}

func TestPumpBoundsBuffersAndKeepsOrder(t *testing.T) {
	var p Pump
	user, target, _ := pumpPeers(t, &p, same, same)
	want := make([]byte, 16<<20) // far beyond the socket buffers
	_, _ = rand.Read(want)
	go func() { _, _ = target.Write(want) }()
	time.Sleep(200 * time.Millisecond) // the pump meets a full client socket
	got := make([]byte, len(want))
	_, err := io.ReadFull(user, got)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "bytes arrive whole and in order")
}

func TestPumpStop(t *testing.T) {
	var p Pump
	user, _, l := pumpPeers(t, &p, same, same)
	start := time.Now()
	l.Stop()
	a, _, err := l.Wait()
	require.ErrorIs(t, err, ErrLinkStopped)
	assert.Less(t, time.Since(start), time.Second)
	_, err = a.Write([]byte("ended"))
	require.NoError(t, err)
	got := make([]byte, 5)
	_, err = io.ReadFull(user, got)
	require.NoError(t, err)
	assert.Equal(t, "ended", string(got))
}

// A flow that answers '?' itself pauses the side, answers from another
// goroutine and resumes it; the bytes after '?' go on afterwards, in order.
func TestPumpPauseSendResume(t *testing.T) {
	var p Pump
	var kept []byte
	fromUser := func(l *Link, in []byte) ([]byte, error) {
		kept = append(kept, in...)
		var out []byte
		for i, c := range kept {
			if c == '?' {
				out, kept = append(out, kept[:i]...), append([]byte(nil), kept[i+1:]...)
				l.Pause(0)
				go func() { l.Send(0, []byte("answer")); l.Resume(0) }()
				return out, nil
			}
		}
		out, kept = append(out, kept...), kept[:0]
		return out, nil
	}
	user, target, _ := pumpPeers(t, &p, fromUser, same)
	_, err := user.Write([]byte("ab?cd"))
	require.NoError(t, err)
	got := make([]byte, 6)
	_, err = io.ReadFull(user, got)
	require.NoError(t, err)
	assert.Equal(t, "answer", string(got))
	_, err = io.ReadFull(target, got[:4])
	require.NoError(t, err)
	assert.Equal(t, "abcd", string(got[:4]))
}

func TestPumpFlowRefuses(t *testing.T) {
	var p Pump
	bad := errors.New("bad bytes")
	refuse := func(_ *Link, in []byte) ([]byte, error) { return nil, bad }
	user, target, l := pumpPeers(t, &p, same, refuse)
	_, err := target.Write([]byte("evil"))
	require.NoError(t, err)
	_, _, err = l.Wait()
	var le *LinkError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 1, le.Side)
	assert.Equal(t, "flow", le.Op)
	assert.ErrorIs(t, err, bad)
	require.NoError(t, user.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	n, _ := user.Read(make([]byte, 4))
	assert.Zero(t, n, "refused bytes never reach the other side")
}
