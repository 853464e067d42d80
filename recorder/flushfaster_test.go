package recorder

import (
	"context"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunkClock notes when each chunk of a recording first shows in its store.
type chunkClock struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// watch lists the store every 20 ms until ctx ends.
func (c *chunkClock) watch(ctx context.Context, store Store, dir string) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		keys, _ := store.List(ctx, dir) // a failed listing is retried at the next tick
		now := time.Now()
		c.mu.Lock()
		for _, k := range keys {
			if _, ok := chunkSeq(path.Base(k)); ok && c.seen[k].IsZero() {
				c.seen[k] = now
			}
		}
		c.mu.Unlock()
	}
}

// between counts the chunks that showed in [from, to).
func (c *chunkClock) between(from, to time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, at := range c.seen {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// TestFlushFasterWhileWatched: a session whose output never stops, at the
// default flush interval (1 s). Unwatched, its chunks reach the store
// about once a second; watched from another replica (FlushFasterUntil),
// about every 250 ms, so that replica's console shows its output within a
// second; once the watch lapses, about once a second again. An earlier
// deadline does not cut a watch short. The margins leave room for two
// cores shared with other test packages.
func TestFlushFasterWhileWatched(t *testing.T) {
	store := fileStore(t)
	h := newHarness(t, t.TempDir(), store, testKey(t), func(r *Recorder) { r.Config.FlushInterval = 0 })
	s, err := h.rec.Open(ctxT(t), testMeta("s-watched"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	clock := &chunkClock{seen: map[string]time.Time{}}
	go clock.watch(ctx, store, s.Dir())
	go func() { // a busy terminal: output every 20 ms
		for ctx.Err() == nil {
			_ = s.Output(0, []byte("building... 42%\r\n"))
			time.Sleep(20 * time.Millisecond)
		}
	}()

	time.Sleep(2 * time.Second)
	watched := time.Now()
	const fast = 2 * time.Second
	require.True(t, h.rec.FlushFasterUntil("s-watched", watched.Add(fast)))
	s.FlushFasterUntil(watched.Add(fast / 2)) // an earlier deadline is ignored
	assert.False(t, h.rec.FlushFasterUntil("s-none", watched.Add(fast)), "no such live session here")
	time.Sleep(fast + 2500*time.Millisecond)
	cancel()

	unwatched := clock.between(watched.Add(-1500*time.Millisecond), watched)
	during := clock.between(watched.Add(300*time.Millisecond), watched.Add(fast))
	after := clock.between(watched.Add(fast+500*time.Millisecond), watched.Add(fast+2500*time.Millisecond))
	t.Logf("chunks in the store: %d in 1.5 s unwatched, %d in 1.7 s watched, %d in 2 s after the watch lapsed", unwatched, during, after)
	assert.LessOrEqual(t, unwatched, 2, "unwatched: a chunk a second (1 or 2 in 1.5 s)")
	assert.GreaterOrEqual(t, during, 4, "watched: a chunk every 250 ms (about 7 in 1.7 s)")
	assert.LessOrEqual(t, after, 3, "after the watch: a chunk a second again (about 2 in 2 s)")
	assert.GreaterOrEqual(t, after, 1, "and the recording goes on")
}

// TestStoreTailLag: what the console's page says a view from the store
// trails the session by: a flush interval and two polls (a record may
// wait one poll for the rest of its flush), 2 s at the defaults, 500 ms
// when the console asks for the faster flush.
func TestStoreTailLag(t *testing.T) {
	for _, tc := range []struct {
		tail StoreTail
		want time.Duration
	}{
		{StoreTail{}, 2 * time.Second},
		{StoreTail{Faster: true}, 500 * time.Millisecond},
		{StoreTail{Faster: true, FlushInterval: 100 * time.Millisecond}, 350 * time.Millisecond},
		{StoreTail{Faster: true, Options: TailOptions{Poll: 100 * time.Millisecond}}, 450 * time.Millisecond},
	} {
		assert.Equal(t, tc.want, tc.tail.Lag(), "%+v", tc.tail)
	}
}
