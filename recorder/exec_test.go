package recorder

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExecStreams: an exec channel's stdin, stdout and stderr are kept
// byte for byte up to the capture limit, each as its own stream; data
// events place each stretch in time; past the limit the stream is counted
// and hashed, the cut is noted, and exec_end carries every stream's whole
// length and SHA-256. The recording verifies.
func TestExecStreams(t *testing.T) {
	const limit = 64 << 10
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.Config.ExecCaptureLimit = limit })
	meta := testMeta("s-exec")
	meta.Protocol = "ssh"
	s, err := h.rec.Open(ctxT(t), meta)
	require.NoError(t, err)

	script := []byte("set -e\necho hello\nhead -c 200000 /dev/urandom\n")
	out := make([]byte, 200_000)
	_, _ = rand.Read(out)
	require.NoError(t, s.Data(0, StreamStdin, script))
	for p := out; len(p) > 0; p = p[min(len(p), 30_000):] { // several relay reads
		require.NoError(t, s.Data(0, StreamStdout, p[:min(len(p), 30_000)]))
	}
	require.NoError(t, s.Data(0, StreamStderr, []byte("warning: \xff binary\n")))
	status := 3
	require.NoError(t, s.EndExec(0, &status, ""))
	require.Error(t, s.Data(0, "stdfoo", []byte("x")))
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: &status}))
	h.waitUploaded(t)

	rep := h.verify(t, "s-exec")
	require.Equal(t, StatusIntact, rep.Status, "report: %s", rep)
	src, err := FindSession(ctxT(t), h.store, "s-exec")
	require.NoError(t, err)
	export := func(name string) []byte {
		var b bytes.Buffer
		require.NoError(t, ExportStream(ctxT(t), src, &b, name))
		return b.Bytes()
	}
	assert.Equal(t, script, export("exec-0.stdin"), "stdin kept byte for byte")
	assert.Equal(t, out[:limit], export("exec-0.stdout"), "stdout kept up to the limit")
	assert.Equal(t, []byte("warning: \xff binary\n"), export("exec-0.stderr"))
	err = ExportStream(ctxT(t), src, &bytes.Buffer{}, "exec-1.stdout")
	assert.ErrorContains(t, err, "exec streams: exec-0.stdin, exec-0.stdout, exec-0.stderr")

	var js bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &js, ReplayOptions{Format: FormatJSON}))
	var data []Event
	var end *Event
	truncated := false
	for _, l := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var ev Event
		require.NoError(t, json.Unmarshal([]byte(l), &ev))
		switch ev.Type {
		case EventData:
			data = append(data, ev)
		case EventExecEnd:
			end = &ev
		case EventNote:
			truncated = truncated || strings.Contains(ev.Text, "stdout of channel 0 truncated at 65536 bytes")
		}
	}
	assert.True(t, truncated, "the recording says where stdout was cut")
	var stdout int64
	for _, d := range data {
		if d.Stream == StreamStdout {
			assert.Equal(t, stdout, d.Offset, "data events follow each other without gaps")
			stdout += d.Bytes
		}
	}
	assert.Equal(t, int64(limit), stdout, "data events cover what was kept")
	require.NotNil(t, end, "no exec_end event")
	whole := sha256.Sum256(out)
	assert.Equal(t, ExecStream{Bytes: 200_000, SHA256: hex.EncodeToString(whole[:]), Captured: limit, Truncated: true}, end.Streams[StreamStdout])
	assert.Equal(t, int64(len(script)), end.Streams[StreamStdin].Captured)
	assert.Equal(t, 3, *end.ExitStatus)
}

// TestExecStdinOff: with stdin capture off for the target, stdin is only
// counted and hashed, and session.json says so.
func TestExecStdinOff(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.Config.ExecStdinOffTargets = []string{"web-01"} })
	meta := testMeta("s-nostdin")
	meta.Protocol, meta.Target = "ssh", "web-01"
	s, err := h.rec.Open(ctxT(t), meta)
	require.NoError(t, err)
	secret := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")
	require.NoError(t, s.Data(2, StreamStdin, secret))
	require.NoError(t, s.Data(2, StreamStdout, []byte("ok\n")))
	require.NoError(t, s.EndExec(2, nil, "TERM"))
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-nostdin")
	require.NoError(t, err)
	var js bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &js, ReplayOptions{Format: FormatJSON}))
	assert.NotContains(t, js.String(), "BEGIN OPENSSH")
	assert.Contains(t, js.String(), `"not_captured":"recordings.exec_capture_stdin is off"`)
	assert.Contains(t, js.String(), `"signal":"TERM"`)
	assert.Contains(t, js.String(), `"exec_capture":{"limit":16777216,"stdin":false}`)
	assert.ErrorContains(t, ExportStream(ctxT(t), src, &bytes.Buffer{}, "exec-2.stdin"), "no stream exec-2.stdin")
}

// TestExecIncompressibleStoredPlain: random (or already compressed) exec
// data is stored as it is, text is compressed: compressing what does not
// shrink would only cost CPU.
func TestExecIncompressibleStoredPlain(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-plain"))
	require.NoError(t, err)
	random := make([]byte, 256<<10)
	_, _ = rand.Read(random)
	require.NoError(t, s.Data(0, StreamStdout, random))
	require.NoError(t, s.Data(0, StreamStderr, bytes.Repeat([]byte("warning: disk 93% full\n"), 10000)))
	require.NoError(t, s.EndExec(0, nil, ""))
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-plain")
	require.NoError(t, err)
	encodings := map[string]string{}
	_, err = src.walk(ctxT(t), func(hd ChunkHeader, _ *bufio.Reader) error {
		encodings[hd.Stream] = hd.Format + "/" + hd.Encoding
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "chunk/1/", encodings["exec-0.stdout"], "random data is stored plain")
	assert.Equal(t, "chunk/2/zstd", encodings["exec-0.stderr"], "text is compressed")
	var out bytes.Buffer
	require.NoError(t, ExportStream(ctxT(t), src, &out, "exec-0.stdout"))
	assert.Equal(t, random, out.Bytes())
}
