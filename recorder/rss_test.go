package recorder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	rssChildEnv = "SALLYPORT_RECORDER_RSS_CHILD"
	bigSize     = 200 << 20 // the recording size the issue asks for
	rssLimit    = 64 << 20  // the process must stay under this while replaying it
)

// rssChild replays a recording as text and prints bytes, lines and peak RSS.
func rssChild(arg string) error {
	storeDir, id, _ := strings.Cut(arg, "|")
	store, err := NewFileStore(storeDir)
	if err != nil {
		return err
	}
	src, err := FindSession(context.Background(), store, id)
	if err != nil {
		return err
	}
	var cw countingWriter
	if err := Replay(context.Background(), src, &cw, ReplayOptions{Format: FormatText}); err != nil {
		return err
	}
	hwm, err := vmHWM()
	if err != nil {
		return err
	}
	fmt.Printf("bytes=%d lines=%d hwm=%d\n", cw.n, cw.lines, hwm)
	return nil
}

type countingWriter struct{ n, lines int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// vmHWM reads the process's peak resident set size from /proc.
func vmHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// TestLargeRecordingReplaysInFlatMemory records 200 MB of terminal output
// and replays it as text in a child process whose peak RSS must stay under
// 64 MB.
func TestLargeRecordingReplaysInFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING: 200 MB recording in -short mode")
	}
	// The spool and store live in memory (tmpfs) when possible: this test is
	// about the reader's memory, and this machine's disk is slower than a
	// 200 MB burst.
	dir := memTempDir(t)
	store, err := NewFileStore(filepath.Join(dir, "store"))
	require.NoError(t, err)
	h := newHarness(t, filepath.Join(dir, "data"), store, testKey(t), func(r *Recorder) { r.Config.FlushInterval = time.Second })
	s, err := h.rec.Open(ctxT(t), testMeta("s-big"))
	require.NoError(t, err)
	line := []byte(strings.Repeat("0123456789abcdef", 5)[:78] + "\r\n")
	piece := bytes.Repeat(line, 400) // 32000 bytes, as a relay would read
	writes := bigSize / len(piece)
	start := time.Now()
	for range writes {
		require.NoError(t, s.Output(0, piece))
	}
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0)}))
	t.Logf("recorded %d MB in %s", writes*len(piece)>>20, time.Since(start))
	h.waitUploaded(t)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), rssChildEnv+"="+h.store.(*FileStore).root+"|s-big")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child: %s", out)
	var n, lines, hwm int64
	_, err = fmt.Sscanf(string(out), "bytes=%d lines=%d hwm=%d", &n, &lines, &hwm)
	require.NoError(t, err, "child output %q", out)
	wantLines := int64(writes * 400)
	assert.Equal(t, wantLines+2, lines, "every recorded line, plus the header and the end event")
	assert.GreaterOrEqual(t, n, wantLines*79, "text bytes")
	assert.Less(t, hwm, int64(rssLimit), "peak RSS %d MB replaying %d MB", hwm>>20, bigSize>>20)
	t.Logf("replayed %d MB of text with peak RSS %d MB", n>>20, hwm>>20)
}

// memTempDir is a temporary directory on tmpfs (/dev/shm) when there is
// one, and under the default temp dir otherwise.
func memTempDir(t *testing.T) string {
	t.Helper()
	dir, err := makeShmDir()
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { removeAll(dir) })
	return dir
}

func makeShmDir() (string, error) { return os.MkdirTemp("/dev/shm", "recorder-test-") }

func removeAll(dir string) { os.RemoveAll(dir) }
