package ssh

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// background starts ssh and returns a func that waits for it to exit,
// giving its stderr and exit code.
func background(t *testing.T, cmd *exec.Cmd) func() (string, int) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return func() (string, int) {
		select {
		case code := <-done:
			return stderr.String(), code
		case <-time.After(20 * time.Second):
			t.Fatalf("ssh still running 20s later")
			return "", 0
		}
	}
}

func TestKillAndRevocationEndSessions(t *testing.T) {
	h := newHarness(t, harnessOptions{watch: true})
	ctx := testCtx(t, 80*time.Second)

	t.Run("kill ends the session within 1s and the recording verifies", func(t *testing.T) {
		cmd := h.ssh(ctx, "svc-ops", hostArgs("echo started; sleep 60")...)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		wait := background(t, cmd)
		sess := h.waitLive(1, 10*time.Second)[0]
		line, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "started\n", line)
		start := time.Now()
		require.True(t, h.live.Kill(sess.ID, "operator test"))
		stderr, code := wait()
		elapsed := time.Since(start)
		assert.Less(t, elapsed, time.Second, "got the client ending %s after the kill, want < 1s", elapsed)
		assert.Contains(t, stderr, "sallyport: session ended (killed)")
		assert.NotEqual(t, 0, code)
		srcs := h.recordings(ctx)
		require.Len(t, srcs, 1)
		rep, err := recorder.Verify(ctx, srcs[0], h.recKey.Public().(ed25519.PublicKey))
		require.NoError(t, err)
		assert.True(t, rep.OK(), "verify: %s", rep)
		ends := eventsOf(replayJSON(t, ctx, srcs[0]), "end")
		require.Len(t, ends, 1)
		assert.Contains(t, ends[0]["reason"], "operator test")
	})

	t.Run("revocation in the registry ends the session within 5s", func(t *testing.T) {
		wait := background(t, h.ssh(ctx, "svc-exec", hostArgs("sleep 60")...))
		h.waitLive(1, 10*time.Second)
		start := time.Now()
		require.NoError(t, h.reg.Revoke(ctx, "svc-exec", "alice@example.com", "key leaked in a CI log"))
		stderr, _ := wait()
		elapsed := time.Since(start)
		assert.Less(t, elapsed, 5*time.Second, "got the session ending %s after the revocation, want < 5s", elapsed)
		assert.Contains(t, stderr, "certification_revoked")
		h.waitLive(0, 5*time.Second)
	})
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name string
		tune func(*Server)
		want string
	}{
		{"idle", func(s *Server) { s.IdleTimeout = 500 * time.Millisecond }, "(idle_timeout)"},
		{"max session", func(s *Server) { s.MaxSession = 700 * time.Millisecond }, "(max_session)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{tune: tt.tune})
			ctx := testCtx(t, 30*time.Second)
			start := time.Now()
			r := run(t, h.ssh(ctx, "svc-ops", hostArgs("sleep 20")...), "")
			assert.Less(t, time.Since(start), 10*time.Second)
			assert.Contains(t, r.stderr, "sallyport: session ended "+tt.want)
			assert.NotEqual(t, 0, r.code)
		})
	}
}

func TestFiftyConcurrentSessions(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 80*time.Second)
	const n = 50
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(t, h.ssh(ctx, "svc-ops", hostArgs("echo session-"+itoa(i))...), "")
		}()
	}
	wg.Wait()
	for i, r := range results {
		assert.Equal(t, "session-"+itoa(i)+"\n", r.stdout, "session %d: exit %d, stderr %q", i, r.code, r.stderr)
	}
	assert.Len(t, h.recordings(ctx), n)
}

func TestCertificateSSHDAccepted(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 30*time.Second)
	r := run(t, h.ssh(ctx, "svc-exec", hostArgs("true")...), "")
	require.Equal(t, 0, r.code, r.stderr)
	srcs := h.recordings(ctx)
	require.Len(t, srcs, 1)
	certs, err := h.sshd.Certificates()
	require.NoError(t, err)
	require.NotEmpty(t, certs)
	c := certs[0]
	for _, other := range certs[1:] { // sshd checks a key before and after its signature
		assert.Equal(t, c.Serial, other.Serial, "one certificate per session")
	}
	assert.Equal(t, "sallyport/"+srcs[0].ID()+"/svc-exec", c.KeyId)
	assert.Equal(t, []string{h.sshd.User}, c.ValidPrincipals)
	life := time.Duration(c.ValidBefore-c.ValidAfter) * time.Second
	assert.LessOrEqual(t, life, 2*time.Minute+30*time.Second, "got lifetime %s, want <= cert_ttl + 30s", life)
	assert.Empty(t, c.Permissions.Extensions, "exec gets no extension")
	assert.Empty(t, c.CriticalOptions)
	lines := replayJSON(t, ctx, srcs[0])
	meta := eventsOf(lines, "session")[0]["session"].(map[string]any)
	assert.Equal(t, strconv.FormatUint(c.Serial, 10), meta["cert_serial"], "recording names the certificate serial")
}

// TestRecordingFailureEndsSession: with fail_closed, a session whose
// recording cannot keep up is ended with recording_unavailable.
func TestRecordingFailureEndsSession(t *testing.T) {
	h := newHarness(t, harnessOptions{tuneRecorder: func(r *recorder.Recorder) {
		r.BufferSize, r.MaxWriteWait = 1, time.Nanosecond // any burst overflows
	}})
	ctx := testCtx(t, 30*time.Second)
	start := time.Now()
	// A shell (recorded as a terminal) that floods, then would idle.
	r := run(t, h.ssh(ctx, "svc-ops", hostArgs()...), "head -c 50000000 /dev/zero; sleep 20\n")
	assert.Less(t, time.Since(start), 15*time.Second, "the session outlived its recording")
	assert.Contains(t, r.stderr, "sallyport: session ended (recording_unavailable)")
	assert.NotEqual(t, 0, r.code)
	srcs := h.recordings(ctx)
	require.Len(t, srcs, 1)
	ends := eventsOf(replayJSON(t, ctx, srcs[0]), "end")
	if assert.Len(t, ends, 1) {
		assert.Contains(t, ends[0]["reason"], "can no longer be recorded")
	}
}
