package recorder

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTryEventNeverWaits: an event that does not fit the buffer beside
// what is queued is refused by TryEvents at once, recorded nowhere, and
// goes in whole through Event afterwards: the recording holds each event
// once, in the order they went in, and the end event counts its bytes once.
func TestTryEventNeverWaits(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) {
		r.BufferSize = 4 << 10
		r.Config.FlushInterval = time.Hour // only a full buffer drains the queue
	})
	s, err := h.rec.Open(ctxT(t), testMeta("s-try"))
	require.NoError(t, err)
	small := Event{Type: EventQuery, SQL: "SELECT 1", Bytes: 1}
	n, err := s.TryEvents([]Event{small})
	require.NoError(t, err)
	require.Equal(t, 1, n, "a small event fits")
	big := Event{Type: EventQuery, SQL: "SELECT '" + strings.Repeat("x", 8<<10) + "'", Bytes: 2}
	start := time.Now()
	n, err = s.TryEvents([]Event{big})
	require.NoError(t, err)
	assert.Equal(t, 0, n, "an event larger than the room left is refused")
	assert.Less(t, time.Since(start), 100*time.Millisecond, "without waiting for the flusher")
	require.NoError(t, s.Event(big), "Event waits for the room")
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)

	src, err := FindSession(ctxT(t), h.store, "s-try")
	require.NoError(t, err)
	var js bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &js, ReplayOptions{Format: FormatJSON}))
	var sqls []string
	var end Event
	for _, line := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var ev Event
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		switch ev.Type {
		case EventQuery:
			sqls = append(sqls, ev.SQL)
		case EventEnd:
			end = ev
		}
	}
	assert.Equal(t, []string{small.SQL, big.SQL}, sqls, "each event once, in order")
	assert.Equal(t, int64(3), end.Bytes, "the refused attempt crossed nothing")
}
