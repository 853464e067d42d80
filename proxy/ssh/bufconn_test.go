package ssh

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcpPair returns both ends of a loopback TCP connection, the first
// wrapped in a relayConn.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	peer := <-accepted
	require.NotNil(t, peer)
	t.Cleanup(func() { c.Close(); peer.Close() })
	return newRelayConn(c), peer
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// writeSizes writes random bytes of each size to c, in order, and returns
// them all.
func writeSizes(t *testing.T, c net.Conn, sizes []int) []byte {
	t.Helper()
	var all []byte
	for _, n := range sizes {
		p := randomBytes(t, n)
		all = append(all, p...)
		k, err := c.Write(p)
		require.NoError(t, err)
		require.Equal(t, n, k)
	}
	return all
}

// requireReceived reads want's length from peer and fails unless it is
// want, within a second.
func requireReceived(t *testing.T, peer net.Conn, want []byte) {
	t.Helper()
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(time.Second)))
	got := make([]byte, len(want))
	n, err := io.ReadFull(peer, got)
	require.NoError(t, err, "the peer got %d of %d bytes within a second", n, len(want))
	assert.True(t, bytes.Equal(want, got), "the peer got other bytes than were written")
}

// TestRelayConnWrites: joining split packet writes loses, delays and
// reorders nothing the peer should see.
func TestRelayConnWrites(t *testing.T) {
	tests := []struct {
		name   string
		writes []int // sizes, in order
		close  bool  // close right after the writes
	}{
		{"a split packet arrives whole", []int{splitSize, 28 << 10}, false},
		{"a packet ending at the split size is not held back", []int{splitSize}, false},
		{"packets of every kind in a row", []int{100, splitSize, 40000, splitSize, splitSize, 7, splitSize}, false},
		{"close sends a held write", []int{64, splitSize}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := tcpPair(t)
			want := writeSizes(t, c, tt.writes)
			if tt.close {
				require.NoError(t, c.Close())
			}
			requireReceived(t, peer, want)
		})
	}
}

// TestRelayConnReads: reading ahead hands out every byte once, in order,
// whatever the read sizes.
func TestRelayConnReads(t *testing.T) {
	c, peer := tcpPair(t)
	want := randomBytes(t, 1<<20)
	go func() { _, _ = peer.Write(want); peer.Close() }()
	var got []byte
	sizes := []int{4, 4092, 28 << 10, 100, 64 << 10, 1}
	for i := 0; ; i++ {
		p := make([]byte, sizes[i%len(sizes)])
		n, err := c.Read(p)
		got = append(got, p[:n]...)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	assert.True(t, bytes.Equal(want, got), "got %d bytes, want the %d written, in order", len(got), len(want))
}

// TestRelayConnCork: corked writes reach the peer whole and in order, also
// when a writer never uncorks (it may be blocked on the peer's window) and
// when the held bytes would outgrow the cork.
func TestRelayConnCork(t *testing.T) {
	tests := []struct {
		name   string
		writes []int // sizes, in order, all while corked
		uncork bool
	}{
		{"a relay write's packets", []int{4, 4092, 28 << 10, 4, 4092, 28 << 10, 4, 4092, 28 << 10, 4, 4092, 28 << 10}, true},
		{"never uncorked: sent after the hold delay", []int{4, 4092, 28 << 10}, false},
		{"more than a cork holds", []int{100 << 10, 100 << 10, 200 << 10, splitSize}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := tcpPair(t)
			rc := c.(*relayConn)
			rc.cork()
			want := writeSizes(t, rc, tt.writes)
			if tt.uncork {
				rc.uncork()
			}
			requireReceived(t, peer, want)
		})
	}
}

// TestRelayConnCorkConcurrent: writes of other goroutines while a relay
// write is corked (window adjustments, other channels) keep their bytes
// together and everything arrives.
func TestRelayConnCorkConcurrent(t *testing.T) {
	c, peer := tcpPair(t)
	rc := c.(*relayConn)
	const writers, writes, size = 4, 200, 1000
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte('a' + w)}, size)
			for i := range writes {
				if i%3 == 0 {
					rc.cork()
				}
				_, _ = rc.Write(p)
				if i%3 == 0 {
					rc.uncork()
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, rc.Close())
	b := <-got
	require.Len(t, b, writers*writes*size)
	for i := 0; i < len(b); i += size {
		assert.Equal(t, bytes.Repeat(b[i:i+1], size), b[i:i+size], "write at %d is not whole", i)
	}
}
