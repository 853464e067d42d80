package sqlstore

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

func testSessions(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	rec := func(id, identity, target string, at time.Time) SessionRecord {
		return SessionRecord{ID: id, Identity: identity, Owner: "alice@example.com", Target: target,
			Protocol: "ssh", Login: "backup", Source: "127.0.0.1:5000", State: "live",
			Dir: at.Format("2006/01/02/") + id + "/", StartedAt: at}
	}
	a, b, c := rec("s-a", "svc-backup", "web-01", start), rec("s-b", "svc-report", "analytics", start.Add(time.Minute)),
		rec("s-c", "svc-backup", "analytics", start.Add(2*time.Minute))
	for _, r := range []SessionRecord{c, a, b} {
		require.NoError(t, s.PutSession(ctx, r))
	}

	got, err := s.Session(ctx, "s-a")
	require.NoError(t, err)
	assert.Equal(t, a, got)
	_, err = s.Session(ctx, "s-none")
	assert.ErrorIs(t, err, iga.ErrNotFound)

	require.NoError(t, s.RequestKill(ctx, "s-a", "runaway job", start.Add(3*time.Minute)))
	kills, _, err := s.SessionRequests(ctx, []string{"s-a", "s-b"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"s-a": "runaway job"}, kills)
	kills, _, err = s.SessionRequests(ctx, []string{"s-b"})
	require.NoError(t, err)
	assert.Empty(t, kills, "a kill is delivered only to the process that runs the session")

	// The recorder's next state change keeps the operator's kill request.
	a.State, a.EndedAt, a.Bytes, a.Events = "stored", start.Add(4*time.Minute), 1234, 7
	require.NoError(t, s.PutSession(ctx, a))
	got, err = s.Session(ctx, "s-a")
	require.NoError(t, err)
	assert.Equal(t, "stored", got.State)
	assert.Equal(t, int64(1234), got.Bytes)
	assert.Equal(t, "runaway job", got.KillReason)
	// A later report counting only what the recording holds (stored after
	// uploading) keeps the count of every byte that crossed.
	a.Bytes = 100
	require.NoError(t, s.PutSession(ctx, a))
	got, err = s.Session(ctx, "s-a")
	require.NoError(t, err)
	assert.Equal(t, int64(1234), got.Bytes, "bytes never shrink")
	a.Bytes = 1234
	kills, _, err = s.SessionRequests(ctx, []string{"s-a"})
	require.NoError(t, err)
	assert.Empty(t, kills, "an ended session has no pending kill")
	assert.ErrorContains(t, s.RequestKill(ctx, "s-a", "again", start), "already ended")
	assert.ErrorIs(t, s.RequestKill(ctx, "s-none", "x", start), iga.ErrNotFound)

	tests := []struct {
		name string
		f    SessionFilter
		want []string
	}{
		{"all, oldest first", SessionFilter{}, []string{"s-a", "s-b", "s-c"}},
		{"by identity", SessionFilter{Identity: "svc-backup"}, []string{"s-a", "s-c"}},
		{"by target", SessionFilter{Target: "analytics"}, []string{"s-b", "s-c"}},
		{"live only", SessionFilter{Live: true}, []string{"s-b", "s-c"}},
		{"since", SessionFilter{Since: start.Add(time.Minute)}, []string{"s-b", "s-c"}},
		{"newest two", SessionFilter{Limit: 2}, []string{"s-b", "s-c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := s.Sessions(ctx, tc.f)
			require.NoError(t, err)
			var ids []string
			for _, r := range rs {
				ids = append(ids, r.ID)
			}
			assert.Equal(t, tc.want, ids)
		})
	}
}

// TestSessionWatch: a console of another replica asks for a live session
// to be watched (RequestWatch); the session watcher of the replica that
// runs it reads the watch with the kill requests, in the same poll, until
// it lapses. A later deadline extends a watch, an earlier one does not cut
// it short; an ended or unknown session cannot be watched, and an ended
// one's watch is no longer read.
func TestSessionWatch(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testSessionWatch(t, b.start(t)(t)) })
	}
}

func testSessionWatch(t *testing.T, cfg Config) {
	s, ctx := openT(t, cfg), ctxT(t)
	now := time.Now().UTC()
	for _, id := range []string{"s-watched", "s-killed", "s-quiet", "s-lapsed"} {
		require.NoError(t, s.PutSession(ctx, SessionRecord{ID: id, Identity: "svc-backup", Target: "web-01",
			Protocol: "ssh", State: "live", StartedAt: now.Add(-time.Minute)}))
	}
	until := now.Add(30 * time.Second)
	require.NoError(t, s.RequestWatch(ctx, "s-watched", until))
	require.NoError(t, s.RequestWatch(ctx, "s-watched", now.Add(10*time.Second)), "an earlier deadline is not an error")
	require.NoError(t, s.RequestWatch(ctx, "s-killed", until))
	require.NoError(t, s.RequestKill(ctx, "s-killed", "runaway job", now))
	require.NoError(t, s.RequestWatch(ctx, "s-lapsed", now.Add(-time.Second)))

	all := []string{"s-watched", "s-killed", "s-quiet", "s-lapsed"}
	kills, watched, err := s.SessionRequests(ctx, all)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"s-killed": "runaway job"}, kills)
	assert.Equal(t, []string{"s-killed", "s-watched"}, slices.Sorted(maps.Keys(watched)), "a lapsed watch is not read")
	assert.True(t, watched["s-watched"].Equal(until), "the later deadline holds: got %s, want %s", watched["s-watched"], until)
	_, watched, err = s.SessionRequests(ctx, []string{"s-quiet"})
	require.NoError(t, err)
	assert.Empty(t, watched, "a watch is delivered only to the process that runs the session")

	later := now.Add(time.Minute)
	require.NoError(t, s.RequestWatch(ctx, "s-watched", later))
	_, watched, err = s.SessionRequests(ctx, all)
	require.NoError(t, err)
	assert.True(t, watched["s-watched"].Equal(later), "a renewed watch lasts longer: got %s, want %s", watched["s-watched"], later)

	require.NoError(t, s.PutSession(ctx, SessionRecord{ID: "s-watched", Identity: "svc-backup", Target: "web-01",
		Protocol: "ssh", State: "stored", StartedAt: now.Add(-time.Minute), EndedAt: now}))
	_, watched, err = s.SessionRequests(ctx, all)
	require.NoError(t, err)
	assert.NotContains(t, watched, "s-watched", "an ended session is no longer watched")
	assert.ErrorContains(t, s.RequestWatch(ctx, "s-watched", later), "already ended")
	assert.ErrorIs(t, s.RequestWatch(ctx, "s-none", later), iga.ErrNotFound)
}
