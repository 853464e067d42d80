package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/internal/measure"
)

// bareRelay is the plainest SSH relay golang.org/x/crypto/ssh allows, the
// peer the throughput benchmark measures beside sallyport: it lets any
// client key in, logs in to the target with the direct leg's key, and
// passes each session channel's requests, bytes and exit status on with
// io.Copy. No registry, certificate, recording or socket tuning; AES-GCM
// first on both legs, as sallyport. What sallyport costs beyond it is what
// its own work costs; what both miss is the library's and the machine's.
type bareRelay struct {
	port  int
	known string // known_hosts file naming its host key
}

// startBareRelay serves a bareRelay in front of h's sshd until the
// benchmark ends.
func startBareRelay(b *testing.B, h *harness) bareRelay {
	b.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(b, err)
	host, err := gossh.NewSignerFromKey(priv)
	require.NoError(b, err)
	cfg := &gossh.ServerConfig{
		Config:            gossh.Config{Ciphers: preferredCiphers},
		PublicKeyCallback: func(gossh.ConnMetadata, gossh.PublicKey) (*gossh.Permissions, error) { return nil, nil },
	}
	cfg.AddHostKey(host)

	keyPEM, err := os.ReadFile(h.keys["direct"])
	require.NoError(b, err)
	key, err := gossh.ParsePrivateKey(keyPEM)
	require.NoError(b, err)
	targetKey, _, _, _, err := gossh.ParseAuthorizedKey([]byte(h.sshd.HostKey))
	require.NoError(b, err)
	up := &gossh.ClientConfig{
		Config:          gossh.Config{Ciphers: preferredCiphers},
		User:            h.sshd.User,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(key)},
		HostKeyCallback: gossh.FixedHostKey(targetKey),
	}

	port := measure.Serve(b, func(c net.Conn) { bareServe(c, cfg, h.sshd.Addr(), up) })
	known := filepath.Join(b.TempDir(), "known_hosts")
	line := "[127.0.0.1]:" + strconv.Itoa(port) + " " + string(gossh.MarshalAuthorizedKey(host.PublicKey()))
	require.NoError(b, os.WriteFile(known, []byte(line), 0o600))
	return bareRelay{port: port, known: known}
}

// bareServe relays one client connection's session channels to a
// connection of its own to the target.
func bareServe(c net.Conn, cfg *gossh.ServerConfig, target string, up *gossh.ClientConfig) {
	defer c.Close()
	conn, chans, reqs, err := gossh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go gossh.DiscardRequests(reqs)
	tc, err := gossh.Dial("tcp", target, up)
	if err != nil {
		return
	}
	defer tc.Close()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(gossh.UnknownChannelType, "sessions only")
			continue
		}
		go bareSession(nc, tc)
	}
}

// bareSession relays one session channel: requests both ways, stdout and
// stderr to the client, stdin to the target.
func bareSession(nc gossh.NewChannel, tc *gossh.Client) {
	upCh, upReqs, err := tc.OpenChannel("session", nil)
	if err != nil {
		_ = nc.Reject(gossh.ConnectionFailed, err.Error())
		return
	}
	defer upCh.Close()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go func() {
		for r := range reqs {
			ok, err := upCh.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				_ = r.Reply(ok && err == nil, nil)
			}
		}
	}()
	go func() {
		_, _ = io.Copy(upCh, ch)
		_ = upCh.CloseWrite()
	}()
	var out sync.WaitGroup
	out.Add(2)
	go func() { defer out.Done(); _, _ = io.Copy(ch, upCh) }()
	go func() { defer out.Done(); _, _ = io.Copy(ch.Stderr(), upCh.Stderr()) }()
	out.Wait() // the target's EOF
	_ = ch.CloseWrite()
	for r := range upReqs { // exit-status or exit-signal, then the target closes
		_, _ = ch.SendRequest(r.Type, false, r.Payload)
	}
}

// sshBare runs ssh through r with the direct leg's key.
func (h *harness) sshBare(ctx context.Context, r bareRelay, args ...string) *exec.Cmd {
	return h.sshDirectKey(ctx, r.known, "bench", r.port, args...)
}
