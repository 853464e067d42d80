package ssh

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// TestReplayTextShowsExecScript: a script piped into `bash -s` through the
// real ssh client reads back in the text replay as a person would follow
// it: the command, the script, what it printed on stdout and stderr in
// that order, binary output as one line with its hash, and the exit status
// with each stream's total and SHA-256.
func TestReplayTextShowsExecScript(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	script := "echo step one\nsleep 0.2\necho 'step two failed' >&2\nsleep 0.2\nprintf '\\x00\\x01\\xff'\nexit 3\n"
	src, _, r := execRecording(t, ctx, h, "bash -s", script)
	require.Equal(t, 3, r.code, "stderr %q", r.stderr)

	var text bytes.Buffer
	require.NoError(t, recorder.Replay(ctx, src, &text, recorder.ReplayOptions{Format: recorder.FormatText}))
	got := text.String()
	order := []string{
		"exec: bash -s (channel 0)",
		"[ch0 stdin] echo step one\n[ch0 stdin] sleep 0.2\n[ch0 stdin] echo 'step two failed' >&2\n",
		"[ch0 stdout] step one\n",
		"[ch0 stderr] step two failed\n",
		"[ch0 stdout] <binary: 3 bytes, sha256 " + sum([]byte{0, 1, 0xff}) + ">\n",
		"exec_end (channel 0): exit status 3; stdin " + strconv.Itoa(len(script)) + " bytes sha256 " + sum([]byte(script)) +
			"; stdout 12 bytes sha256 " + sum(append([]byte("step one\n"), 0, 1, 0xff)),
		"end: exit status 3",
	}
	last := -1
	for _, want := range order {
		i := strings.Index(got, want)
		require.GreaterOrEqual(t, i, 0, "text replay lacks %q:\n%s", want, got)
		assert.Greater(t, i, last, "%q is out of order:\n%s", want, got)
		last = i
	}
}
