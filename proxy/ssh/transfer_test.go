package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/measure"
	"github.com/sallyport/sallyport/recorder"
)

func TestInteractivePTY(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	r := run(t, h.ssh(ctx, "svc-ops", append([]string{"-tt"}, hostArgs()...)...), "echo pty-$((6*7))\nexit 3\n")
	assert.Contains(t, r.stdout, "pty-42", "the shell's output reaches the client")
	assert.Equal(t, 3, r.code, "got exit %d, want 3 (stderr %q)", r.code, r.stderr)

	srcs := h.recordings(ctx)
	require.Len(t, srcs, 1)
	lines := replayJSON(t, ctx, srcs[0])
	require.Len(t, eventsOf(lines, "shell"), 1, "shell event recorded")
	var out strings.Builder
	for _, l := range eventsOf(lines, "output") {
		out.WriteString(l["data"].(string))
	}
	assert.Contains(t, out.String(), "pty-42", "terminal output is in the asciicast")
	// ssh -tt from a pipe asks for a 0x0 terminal; the cast says 80x24, as terminals assume.
	var cast bytes.Buffer
	require.NoError(t, recorder.ExportCast(ctx, srcs[0], &cast, 0))
	assert.True(t, strings.HasPrefix(cast.String(), `{"version":2,"width":80,"height":24,`), "cast header %.60q", cast.String())

	certs, err := h.sshd.Certificates()
	require.NoError(t, err)
	require.NotEmpty(t, certs)
	c := certs[len(certs)-1]
	assert.Equal(t, []string{h.sshd.User}, c.ValidPrincipals)
	assert.Contains(t, c.Permissions.Extensions, "permit-pty")
	assert.NotContains(t, c.Permissions.Extensions, "permit-port-forwarding")
}

func TestRefusedTerminalAndShell(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	r := run(t, h.ssh(ctx, "svc-exec", append([]string{"-tt"}, hostArgs()...)...), "echo should-not-run\n")
	assert.Contains(t, r.stderr, "sallyport: access denied (action_not_entitled)")
	assert.NotContains(t, r.stdout, "should-not-run")
	assert.Equal(t, 1, r.code, "got exit %d, want 1", r.code)

	// A command in a terminal needs shell too; without -t it runs.
	r = run(t, h.ssh(ctx, "svc-exec", append([]string{"-tt"}, hostArgs("echo in-a-terminal")...)...), "")
	assert.NotContains(t, r.stdout, "in-a-terminal")
	assert.Contains(t, r.stderr, "sallyport: access denied (action_not_entitled)")
	assert.Equal(t, 1, r.code)
	r = run(t, h.ssh(ctx, "svc-exec", hostArgs("echo no-terminal")...), "")
	assert.Equal(t, "no-terminal\n", r.stdout)
	assert.Equal(t, 0, r.code)
}

func sha(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	hs := sha256.New()
	_, err = io.Copy(hs, f)
	require.NoError(t, err)
	return hex.EncodeToString(hs.Sum(nil))
}

func TestSCPAndSFTP(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 80*time.Second)
	local := filepath.Join(h.dir, "payload.bin")
	data := make([]byte, 10<<20)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(local, data, 0o600))
	remote := filepath.Join(h.dir, "remote") // the target is this machine
	require.NoError(t, os.MkdirAll(remote, 0o755))

	scp := func(id string, extra []string, from, to string) result {
		a := append(h.opts(id, id+"@web"), "-P", h.port)
		a = append(append(a, extra...), from, to)
		return run(t, exec.CommandContext(ctx, "scp", a...), "")
	}
	for _, mode := range []struct {
		name  string
		extra []string
	}{{"sftp-based scp", nil}, {"legacy scp", []string{"-O"}}} {
		t.Run(mode.name+" up and down 10 MB", func(t *testing.T) {
			up := filepath.Join(remote, "up-"+strings.Join(mode.extra, ""))
			r := scp("svc-sftp", mode.extra, local, "127.0.0.1:"+up)
			require.Equal(t, 0, r.code, "upload: %s", r.stderr)
			assert.Equal(t, sha(t, local), sha(t, up), "uploaded checksum")
			down := filepath.Join(h.dir, "down-"+strings.Join(mode.extra, ""))
			r = scp("svc-sftp", mode.extra, "127.0.0.1:"+up, down)
			require.Equal(t, 0, r.code, "download: %s", r.stderr)
			assert.Equal(t, sha(t, local), sha(t, down), "downloaded checksum")
		})
	}
	t.Run("scp refused without sftp", func(t *testing.T) {
		r := scp("svc-exec", nil, local, "127.0.0.1:"+filepath.Join(remote, "nope"))
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "access denied (action_not_entitled)")
		assert.NoFileExists(t, filepath.Join(remote, "nope"))
	})
	t.Run("sftp batch", func(t *testing.T) { sftpBatch(t, ctx, h, local, remote) })
	t.Run("sftp operations are recorded", func(t *testing.T) { sftpRecorded(t, ctx, h, remote, len(data)) })
}

