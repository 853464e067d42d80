package recorder

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// drain reads ch until it closes or a second passes without a record.
func drain(t *testing.T, ch <-chan Watched) (got []Watched, closed bool) {
	t.Helper()
	for {
		select {
		case w, ok := <-ch:
			if !ok {
				return got, true
			}
			got = append(got, w)
		case <-time.After(time.Second):
			return got, false
		}
	}
}

// TestWatch: a watcher that joins a running terminal session gets the
// terminal's size, then output, events and exec bytes in the order the
// session wrote them, and the end; the recording is the same as unwatched.
func TestWatch(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-watch"))
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 120, 40, "xterm"))
	require.NoError(t, s.Output(0, []byte("before the watcher\r\n")))
	ch := 1
	require.NoError(t, s.Event(Event{Type: EventExec, Channel: &ch, Command: "tail -f /var/log/syslog"}))

	_, _, ok := h.rec.Watch("s-nobody")
	assert.False(t, ok, "no such session here")
	events, stop, ok := h.rec.Watch("s-watch")
	require.True(t, ok)
	defer stop()
	require.NoError(t, s.Output(0, []byte("$ id\r\n")))
	require.NoError(t, s.Resize(0, 100, 30))
	require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "select 1"}))
	require.NoError(t, s.Data(1, StreamStdout, []byte("exec out")))
	status := 0
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: &status}))

	got, closed := drain(t, events)
	require.True(t, closed, "the channel closes at the end")
	var kinds []string
	for _, w := range got {
		kinds = append(kinds, w.Kind)
	}
	require.Equal(t, []string{WatchTerminal, WatchEvent, WatchOutput, WatchResize, WatchEvent, WatchData, WatchEnd}, kinds)
	assert.Equal(t, [2]int{120, 40}, [2]int{got[0].Cols, got[0].Rows}, "the size the terminal has when the watcher joins")
	var ev Event
	require.NoError(t, json.Unmarshal(got[1].Data, &ev))
	assert.Equal(t, "tail -f /var/log/syslog", ev.Command, "the exec commands run before the watcher joined")
	assert.Equal(t, "$ id\r\n", string(got[2].Data), "output from the moment of joining, not before")
	assert.Equal(t, [2]int{100, 30}, [2]int{got[3].Cols, got[3].Rows})
	require.NoError(t, json.Unmarshal(got[4].Data, &ev))
	assert.Equal(t, "select 1", ev.SQL)
	assert.Equal(t, StreamStdout, got[5].Stream)
	assert.Equal(t, 1, got[5].Channel)
	assert.Equal(t, "exec out", string(got[5].Data))
	require.NoError(t, json.Unmarshal(got[6].Data, &ev))
	assert.Equal(t, EventEnd, ev.Type)
	stop() // after the end: nothing left to do, no panic

	_, _, ok = h.rec.Watch("s-watch")
	assert.False(t, ok, "an ended session cannot be watched")
	h.waitUploaded(t)
	assert.Equal(t, StatusIntact, h.verify(t, "s-watch").Status)
}

// TestWatchSlowWatcher: a watcher that reads nothing never slows the
// session; it loses records and is told how many, then gets the rest.
func TestWatchSlowWatcher(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-slow"))
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
	events, stop, ok := h.rec.Watch("s-slow")
	require.True(t, ok)
	defer stop()
	const writes = 3 * watchBuffer
	start := time.Now()
	for i := range writes {
		require.NoError(t, s.Output(0, []byte(strings.Repeat("x", i%50)+"\r\n")))
	}
	took := time.Since(start)
	assert.Less(t, took, defaultMaxWriteWait, "writes never waited for the watcher")

	got, _ := drain(t, events)
	require.Len(t, got, watchBuffer, "the watcher kept a full buffer")
	require.NoError(t, s.Output(0, []byte("after\r\n")))
	got, _ = drain(t, events)
	require.Len(t, got, 2)
	assert.Equal(t, WatchLost, got[0].Kind)
	assert.EqualValues(t, writes-(watchBuffer-1), got[0].Lost, "every dropped record counted")
	assert.Equal(t, "after\r\n", string(got[1].Data))

	stop()
	_, open := <-events
	assert.False(t, open, "stop closes the channel")
	require.NoError(t, s.Output(0, []byte("unwatched\r\n")), "the session goes on")
	require.NoError(t, s.Close(ctxT(t), End{}))
}

// BenchmarkWatchTap measures a relay's terminal write of 4 KiB with nobody
// watching and with one watcher reading everything (the tap copies each
// write once per watcher).
func BenchmarkWatchTap(b *testing.B) {
	for _, watchers := range []int{0, 1} {
		b.Run(map[int]string{0: "unwatched", 1: "watched"}[watchers], func(b *testing.B) {
			rec := benchRecorder(b, memTempDirB(b), CompressionNone)
			s, err := rec.Open(context.Background(), testMeta("s-bench-tap"))
			if err != nil {
				b.Fatal(err)
			}
			for range watchers {
				events, stop, _ := rec.Watch("s-bench-tap")
				defer stop()
				go func() {
					for range events {
					}
				}()
			}
			p := []byte(strings.Repeat("x", 4096))
			b.SetBytes(int64(len(p)))
			b.ResetTimer()
			for range b.N {
				if err := s.Output(0, p); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			_ = s.Close(context.Background(), End{})
		})
	}
}
