package recorder

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
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

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// checkGolden compares got with testdata/recorder/<name>, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "testdata", "recorder", name)
	if *updateGolden {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./recorder -run %s -update to create it", t.Name())
	assert.Equal(t, string(want), got, "text replay differs from %s (go test -update rewrites it)", path)
}

// mixedSession records a session with a shell, an exec channel running a
// script that prints text, binary and stderr and is killed by a signal,
// and sftp, scp, forward and query events; its terminal's last output
// comes at the very end, at the time of the end event.
func mixedSession(t *testing.T, h *harness, clock *fakeClock, id string) {
	t.Helper()
	s, err := h.rec.Open(ctxT(t), testMeta(id))
	require.NoError(t, err)
	step := func(d time.Duration) { clock.advance(d) }
	ch0, ch1 := 0, 1
	require.NoError(t, s.Event(Event{Type: EventShell, Channel: &ch0}))
	step(10 * time.Millisecond)
	require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
	require.NoError(t, s.Output(0, []byte("\x1b[01;32m$\x1b[0m ls\r\nnotes.txt\r\n$ ")))
	step(time.Second)
	require.NoError(t, s.Event(Event{Type: EventExec, Channel: &ch1, Command: "bash -s"}))
	require.NoError(t, s.Event(Event{Type: EventCommand, Channel: &ch1, Command: "bash -s", Source: "exec"}))
	require.NoError(t, s.Data(1, StreamStdin, []byte("echo hello\nprintf '\\x00\\x01\\xff'\necho 'ünïcode' >&2\nsleep 60\n")))
	step(100 * time.Millisecond)
	require.NoError(t, s.Data(1, StreamStdout, []byte("hello\n")))
	step(100 * time.Millisecond)
	require.NoError(t, s.Data(1, StreamStdout, []byte{0, 1, 0xff}))
	step(100 * time.Millisecond)
	require.NoError(t, s.Data(1, StreamStderr, []byte("ünïcode\n")))
	step(100 * time.Millisecond)
	require.NoError(t, s.Event(Event{Type: EventNote, Channel: &ch1, Text: "exit signal TERM", Signal: "TERM"}))
	require.NoError(t, s.EndExec(1, nil, "TERM"))
	step(time.Second)
	size, rows := int64(1<<20), int64(3)
	ch2, ch3 := 2, 3
	require.NoError(t, s.Event(Event{Type: EventSFTP, Channel: &ch2, Op: "write", Path: "/srv/backup.tar", Bytes: 1 << 20}))
	require.NoError(t, s.Event(Event{Type: EventSFTP, Channel: &ch2, Op: "rename", Path: "/srv/a", To: "/srv/b",
		Outcome: &Outcome{Error: "permission denied"}}))
	require.NoError(t, s.Event(Event{Type: EventSCP, Channel: &ch2, Op: "upload", Direction: "upload", Path: "/srv/app.conf",
		Mode: "0644", Size: &size, Bytes: 1 << 20, SHA256: strings.Repeat("ab", 32)}))
	require.NoError(t, s.Event(Event{Type: EventForward, Channel: &ch3, Op: "open", Host: "db.internal", Port: 5432}))
	require.NoError(t, s.Event(Event{Type: EventForward, Channel: &ch3, Op: "close", Host: "db.internal", Port: 5432,
		ToTarget: 2048, ToClient: 65536, DurationMS: 2500}))
	require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "SELECT id\n FROM t", DurationMS: 1.5, Bytes: 120,
		Outcome: &Outcome{Tag: "SELECT 3", Rows: &rows}}))
	require.NoError(t, s.Event(Event{Type: EventCommand, Channel: &ch0, Command: "ls", Source: "terminal"}))
	step(time.Second)
	require.NoError(t, s.Output(0, []byte("exit\r\nlogout\r\n")))
	zero := 0
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: &zero, Reason: "client closed"}))
	h.waitUploaded(t)
}

