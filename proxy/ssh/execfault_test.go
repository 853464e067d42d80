package ssh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// TestExecFaults: exec sessions that end oddly behave as they would without
// the bastion, and their recordings say what happened and verify.
func TestExecFaults(t *testing.T) {
	h := newHarness(t, harnessOptions{tuneRecorder: func(r *recorder.Recorder) { r.Config.ExecCaptureLimit = 1 << 20 }})
	ctx := testCtx(t, 120*time.Second)

	t.Run("a large upload through a small cap", func(t *testing.T) {
		const size = 256 << 20
		cmd := h.ssh(ctx, "svc-ops", hostArgs("wc -c")...)
		hash := sha256.New()
		cmd.Stdin = io.TeeReader(io.LimitReader(zeroes{}, size), hash)
		var out bytes.Buffer
		cmd.Stdout = &out
		require.NoError(t, cmd.Run())
		assert.Equal(t, "268435456", strings.TrimSpace(out.String()), "the target got every byte")
		src, lines := newestRecording(t, h)
		stdin := eventsOf(lines, "exec_end")[0]["streams"].(map[string]any)["stdin"].(map[string]any)
		assert.Equal(t, float64(size), stdin["bytes"])
		assert.Equal(t, hex.EncodeToString(hash.Sum(nil)), stdin["sha256"])
		assert.Equal(t, float64(1<<20), stdin["captured"])
		assert.Len(t, exportStream(t, ctx, src, "exec-0.stdin"), 1<<20)
	})
	t.Run("the target stops reading and exits while the client still sends", func(t *testing.T) {
		cmd := h.ssh(ctx, "svc-ops", hostArgs("head -c 10")...)
		cmd.Stdin = io.LimitReader(zeroes{}, 64<<20)
		var out bytes.Buffer
		cmd.Stdout = &out
		err := cmd.Run()
		direct := h.sshDirect(ctx, "127.0.0.1", "head -c 10")
		direct.Stdin = io.LimitReader(zeroes{}, 64<<20)
		directErr := direct.Run()
		assert.Equal(t, exitCode(directErr), exitCode(err), "exit as without the bastion")
		assert.Equal(t, 10, out.Len())
		_, lines := newestRecording(t, h)
		require.Len(t, eventsOf(lines, "exec_end"), 1)
	})
	t.Run("the command is killed by a signal", func(t *testing.T) {
		r := run(t, h.ssh(ctx, "svc-ops", hostArgs("echo before; kill -TERM $$; echo after")...), "")
		assert.Equal(t, "before\n", r.stdout)
		assert.NotEqual(t, 0, r.code)
		_, lines := newestRecording(t, h)
		end := eventsOf(lines, "exec_end")[0]
		assert.Equal(t, "TERM", end["signal"], "exec_end names the signal: %v (exit %d, stderr %q)", end, r.code, r.stderr)
	})
	t.Run("a command line that is not UTF-8", func(t *testing.T) {
		out, err := h.goSSHRun("svc-ops", "printf '%s\\n' caf\xe9")
		require.NoError(t, err)
		assert.Equal(t, "caf\xe9\n", out)
		_, lines := newestRecording(t, h)
		assert.NotEmpty(t, eventsOf(lines, "command"), "the command is recorded")
	})
}

// newestRecording waits for the sessions so far to be stored, checks that
// the one not seen before verifies, and returns it with its JSON replay.
// (Session ids sort by the second they started in, so two sessions of one
// second cannot be told apart by id.)
func newestRecording(t *testing.T, h *harness) (recorder.Source, []map[string]any) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	var fresh []recorder.Source
	for _, s := range h.recordings(ctx) {
		if !h.seen[s.ID()] {
			fresh = append(fresh, s)
			h.seen[s.ID()] = true
		}
	}
	require.Len(t, fresh, 1, "want exactly one new recording")
	src := fresh[0]
	rep, err := recorder.Verify(ctx, src, h.recKey.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	require.True(t, rep.OK(), "recording %s: %s", src.ID(), rep)
	return src, replayJSON(t, ctx, src)
}

// zeroes reads as endless zero bytes, without /dev/zero.
type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
