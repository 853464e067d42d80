package postgres_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostileClients sends what no well-behaved client sends and checks the
// bastion refuses it quickly and goes on serving.
func TestHostileClients(t *testing.T) {
	e := newEnv(t, envOptions{startup: 300 * time.Millisecond, maxMsg: 1 << 20})
	for _, tc := range []struct {
		name  string
		send  []byte
		want  string // in the FATAL message; empty: the connection just closes
		first byte   // expected first byte of the answer
	}{
		{name: "http request", send: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), first: 'E', want: "invalid startup packet"},
		{name: "huge length", send: be32(0x7fffffff, 196608), first: 'E', want: "length 2147483647"},
		{name: "tiny length", send: be32(4, 0), first: 'E', want: "invalid startup packet"},
		{name: "protocol 2", send: startupPacket(2<<16, "user", "x"), first: 'E', want: "unsupported frontend protocol 2.0"},
		{name: "bytes after SSLRequest", send: append(be32(8, 80877103), "smuggled"...), first: 'E', want: "unencrypted bytes after SSLRequest"},
		{name: "unterminated parameters", send: append(be32(16, 196608), "user\x00abc"...), first: 'E', want: "unterminated"},
		{name: "cancel with unknown key", send: be32(16, 80877102, 1234, 5678)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := e.dialRaw(t)
			_, err := conn.Write(tc.send)
			require.NoError(t, err)
			got, err := io.ReadAll(conn)
			require.NoError(t, err, "the bastion must close the connection")
			if tc.first == 0 {
				assert.Empty(t, got)
				return
			}
			require.NotEmpty(t, got)
			assert.Equal(t, string(tc.first), string(got[0:1]))
			assert.Contains(t, string(got), tc.want)
		})
	}
	t.Run("client that never finishes startup", func(t *testing.T) {
		for _, partial := range [][]byte{nil, be32(100)[:3], startupPacket(196608, "user", "x")[:12]} {
			conn := e.dialRaw(t)
			_, _ = conn.Write(partial)
			start := time.Now()
			_, err := io.ReadAll(conn)
			require.NoError(t, err)
			assert.Less(t, time.Since(start), 2*time.Second, "got close after %s, want the 300ms startup timeout", time.Since(start))
		}
	})
	t.Run("client that never sends its password", func(t *testing.T) {
		conn := e.dialRaw(t)
		_, _ = conn.Write(startupPacket(196608, "user", okIdentity, "database", targetName))
		start := time.Now()
		_, err := io.ReadAll(conn)
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 2*time.Second)
	})
	t.Run("GSSENCRequest is declined and startup goes on", func(t *testing.T) {
		conn := e.dialRaw(t)
		_, err := conn.Write(be32(8, 80877104))
		require.NoError(t, err)
		answer := make([]byte, 1)
		_, err = io.ReadFull(conn, answer)
		require.NoError(t, err)
		assert.Equal(t, "N", string(answer))
		_, err = conn.Write(startupPacket(196608, "user", okIdentity, "database", targetName))
		require.NoError(t, err)
		got, _ := io.ReadAll(conn)
		assert.Contains(t, string(got), "TLS required", "a plaintext startup after GSSENC is read and refused for lack of TLS")
	})
	t.Run("newer minor version and _pq_ options are negotiated", func(t *testing.T) {
		conn := tls.Client(e.dialRaw(t), &tls.Config{InsecureSkipVerify: true})
		raw := conn.NetConn()
		_, err := raw.Write(be32(8, 80877103))
		require.NoError(t, err)
		answer := make([]byte, 1)
		_, err = io.ReadFull(raw, answer)
		require.NoError(t, err)
		require.Equal(t, "S", string(answer))
		fe := pgproto3.NewFrontend(conn, conn)
		_, err = conn.Write(startupPacket(3<<16|9, "user", okIdentity, "database", targetName, "_pq_.compression", "on"))
		require.NoError(t, err)
		msg, err := fe.Receive()
		require.NoError(t, err)
		npv, ok := msg.(*pgproto3.NegotiateProtocolVersion)
		require.True(t, ok, "got %T, want NegotiateProtocolVersion", msg)
		assert.Equal(t, uint32(2), npv.NewestMinorProtocol)
		assert.Equal(t, []string{"_pq_.compression"}, npv.UnrecognizedOptions)
		msg, err = fe.Receive()
		require.NoError(t, err)
		assert.IsType(t, &pgproto3.AuthenticationCleartextPassword{}, msg)
	})
	t.Run("oversized message ends the session", func(t *testing.T) {
		conn := e.pgx(t, okIdentity, e.token(okIdentity))
		_, err := conn.Exec(context.Background(), "SELECT length($1::text)", strings.Repeat("x", 2<<20))
		require.Error(t, err, "a message over the limit must not reach the target")
		e.waitNoRoles(t, 5*time.Second)
		evs := e.events(t, e.lastSession(t))
		assert.Contains(t, evs[len(evs)-1].Reason, "message too large", "the recording says why the session ended")
	})
	t.Run("still serving", func(t *testing.T) {
		out, err := e.psql(t, okIdentity, e.token(okIdentity), "require", "", "-c", "SELECT 1")
		require.NoError(t, err, out)
		assert.Equal(t, "1\n", out)
	})
}

func (e *env) dialRaw(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e.addr.String(), 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

func be32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// startupPacket builds a StartupMessage with any version code.
func startupPacket(code uint32, kv ...string) []byte {
	body := be32(code)
	for _, s := range kv {
		body = append(append(body, s...), 0)
	}
	body = append(body, 0)
	return append(be32(uint32(len(body)+4)), body...)
}
