package mysql

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	camysql "github.com/sallyport/sallyport/ca/mysql"
)

// Vectors from go-sql-driver/mysql's auth tests (mysql_native_password is
// exercised by every login to the MariaDB sandbox).
func TestScrambles(t *testing.T) {
	seed := []byte{10, 47, 74, 111, 75, 73, 34, 48, 88, 76, 114, 74, 37, 13, 3, 80, 82, 2, 23, 21}
	assert.Equal(t, "f490e76f66d9d86665ce54d98c78d0acfe2fb0b08b423da807144873d30b312c", hex.EncodeToString(scrambleSHA256(seed, "secret")))
	assert.Equal(t, "abc3934a012cf342e876071c8ee202de51785b430258a7a0138bc79c4d800bc6", hex.EncodeToString(scrambleSHA256(seed, "secret2")))
}

// fakeTarget plays a MySQL 8 server's side of the login with password pw.
type fakeTarget struct {
	t        *testing.T
	plugin   string // in the greeting
	fullAuth bool   // the cache misses: the password must come RSA-encrypted
	switchTo string // answer the first response with an auth switch to this plugin
	key      *rsa.PrivateKey
	pw       string
}

func (f *fakeTarget) serve(conn net.Conn) {
	defer conn.Close()
	pc := newPacketConn(conn, maxHandshakePacket)
	seed := [20]byte{}
	copy(seed[:], "0123456789abcdefghij")
	g := greeting(9, seed, serverCaps)
	g = append(g[:len(g)-len(pluginNative)-1], f.plugin+"\x00"...)
	require.NoError(f.t, pc.write(g))
	resp, err := pc.read()
	require.NoError(f.t, err)
	l, err := parseLogin(resp)
	require.NoError(f.t, err)
	if f.switchTo != "" {
		copy(seed[:], "jihgfedcba9876543210")
		require.NoError(f.t, pc.write(append(append([]byte{hdrEOF}, f.switchTo+"\x00"...), append(seed[:], 0)...)))
		if l.auth, err = pc.read(); err != nil {
			return // the client gave up on the plugin
		}
	}
	if !bytes.Equal(l.auth, scrambleSHA256(seed[:], f.pw)) {
		_ = pc.write(errPacket(1045, "28000", "Access denied"))
		return
	}
	if f.fullAuth {
		f.full(pc, seed[:])
		return
	}
	require.NoError(f.t, pc.write([]byte{1, sha2FastAuthOK}))
	require.NoError(f.t, pc.write(okPacket(statusAutocommit)))
}

func (f *fakeTarget) full(pc *packetConn, seed []byte) {
	require.NoError(f.t, pc.write([]byte{1, sha2FullAuth}))
	req, err := pc.read()
	require.NoError(f.t, err)
	require.Equal(f.t, []byte{sha2RequestKey}, req, "the client asks for the public key")
	der, err := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	require.NoError(f.t, err)
	require.NoError(f.t, pc.write(append([]byte{1}, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)))
	enc, err := pc.read()
	require.NoError(f.t, err)
	plain, err := rsa.DecryptOAEP(sha1.New(), nil, f.key, enc, nil)
	require.NoError(f.t, err)
	for i := range plain {
		plain[i] ^= seed[i%len(seed)]
	}
	if string(plain) != f.pw+"\x00" {
		_ = pc.write(errPacket(1045, "28000", "Access denied"))
		return
	}
	require.NoError(f.t, pc.write(okPacket(statusAutocommit)))
}

func TestUpstreamCachingSHA2(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tests := []struct {
		name    string
		fake    fakeTarget
		pw      string
		wantErr string
	}{
		{name: "fast auth", fake: fakeTarget{plugin: pluginCachingSHA2}},
		{name: "full auth with the target's RSA key", fake: fakeTarget{plugin: pluginCachingSHA2, fullAuth: true}},
		{name: "switch from native", fake: fakeTarget{plugin: pluginNative, switchTo: pluginCachingSHA2, fullAuth: true}},
		{name: "wrong password", fake: fakeTarget{plugin: pluginCachingSHA2}, pw: "wrong", wantErr: "error 1045"},
		{name: "unknown plugin", fake: fakeTarget{plugin: pluginNative, switchTo: "auth_gssapi_client"}, wantErr: "auth_gssapi_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			f := tt.fake
			f.t, f.key, f.pw = t, key, "the-session-password"
			go func() {
				conn, err := ln.Accept()
				if err == nil {
					f.serve(conn)
				}
			}()
			conn, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			up := &upstream{conn: conn, r: newPacketConn(conn, maxHandshakePacket)}
			pw := f.pw
			if tt.pw != "" {
				pw = tt.pw
			}
			err = up.login(&camysql.User{Name: "sp_x", Password: pw}, &login{caps: serverCaps, charset: charsetUTF8MB4})
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.True(t, strings.Contains(err.Error(), tt.wantErr), "got %v, want an error with %q", err, tt.wantErr)
				assert.NotContains(t, err.Error(), pw, "the password is never in an error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, uint64(9), up.thread)
		})
	}
}
