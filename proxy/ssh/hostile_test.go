package ssh

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// goClient logs in with x/crypto as identity's key under user, returning
// the banner lines the bastion sent.
func (h *harness) goClient(t *testing.T, identity, user string) (*gossh.Client, net.Conn, *strings.Builder, error) {
	t.Helper()
	pem, err := os.ReadFile(h.keys[identity])
	require.NoError(t, err)
	signer, err := gossh.ParsePrivateKey(pem)
	require.NoError(t, err)
	banner := &strings.Builder{}
	var mu sync.Mutex
	cfg := &gossh.ClientConfig{
		User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		BannerCallback: func(m string) error { mu.Lock(); banner.WriteString(m); mu.Unlock(); return nil },
	}
	nc, err := net.DialTimeout("tcp", h.addr, 10*time.Second)
	require.NoError(t, err)
	c, chans, reqs, err := gossh.NewClientConn(nc, h.addr, cfg)
	if err != nil {
		nc.Close()
		return nil, nil, banner, err
	}
	return gossh.NewClient(c, chans, reqs), nc, banner, nil
}

func TestHostileClients(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 80*time.Second)
	base := runtime.NumGoroutine()

	t.Run("odd usernames are refused with a reason", func(t *testing.T) { oddUsernames(t, h) })
	t.Run("huge env values are refused and the session goes on", func(t *testing.T) { hugeEnv(t, h) })
	t.Run("agent, X11 and remote forwarding are refused clearly", func(t *testing.T) { forwardingRefused(t, h) })
	t.Run("window-change flood", func(t *testing.T) { windowChangeFlood(t, h) })
	t.Run("a client that stops reading is not buffered without bound", func(t *testing.T) { stopsReading(t, h, ctx) })
	t.Run("abrupt disconnects end the session", func(t *testing.T) { abruptDisconnect(t, h) })
	t.Run("no goroutine is left behind", func(t *testing.T) { noLeakedGoroutines(t, h, base) })
}

func oddUsernames(t *testing.T, h *harness) {
	for _, user := range []string{"svc-ops\x00@web", strings.Repeat("x", 10000) + "@web", "@web", "svc-ops@",
		"\x1b[31mred\x1b[0m@web", "svc-ops@web@web", "ü@web"} {
		_, _, banner, err := h.goClient(t, "svc-ops", user)
		require.Error(t, err, "user %q logged in", user)
		assert.Contains(t, banner.String(), "sallyport: access denied (", "user %q", user)
		assert.NotContains(t, banner.String(), "\x1b", "a control character reached the client's terminal")
	}
}

func hugeEnv(t *testing.T, h *harness) {
	c, _, _, err := h.goClient(t, "svc-ops", "svc-ops@web")
	require.NoError(t, err)
	defer c.Close()
	s, err := c.NewSession()
	require.NoError(t, err)
	assert.Error(t, s.Setenv("LANG", strings.Repeat("x", 200<<10)))
	assert.Error(t, s.Setenv("LD_PRELOAD", "/tmp/evil.so"), "env outside the allow-list")
	require.NoError(t, s.Setenv("LC_ALL", "C"))
	out, err := s.Output("echo $LC_ALL-${LD_PRELOAD:-none}")
	require.NoError(t, err)
	assert.Equal(t, "C-none\n", string(out))
}

func forwardingRefused(t *testing.T, h *harness) {
	c, _, _, err := h.goClient(t, "svc-ops", "svc-ops@web")
	require.NoError(t, err)
	defer c.Close()
	s, err := c.NewSession()
	require.NoError(t, err)
	var stderr strings.Builder
	s.Stderr = &stderr
	assert.Error(t, agent.RequestAgentForwarding(s))
	ok, err := s.SendRequest("x11-req", true, gossh.Marshal(struct {
		Single        bool
		Proto, Cookie string
		Screen        uint32
	}{false, "MIT-MAGIC-COOKIE-1", "00", 0}))
	require.NoError(t, err)
	assert.False(t, ok, "x11-req accepted")
	require.NoError(t, s.Run("true"))
	assert.Contains(t, stderr.String(), "sallyport: access denied (not_offered): agent forwarding is not allowed")
	assert.Contains(t, stderr.String(), "sallyport: access denied (not_offered): X11 forwarding is not allowed")
	_, err = c.Listen("tcp", "127.0.0.1:0")
	assert.Error(t, err, "remote forwarding was accepted")
}

func windowChangeFlood(t *testing.T, h *harness) {
	c, _, _, err := h.goClient(t, "svc-ops", "svc-ops@web")
	require.NoError(t, err)
	defer c.Close()
	s, err := c.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}))
	in, err := s.StdinPipe()
	require.NoError(t, err)
	out, err := s.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, s.Shell())
	for i := range 5000 {
		require.NoError(t, s.WindowChange(24+i%2, 80))
	}
	_, err = io.WriteString(in, "echo flood-$((1+1)); exit\n")
	require.NoError(t, err)
	got, _ := io.ReadAll(out)
	assert.Contains(t, string(got), "flood-2")
}

func stopsReading(t *testing.T, h *harness, ctx context.Context) {
	c, _, _, err := h.goClient(t, "svc-ops", "svc-ops@web")
	require.NoError(t, err)
	s, err := c.NewSession()
	require.NoError(t, err)
	_, err = s.StdoutPipe() // never read
	require.NoError(t, err)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	require.NoError(t, s.Start("head -c 500000000 /dev/zero"))
	time.Sleep(2 * time.Second)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	assert.Less(t, grown, int64(32<<20), "got heap growth %d bytes with a client not reading, want < 32 MiB", grown)
	// Meanwhile other sessions are served.
	r := run(t, h.ssh(ctx, "svc-ops", hostArgs("echo still-serving")...), "")
	assert.Equal(t, "still-serving\n", r.stdout, r.stderr)
	c.Close()
}

func abruptDisconnect(t *testing.T, h *harness) {
	c, nc, _, err := h.goClient(t, "svc-ops", "svc-ops@web")
	require.NoError(t, err)
	s, err := c.NewSession()
	require.NoError(t, err)
	out, err := s.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, s.Start("echo up; sleep 60"))
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "up\n", line)
	nc.Close()
	h.waitLive(0, 10*time.Second)
}

func noLeakedGoroutines(t *testing.T, h *harness, base int) {
	h.waitLive(0, 10*time.Second)
	var now int
	ok := assert.Eventually(t, func() bool {
		now = runtime.NumGoroutine()
		return now <= base+2
	}, 15*time.Second, 100*time.Millisecond)
	if !ok {
		buf := make([]byte, 1<<20)
		t.Logf("got %d goroutines, want <= %d:\n%s", now, base+2, buf[:runtime.Stack(buf, true)])
	}
}