// echoServer accepts connections on loopback and echoes until EOF.
func echoServer(t *testing.T) string {
	port := measure.Serve(t, func(c net.Conn) { _, _ = io.Copy(c, c); c.Close() })
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func TestForward(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	echo := echoServer(t)
	_, echoPort, _ := net.SplitHostPort(echo)

	t.Run("ssh -L for an entitled identity", func(t *testing.T) { localForward(t, ctx, h, echoPort) })
	tests := []struct {
		name, identity, dest, want string
	}{
		{"refused without the forward action", "svc-exec", "localhost:" + echoPort, "access denied (action_not_entitled)"},
		{"refused to another host", "svc-ops", "192.0.2.1:80", "forwarding goes only to the target itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, h.ssh(ctx, tt.identity, append([]string{"-W", tt.dest}, hostArgs()...)...), "hello\n")
			assert.NotEqual(t, 0, r.code)
			assert.Contains(t, r.stderr, tt.want)
			assert.NotContains(t, r.stdout, "hello")
		})
	}
	t.Run("a forward to a closed port fails as it does without the bastion", func(t *testing.T) {
		closed := freeLocalPort(t)
		direct := run(t, h.sshDirect(ctx, "-W", "localhost:"+closed, "127.0.0.1"), "hello\n")
		r := run(t, h.ssh(ctx, "svc-ops", append([]string{"-W", "localhost:" + closed}, hostArgs()...)...), "hello\n")
		assert.NotEqual(t, 0, r.code)
		want := "open failed: connect failed: Connection refused"
		assert.Contains(t, direct.stderr, want, "without the bastion")
		assert.Contains(t, r.stderr, want, "through the bastion")
		closedPort, _ := strconv.Atoi(closed)
		var got []map[string]any
		for _, src := range h.recordings(ctx) {
			for _, e := range eventsOf(replayJSON(t, ctx, src), "forward") {
				if e["port"] == float64(closedPort) {
					got = append(got, e)
				}
			}
		}
		require.Len(t, got, 2, "open and close events")
		assert.Equal(t, "open", got[0]["op"])
		assert.Equal(t, "close", got[1]["op"])
		assert.Equal(t, map[string]any{"error_code": "connect_failed", "error": "Connection refused"}, got[1]["outcome"])
		assert.Nil(t, got[1]["to_target"])
	})
	t.Run("forward recorded and certificate permits forwarding", func(t *testing.T) {
		echo, _ := strconv.Atoi(echoPort)
		var got []map[string]any
		for _, src := range h.recordings(ctx) {
			for _, e := range eventsOf(replayJSON(t, ctx, src), "forward") {
				if e["port"] == float64(echo) && e["host"] == "localhost" {
					got = append(got, e)
				}
			}
		}
		require.Len(t, got, 2, "open and close events of the echo forward")
		assert.Equal(t, "open", got[0]["op"])
		close := got[1]
		assert.Equal(t, "close", close["op"])
		n := float64(len("through the tunnel\n"))
		assert.Equal(t, n, close["to_target"], "bytes towards the echo server")
		assert.Equal(t, n, close["to_client"], "bytes echoed back")
		assert.Greater(t, close["duration_ms"], 0.0)
		assert.Equal(t, map[string]any{}, close["outcome"])
		assert.Equal(t, got[0]["channel"], close["channel"])
		certs, err := h.sshd.Certificates()
		require.NoError(t, err)
		require.NotEmpty(t, certs)
		assert.Equal(t, map[string]string{"permit-port-forwarding": ""}, certs[0].Permissions.Extensions)
	})
}

func freeLocalPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

func sftpBatch(t *testing.T, ctx context.Context, h *harness, local, remote string) {
	batch := filepath.Join(h.dir, "batch")
	cmds := strings.Join([]string{"mkdir " + remote + "/d", "put " + local + " " + remote + "/d/a.bin",
		"rename " + remote + "/d/a.bin " + remote + "/d/b.bin", "ls " + remote + "/d", "rm " + remote + "/d/b.bin", "rmdir " + remote + "/d"}, "\n")
	require.NoError(t, os.WriteFile(batch, []byte(cmds+"\n"), 0o600))
	a := append(h.opts("svc-sftp", "svc-sftp@web"), "-P", h.port, "-b", batch, "127.0.0.1")
	r := run(t, exec.CommandContext(ctx, "sftp", a...), "")
	require.Equal(t, 0, r.code, "sftp: %s", r.stderr)
	assert.Contains(t, r.stdout, "b.bin")
	assert.NoDirExists(t, remote+"/d")
}

func sftpRecorded(t *testing.T, ctx context.Context, h *harness, remote string, size int) {
	var ops []string
	var written int64
	for _, src := range h.recordings(ctx) {
		for _, e := range eventsOf(replayJSON(t, ctx, src), "sftp") {
			ops = append(ops, e["op"].(string)+" "+e["path"].(string))
			if e["op"] == "write" && strings.HasSuffix(e["path"].(string), "/d/a.bin") {
				written = int64(e["bytes"].(float64))
			}
		}
	}
	for _, want := range []string{"mkdir " + remote + "/d", "open " + remote + "/d/a.bin", "write " + remote + "/d/a.bin",
		"rename " + remote + "/d/a.bin", "remove " + remote + "/d/b.bin", "rmdir " + remote + "/d"} {
		assert.Contains(t, ops, want)
	}
	assert.Equal(t, int64(size), written, "got %d bytes written, want %d", written, size)
}

func localForward(t *testing.T, ctx context.Context, h *harness, echoPort string) {
	lport := freeLocalPort(t)
	cmd := h.ssh(ctx, "svc-ops", append([]string{"-N", "-o", "ExitOnForwardFailure=yes", "-L", lport + ":localhost:" + echoPort}, hostArgs()...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var c net.Conn
	require.Eventually(t, func() bool {
		var err error
		c, err = net.Dial("tcp", "127.0.0.1:"+lport)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	defer c.Close()
	_, err := c.Write([]byte("through the tunnel\n"))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 19)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err, "stderr: %s", stderr.String())
	assert.Equal(t, "through the tunnel\n", string(buf))
}