// TestReplayTextExec: the text replay shows a session as it happened, in
// time order: the shell's output, the exec script and its output (binary as
// one line with its SHA-256), every event with its numbers, and the
// terminal's last words before the end.
func TestReplayTextExec(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.Now = clock.Now })
	mixedSession(t, h, clock, "s-mixed")
	src, err := FindSession(ctxT(t), h.store, "s-mixed")
	require.NoError(t, err)

	var text bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{Format: FormatText}))
	got := text.String()
	assert.Contains(t, got, "command (typed in the terminal, as echoed) (channel 0): ls\n")
	// Commands the recorder reconstructs from the terminal are another
	// feature's; the golden file leaves them out.
	var kept []string
	for _, l := range strings.SplitAfter(got, "\n") {
		if !strings.Contains(l, "(typed in the terminal, as echoed)") {
			kept = append(kept, l)
		}
	}
	checkGolden(t, "replay_mixed.txt", strings.Join(kept, ""))

	bin := sha256.Sum256([]byte{0, 1, 0xff})
	assert.Contains(t, got, "[ch1 stdout] <binary: 3 bytes, sha256 "+hex.EncodeToString(bin[:])+">\n")
	order := []string{"notes.txt", "[ch1 stdin] echo hello", "[ch1 stdout] hello", "<binary", "[ch1 stderr] ünïcode",
		"exit signal TERM", "exec_end (channel 1): killed by signal TERM", "sftp write /srv/backup.tar, 1048576 bytes",
		"forward close to db.internal:5432 (channel 3): 2048 bytes to the target, 65536 bytes to the client in 2.5 s",
		"logout", "end: exit status 0 client closed"}
	last := -1
	for _, want := range order {
		i := strings.Index(got, want)
		require.GreaterOrEqual(t, i, 0, "text replay lacks %q:\n%s", want, got)
		assert.Greater(t, i, last, "%q is out of time order:\n%s", want, got)
		last = i
	}
	assert.NotContains(t, got, `shell: {`, "a shell event reads as a sentence, not JSON")

	var js bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &js, ReplayOptions{Format: FormatJSON}))
	var data []string
	for _, l := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var ev Event
		require.NoError(t, json.Unmarshal([]byte(l), &ev))
		if ev.Type == EventData {
			data = append(data, ev.Stream+"@"+strconv.FormatInt(ev.Offset, 10)+"+"+strconv.FormatInt(ev.Bytes, 10))
		}
	}
	assert.Equal(t, []string{"stdin@0+63", "stdout@0+6", "stdout@6+3", "stderr@0+10"}, data, "json replay's data events")
}

// TestReplayTextTruncated: a stretch longer than the text replay prints
// shows its start and how many bytes follow; a stream cut by the capture
// limit says where, and exec_end has the whole stream's length and hash.
func TestReplayTextTruncated(t *testing.T) {
	const limit = 96 << 10
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.Config.ExecCaptureLimit = limit })
	s, err := h.rec.Open(ctxT(t), testMeta("s-long"))
	require.NoError(t, err)
	out := bytes.Repeat([]byte("0123456789abcde\n"), 10_000) // 160,000 bytes of text
	require.NoError(t, s.Data(4, StreamStdout, out))
	status := 0
	require.NoError(t, s.EndExec(4, &status, ""))
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-long")
	require.NoError(t, err)

	var text bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{Format: FormatText}))
	got := text.String()
	whole := sha256.Sum256(out)
	for _, want := range []string{
		"note (channel 4): stdout of channel 4 truncated at 98304 bytes",
		"[ch4 stdout] … (32768 more bytes; recording export --stream exec-4.stdout has them all)\n",
		"exec_end (channel 4): exit status 0; stdin 0 bytes; stdout 160000 bytes (98304 kept, truncated) sha256 " + hex.EncodeToString(whole[:]),
	} {
		assert.Contains(t, got, want)
	}
	assert.Equal(t, maxTextStretch/16, strings.Count(got, "[ch4 stdout] 0123456789abcde\n"), "the first 64 KiB are shown as text, line by line")
	assert.Less(t, len(got), 2*maxTextStretch, "the replay prints a bounded part of a long stretch")
}

