package proxy_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// TestWatchFlushesFaster: a console of another replica asks (through the
// registry) to watch a live session; this replica's session watcher reads
// the watch in its kill poll and has the session's recording flushed every
// 250 ms instead of every second, so output reaches a follower of the
// store within half a second of being written. The recorder runs at the
// default flush interval; the store follower polls every 50 ms.
func TestWatchFlushesFaster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "registry.db")})
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	store, err := recorder.NewFileStore(t.TempDir())
	require.NoError(t, err)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: recorder.Config{DataDir: t.TempDir()}, Store: store, Key: key}
	require.NoError(t, rec.Start(ctx))
	t.Cleanup(func() { rec.Shutdown(context.Background()) })

	live := &proxy.Live{Index: reg, Recordings: rec}
	go live.Watch(ctx)
	ps := live.Begin(ctx, "ssh", iga.Request{Identity: "svc-ops", Target: "web-01"}, iga.Decision{Allow: true}, time.Now())
	t.Cleanup(func() { live.End(ps) })
	rs, err := rec.Open(ctx, recorder.SessionMeta{ID: ps.ID, Identity: "svc-ops", Target: "web-01", Protocol: "ssh"})
	require.NoError(t, err)
	t.Cleanup(func() { rs.Close(context.Background(), recorder.End{}) })
	require.NoError(t, reg.PutSession(ctx, sqlstore.SessionRecord{ID: ps.ID, Identity: "svc-ops", Target: "web-01",
		Protocol: "ssh", State: "live", StartedAt: rs.Meta().StartedAt}))
	tail := recorder.StoreTail{Store: store, Options: recorder.TailOptions{Poll: 50 * time.Millisecond}}
	events, stop := tail.WatchRecording(ctx, ps.ID, rs.Meta().StartedAt)
	defer stop()

	require.NoError(t, reg.RequestWatch(ctx, ps.ID, time.Now().Add(30*time.Second)))
	time.Sleep(500 * time.Millisecond) // a kill poll (250 ms) reads the watch
	var worst time.Duration
	for i := range 6 { // 6 writes 370 ms apart fall at every phase of a 1 s flush
		marker := fmt.Sprintf("marker-%d", i)
		written := time.Now()
		require.NoError(t, rs.Output(0, []byte(marker+"\r\n")))
		lag := arrival(t, events, marker).Sub(written)
		worst = max(worst, lag)
		time.Sleep(370*time.Millisecond - lag%(370*time.Millisecond))
	}
	t.Logf("watched: output reached the store's follower %s after it was written at worst", worst)
	assert.Less(t, worst, 600*time.Millisecond, "a watched session flushes every 250 ms, not every second")
}

// arrival waits for output holding marker, and returns when it came.
func arrival(t *testing.T, events <-chan recorder.Watched, marker string) time.Time {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "the follower stopped before %s came", marker)
			if ev.Kind == recorder.WatchOutput && strings.Contains(string(ev.Data), marker) {
				return time.Now()
			}
		case <-timeout:
			t.Fatalf("%s never reached the follower", marker)
		}
	}
}
