package mysql_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawClient speaks the protocol by hand, to send what real clients do not.
type rawClient struct {
	t    *testing.T
	conn net.Conn
}

func (e *env) raw(t *testing.T) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", e.addr.String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{t: t, conn: conn}
	seq, greeting := c.read()
	require.Equal(t, byte(0), seq)
	require.Equal(t, byte(10), greeting[0], "protocol 10 greeting")
	return c
}

func (c *rawClient) write(seq byte, payload []byte) {
	hdr := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	_, err := c.conn.Write(append(hdr, payload...))
	require.NoError(c.t, err)
}

func (c *rawClient) read() (byte, []byte) {
	var hdr [4]byte
	_, err := io.ReadFull(c.conn, hdr[:])
	require.NoError(c.t, err, "read packet header")
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	p := make([]byte, n)
	_, err = io.ReadFull(c.conn, p)
	require.NoError(c.t, err)
	return hdr[3], p
}

// closed reports whether the bastion closes (or resets) the connection
// within d, skipping whatever it sends first.
func (c *rawClient) closed(d time.Duration) bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// login logs in with the token in clear (plaintext env) and reads the OK.
func (c *rawClient) login(identity, token string) {
	const caps = 1<<9 | 1<<15 | 1<<19 | 1<<3 | 1<<21 | 1<<16 | 1<<17
	b := binary.LittleEndian.AppendUint32(nil, caps)
	b = binary.LittleEndian.AppendUint32(b, 1<<24)
	b = append(b, 45)
	b = append(b, make([]byte, 23)...)
	b = append(append(b, identity...), 0)
	b = append(append(b, byte(len(token))), token...)
	b = append(append(b, targetName...), 0)
	b = append(b, "mysql_clear_password\x00"...)
	c.write(1, b)
	_, ok := c.read()
	require.Equal(c.t, byte(0), ok[0], "login: got %q, want OK", ok)
}

func TestHostileClients(t *testing.T) {
	e := newEnv(t, envOptions{plaintext: true, startup: 500 * time.Millisecond, maxMsg: 1 << 20})
	t.Run("garbage after the greeting", func(t *testing.T) {
		c := e.raw(t)
		junk := make([]byte, 300)
		_, _ = rand.Read(junk)
		_, _ = c.conn.Write(junk)
		assert.True(t, c.closed(2*time.Second), "the bastion must hang up on garbage")
	})
	t.Run("16 MB handshake packet", func(t *testing.T) {
		c := e.raw(t)
		_, _ = c.conn.Write([]byte{0xff, 0xff, 0xff, 1})
		assert.True(t, c.closed(2*time.Second), "an oversized handshake packet is refused without reading it")
	})
	t.Run("stalled handshake", func(t *testing.T) {
		c := e.raw(t)
		start := time.Now()
		assert.True(t, c.closed(3*time.Second))
		assert.Less(t, time.Since(start), 2*time.Second, "the startup timeout must close a silent client")
	})
	t.Run("SSLRequest then plaintext", func(t *testing.T) {
		c := e.raw(t)
		req := binary.LittleEndian.AppendUint32(nil, 1<<9|1<<11|1<<15|1<<19)
		req = append(append(req, 0, 0, 0, 1, 45), make([]byte, 23)...)
		c.write(1, req)
		_, _ = c.conn.Write([]byte("\x05\x00\x00\x02hello"))
		assert.True(t, c.closed(2*time.Second), "plaintext after SSLRequest fails the TLS handshake")
	})
	t.Run("packet out of sequence", func(t *testing.T) {
		c := e.raw(t)
		c.write(7, []byte("x"))
		assert.True(t, c.closed(2*time.Second))
	})
	t.Run("COM_CHANGE_USER and replication are refused, the session goes on", func(t *testing.T) {
		c := e.raw(t)
		c.login(okIdentity, e.token(okIdentity))
		for _, cmd := range []byte{0x11, 0x12, 0x15, 0x08} {
			c.write(0, []byte{cmd, 'r', 'o', 'o', 't', 0})
			_, p := c.read()
			require.Equal(t, byte(0xff), p[0], "command %#x: got %q, want ERR", cmd, p)
			assert.Equal(t, uint16(1047), binary.LittleEndian.Uint16(p[1:]), "command %#x", cmd)
			assert.Contains(t, string(p), "sallyport: command")
		}
		c.write(0, append([]byte{0x03}, "SELECT CURRENT_USER()"...))
		_, p := c.read()
		assert.Equal(t, byte(1), p[0], "one column: the session still works")
	})
	t.Run("command over MaxMessageSize", func(t *testing.T) {
		c := e.raw(t)
		c.login(okIdentity, e.token(okIdentity))
		c.write(0, append([]byte{0x03}, bytes.Repeat([]byte{'x'}, 2<<20)...))
		_, p := c.read()
		require.Equal(t, byte(0xff), p[0], "got %q, want ERR", p)
		assert.Equal(t, uint16(1153), binary.LittleEndian.Uint16(p[1:]))
		assert.True(t, c.closed(2*time.Second))
	})
	e.waitNoUsers(t, 5*time.Second)
	t.Run("the bastion still serves", func(t *testing.T) {
		var one int
		require.NoError(t, e.db(t, okIdentity, e.token(okIdentity)).QueryRow("SELECT 1").Scan(&one))
	})
}
