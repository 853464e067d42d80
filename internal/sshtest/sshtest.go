// Package sshtest serves sallyport's SSH proxy on loopback for the tests
// that drive it with the real ssh client (the web console's live view,
// serve's end-to-end flows), and gives that client its files and arguments.
package sshtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	sshproxy "github.com/sallyport/sallyport/proxy/ssh"
)

// shutdownTimeout bounds the proxy's shutdown when the test ends.
const shutdownTimeout = 3 * time.Second

// Serve gives srv a fresh host key and serves it on a loopback port until
// the test ends. It returns the port and a known_hosts file, written in
// dir, that trusts the host key at 127.0.0.1 and that port.
func Serve(ctx context.Context, t testing.TB, srv *sshproxy.Server, dir string) (port, knownHosts string) {
	t.Helper()
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := gossh.NewSignerFromKey(hostKey)
	require.NoError(t, err)
	srv.HostSigners = []gossh.Signer{signer}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	knownHosts = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%s %s", port, gossh.MarshalAuthorizedKey(signer.PublicKey()))
	require.NoError(t, os.WriteFile(knownHosts, []byte(line), 0o600))
	go srv.Serve(ctx, ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return port, knownHosts
}

// WriteKey writes a fresh OpenSSH private key file at path for the ssh
// client and returns its public key as an authorized_keys line.
func WriteKey(t testing.TB, path string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := gossh.MarshalPrivateKey(priv, filepath.Base(path))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	sp, err := gossh.NewPublicKey(pub)
	require.NoError(t, err)
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp)))
}

// ClientArgs are the real ssh client's arguments to log in with the key
// file key only, trusting only the host keys in knownHosts and never
// prompting or reading the user's configuration, followed by extra.
func ClientArgs(key, knownHosts string, extra ...string) []string {
	return append([]string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"}, extra...)
}
