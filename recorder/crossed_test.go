package recorder

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBytesCrossed: the session index's bytes count every byte that
// crossed, not only terminal output: exec streams whole (past the capture
// limit too), sftp, forwards both ways, query results; scp once, through
// its exec channel. The end event says the same.
func TestBytesCrossed(t *testing.T) {
	var mu sync.Mutex
	reported := map[State]int64{}
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) {
		r.Config.ExecCaptureLimit = 1000
		r.OnState = func(c StateChange) { mu.Lock(); reported[c.State] = c.Bytes; mu.Unlock() }
	})
	s, err := h.rec.Open(ctxT(t), testMeta("s-bytes"))
	require.NoError(t, err)
	ch := 1
	require.NoError(t, s.Output(0, []byte("0123456789")))                                                  // 10
	require.NoError(t, s.Input(0, []byte("ls\r")))                                                         // 3, not recorded but crossed
	require.NoError(t, s.Data(1, StreamStdin, make([]byte, 500)))                                          // 500
	require.NoError(t, s.Data(1, StreamStdout, make([]byte, 200_000)))                                     // 200,000, 1,000 kept
	require.NoError(t, s.Event(Event{Type: EventSCP, Channel: &ch, Op: "upload", Path: "/a", Bytes: 400})) // in stdin already
	require.NoError(t, s.EndExec(1, nil, ""))
	require.NoError(t, s.Event(Event{Type: EventSFTP, Op: "write", Path: "/big", Bytes: 200 << 20})) // 209,715,200
	require.NoError(t, s.Event(Event{Type: EventForward, Op: "close", Host: "db", Port: 5432, ToTarget: 70, ToClient: 30}))
	require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "SELECT 1", Bytes: 7}))
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)

	const want = 10 + 3 + 500 + 200_000 + 200<<20 + 100 + 7
	mu.Lock()
	assert.Equal(t, int64(want), reported[StateUploading], "bytes the index gets when the session ends")
	mu.Unlock()
	src, err := FindSession(ctxT(t), h.store, "s-bytes")
	require.NoError(t, err)
	var js bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &js, ReplayOptions{Format: FormatJSON}))
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	var end Event
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &end))
	assert.Equal(t, EventEnd, end.Type)
	assert.Equal(t, int64(want), end.Bytes, "the end event counts every byte that crossed")
}