// TestReplayTextGolden: a recording made before exec streams and
// compression (chunk/1) still replays as text.
func TestReplayTextGolden(t *testing.T) {
	src, err := DirSource(copyGolden(t))
	require.NoError(t, err)
	var text bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{Format: FormatText}))
	checkGolden(t, "replay_golden.txt", text.String())
}

// TestVerifyFlippedExecByte: a flipped byte in a chunk of an exec stream
// is found by verify, and the text replay refuses to go past it.
func TestVerifyFlippedExecByte(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-flip"))
	require.NoError(t, err)
	require.NoError(t, s.Data(0, StreamStdout, bytes.Repeat([]byte("exec output\n"), 100)))
	require.NoError(t, s.EndExec(0, nil, ""))
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-flip")
	require.NoError(t, err)
	m, _, err := src.loadManifest(ctxT(t))
	require.NoError(t, err)
	var chunk string
	for _, o := range m.Objects {
		if o.Stream == "exec-0.stdout" {
			chunk = o.Name
		}
	}
	require.NotEmpty(t, chunk, "no chunk of exec-0.stdout in %+v", m.Objects)
	path := filepath.Join(h.store.(*FileStore).root, filepath.FromSlash(src.dir), chunk)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)-5] ^= 0x01
	require.NoError(t, os.WriteFile(path, b, 0o644))

	rep, err := Verify(ctxT(t), src, h.key.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	assert.Equal(t, StatusTampered, rep.Status, "report: %s", rep)
	assert.Contains(t, rep.String(), chunk)
	err = Replay(ctxT(t), src, &bytes.Buffer{}, ReplayOptions{Format: FormatText})
	require.Error(t, err, "text replay of a tampered exec stream")
	assert.Contains(t, err.Error(), "run verify")
}

// TestLargeExecReplaysInFlatMemory: the text replay of a 200 MB exec
// stream, its stretches interleaved with stderr, holds one chunk reader
// and one shown stretch per stream, not the stream.
func TestLargeExecReplaysInFlatMemory(t *testing.T) {
	dir := memTempDir(t)
	store, err := NewFileStore(filepath.Join(dir, "store"))
	require.NoError(t, err)
	h := newHarness(t, filepath.Join(dir, "data"), store, testKey(t), func(r *Recorder) {
		r.Config.FlushInterval = time.Second
		r.Config.ExecCaptureLimit = 256 << 20
	})
	s, err := h.rec.Open(ctxT(t), testMeta("s-bigexec"))
	require.NoError(t, err)
	require.NoError(t, s.Data(0, StreamStdin, []byte("cat /var/log/huge.log\n")))
	piece := bytes.Repeat([]byte(strings.Repeat("0123456789abcdef", 5)[:79]+"\n"), 400)
	for i := range bigSize / len(piece) {
		require.NoError(t, s.Data(0, StreamStdout, piece))
		if i%1000 == 0 { // another stream in between ends the stretch
			require.NoError(t, s.Data(0, StreamStderr, []byte("progress\n")))
		}
	}
	require.NoError(t, s.EndExec(0, intp(0), ""))
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0)}))
	h.waitUploaded(t)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), rssChildEnv+"="+h.store.(*FileStore).root+"|s-bigexec")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child: %s", out)
	var n, lines, hwm int64
	_, err = fmt.Sscanf(string(out), "bytes=%d lines=%d hwm=%d", &n, &lines, &hwm)
	require.NoError(t, err, "child output %q", out)
	assert.Less(t, n, int64(bigSize/8), "long stretches are shown in part")
	assert.Greater(t, lines, int64(bigSize/len(piece)/1000), "every stretch has its lines")
	assert.Less(t, hwm, int64(rssLimit), "peak RSS %d MB replaying %d MB of exec output", hwm>>20, bigSize>>20)
	t.Logf("replayed %d MB of exec output as %d KB of text with peak RSS %d MB", bigSize>>20, n>>10, hwm>>20)
}
