package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// execRecording runs one exec session and returns its verified recording's
// source and JSON replay lines.
func execRecording(t *testing.T, ctx context.Context, h *harness, cmd, stdin string) (recorder.Source, []map[string]any, result) {
	t.Helper()
	r := run(t, h.ssh(ctx, "svc-ops", hostArgs(cmd)...), stdin)
	src, lines := newestRecording(t, h)
	return src, lines, r
}

func exportStream(t *testing.T, ctx context.Context, src recorder.Source, name string) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, recorder.ExportStream(ctx, src, &b, name))
	return b.Bytes()
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestExecIsRecorded: what a pipeline pipes into `bash -s` and all the
// script prints are in the recording byte for byte, with the command as a
// command event and the exit status in exec_end.
func TestExecIsRecorded(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	script := "echo deploying\nprintf 'to stderr\\n' >&2\nprintf '\\x00\\x01binary\\xff'\nexit 4\n"
	src, lines, r := execRecording(t, ctx, h, "bash -s", script)
	require.Equal(t, 4, r.code, "stderr %q", r.stderr)
	assert.Equal(t, sum([]byte(script)), sum(exportStream(t, ctx, src, "exec-0.stdin")), "stdin stream is the script")
	assert.Equal(t, []byte(r.stdout), exportStream(t, ctx, src, "exec-0.stdout"))
	assert.Equal(t, "to stderr\n", string(exportStream(t, ctx, src, "exec-0.stderr")))
	commands := eventsOf(lines, "command")
	require.Len(t, commands, 1)
	assert.Equal(t, "bash -s", commands[0]["command"])
	assert.Equal(t, "exec", commands[0]["source"])
	ends := eventsOf(lines, "exec_end")
	require.Len(t, ends, 1)
	assert.Equal(t, 4.0, ends[0]["exit_status"])
	streams := ends[0]["streams"].(map[string]any)
	assert.Equal(t, sum([]byte(script)), streams["stdin"].(map[string]any)["sha256"])
	assert.Equal(t, float64(len(script)), streams["stdin"].(map[string]any)["bytes"])
	assert.NotEmpty(t, eventsOf(lines, "data"), "data events place the streams in time")
}

// TestExecCaptureLimit: past the limit the output still reaches the client
// whole; the recording keeps the first 64 KiB, says so, and its exec_end
// has the whole stream's length and SHA-256, so an auditor can prove which
// file was read without the recording keeping it.
func TestExecCaptureLimit(t *testing.T) {
	h := newHarness(t, harnessOptions{tuneRecorder: func(r *recorder.Recorder) { r.Config.ExecCaptureLimit = 64 << 10 }})
	ctx := testCtx(t, 60*time.Second)
	file := filepath.Join(h.dir, "random.bin") // the target is this machine
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(file, data, 0o644))
	src, lines, r := execRecording(t, ctx, h, "cat "+file, "")
	require.Equal(t, 0, r.code, "stderr %q", r.stderr)
	require.Equal(t, sum(data), sum([]byte(r.stdout)), "the client got the whole file")
	assert.Equal(t, data[:64<<10], exportStream(t, ctx, src, "exec-0.stdout"), "the first 64 KiB are kept")
	ends := eventsOf(lines, "exec_end")
	require.Len(t, ends, 1)
	stdout := ends[0]["streams"].(map[string]any)["stdout"].(map[string]any)
	assert.Equal(t, float64(1<<20), stdout["bytes"])
	assert.Equal(t, sum(data), stdout["sha256"])
	assert.Equal(t, true, stdout["truncated"])
	cut := false
	for _, n := range eventsOf(lines, "note") {
		cut = cut || n["text"] == "stdout of channel 0 truncated at 65536 bytes (recordings.exec_capture_limit): the rest is counted and hashed, not kept"
	}
	assert.True(t, cut, "the recording says where stdout was cut")
}
