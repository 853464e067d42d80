package ssh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/recorder"
)

// idleSessions is how many idle sessions the memory benchmark holds open.
const idleSessions = 500

// goTarget is a lightweight SSH target trusting userCA whose sessions idle
// until the client leaves: OpenSSH's per-session processes would make the
// target, not the bastion, the bottleneck.
func goTarget(tb testing.TB, userCA *ca.SSHUserCA) Target {
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(tb, err)
	signer, err := gossh.NewSignerFromKey(hk)
	require.NoError(tb, err)
	checker := &gossh.CertChecker{IsUserAuthority: func(k gossh.PublicKey) bool {
		return bytes.Equal(k.Marshal(), userCA.PublicKey().Marshal())
	}}
	srv := &gliderssh.Server{
		Handler: func(s gliderssh.Session) { <-s.Context().Done() },
		PublicKeyHandler: func(ctx gliderssh.Context, key gliderssh.PublicKey) bool {
			c, ok := key.(*gossh.Certificate)
			return ok && checker.CheckCert(ctx.User(), c) == nil && checker.IsUserAuthority(c.SignatureKey)
		},
	}
	srv.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return Target{Name: "web", Address: ln.Addr().String(), HostKeys: []gossh.PublicKey{signer.PublicKey()}}
}

// inUse is the process's live Go memory: heap in use plus goroutine stacks.
func inUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// openIdle opens n idle shell sessions with login and returns a closer.
func openIdle(tb testing.TB, n int, addr string, cfg *gossh.ClientConfig) func() {
	var clients []*gossh.Client
	for range n {
		c, err := gossh.Dial("tcp", addr, cfg)
		require.NoError(tb, err)
		s, err := c.NewSession()
		require.NoError(tb, err)
		require.NoError(tb, s.Shell())
		clients = append(clients, c)
	}
	return func() {
		for _, c := range clients {
			c.Close()
		}
	}
}

// BenchmarkSSHIdleSessionMemory holds 500 idle sessions through the bastion
// and 500 straight to the same Go target, and reports the difference per
// session: what the bastion (both legs, recording open) costs.
func BenchmarkSSHIdleSessionMemory(b *testing.B) {
	var target Target
	h := newHarness(b, harnessOptions{tune: func(s *Server) {
		target = goTarget(b, s.CA)
		s.Targets = func(name string) (Target, bool) { return target, name == "web" }
	}, tuneRecorder: func(r *recorder.Recorder) {
		// The default: the recorder syncs every live session's spool once
		// per interval, idle or not; the tests' 50 ms would swamp the disk.
		r.Config.FlushInterval = time.Second
	}})
	pem, err := os.ReadFile(h.keys["svc-ops"])
	require.NoError(b, err)
	key, err := gossh.ParsePrivateKey(pem)
	require.NoError(b, err)
	cert, err := h.srv.CA.Issue(ca.SSHCertRequest{SessionID: "bench", Identity: "direct", Login: "bench"})
	require.NoError(b, err)
	direct := &gossh.ClientConfig{User: "bench", Auth: []gossh.AuthMethod{gossh.PublicKeys(cert.Signer)},
		HostKeyCallback: gossh.FixedHostKey(target.HostKeys[0]), Timeout: 10 * time.Second}
	proxied := &gossh.ClientConfig{User: "svc-ops@web", Auth: []gossh.AuthMethod{gossh.PublicKeys(key)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	b.ResetTimer()
	for range b.N {
		base := inUse()
		closeDirect := openIdle(b, idleSessions, target.Address, direct)
		directBytes := inUse() - base
		closeDirect()
		h.waitLive(0, 10*time.Second)
		base = inUse()
		closeProxied := openIdle(b, idleSessions, h.addr, proxied)
		h.waitLive(idleSessions, 30*time.Second)
		proxiedBytes := inUse() - base
		closeProxied()
		h.waitLive(0, 30*time.Second)
		b.ReportMetric(float64(directBytes)/idleSessions/1024, "direct-KiB/session")
		b.ReportMetric(float64(proxiedBytes)/idleSessions/1024, "proxied-KiB/session")
		b.ReportMetric(float64(proxiedBytes-directBytes)/idleSessions/1024, "bastion-KiB/session")
	}
}
