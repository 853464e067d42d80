package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testReplicaLeases: a session's replica is kept from its first row, and
// SessionHolders tells the live sessions of replicas with a current lease
// from those of replicas whose lease lapsed.
func testReplicaLeases(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	alive := Replica{ID: "host-a-1", Host: "host-a", Started: now.Add(-time.Hour), LeaseUntil: now.Add(10 * time.Second)}
	dead := Replica{ID: "host-b-1", Host: "host-b", Started: now.Add(-time.Hour), LeaseUntil: now.Add(-time.Second)}
	ancient := Replica{ID: "host-c-1", Host: "host-c", Started: now.AddDate(0, -1, 0), LeaseUntil: now.AddDate(0, 0, -8)}
	for _, r := range []Replica{ancient, dead, alive} {
		require.NoError(t, s.RegisterReplica(ctx, r, false))
	}
	session := func(id, replica string, ended time.Time) SessionRecord {
		return SessionRecord{ID: id, Identity: "svc-a", Protocol: "postgres", State: "live", StartedAt: now.Add(-time.Minute),
			EndedAt: ended, Replica: replica}
	}
	for _, r := range []SessionRecord{
		session("on-alive", alive.ID, time.Time{}),
		session("on-dead", dead.ID, time.Time{}),
		session("on-unknown-replica", "host-z-9", time.Time{}),
		session("ended-on-alive", alive.ID, now.Add(-time.Second)),
		session("no-replica", "", time.Time{}),
	} {
		require.NoError(t, s.PutSession(ctx, r))
	}
	// Another replica recovering the recording writes the row again.
	recovered := session("on-dead", alive.ID, now)
	recovered.State = "incomplete"
	require.NoError(t, s.PutSession(ctx, recovered))
	got, err := s.Session(ctx, "on-dead")
	require.NoError(t, err)
	assert.Equal(t, dead.ID, got.Replica, "the replica that ran the session stays its replica")
	assert.Equal(t, "incomplete", got.State)
	require.NoError(t, s.PutSession(ctx, session("on-dead", dead.ID, time.Time{})))

	holders, err := s.SessionHolders(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"on-alive": true, "on-dead": false, "on-unknown-replica": false}, holders)
	holders, err = s.SessionHolders(ctx, now.Add(11*time.Second))
	require.NoError(t, err)
	assert.False(t, holders["on-alive"], "once its lease lapses, a replica no longer holds its sessions")

	alive.LeaseUntil = now.Add(time.Minute)
	require.NoError(t, s.RegisterReplica(ctx, alive, true))
	holders, err = s.SessionHolders(ctx, now.Add(11*time.Second))
	require.NoError(t, err)
	assert.True(t, holders["on-alive"], "a renewed lease holds again")
	rs, err := s.Replicas(ctx)
	require.NoError(t, err)
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	assert.Equal(t, []string{alive.ID, dead.ID}, ids, "a replica gone for over a week is pruned")
	assert.Equal(t, alive, rs[0], "a replica round-trips")
}

// testLostSessions: a live session of a replica whose lease lapsed reads as
// incomplete, says which replica went, leaves the --live list and cannot
// be killed; a replica that renews late shows its sessions live again.
func testLostSessions(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	now := time.Now().UTC()
	alive := Replica{ID: "host-a-1", Host: "host-a", Started: now.Add(-time.Hour), LeaseUntil: now.Add(time.Minute)}
	dead := Replica{ID: "host-b-1", Host: "host-b", Started: now.Add(-time.Hour), LeaseUntil: now.Add(-time.Minute)}
	for _, r := range []Replica{alive, dead} {
		require.NoError(t, s.RegisterReplica(ctx, r, false))
	}
	for _, r := range []SessionRecord{
		{ID: "on-alive", Replica: alive.ID, State: "live"},
		{ID: "on-dead", Replica: dead.ID, State: "live"},
		{ID: "on-pruned", Replica: "host-z-9", State: "live"},
		{ID: "before-leases", State: "live"},
		{ID: "ended-on-dead", Replica: dead.ID, State: "stored", EndedAt: now.Add(-2 * time.Minute)},
	} {
		r.Identity, r.Protocol, r.StartedAt = "svc-a", "ssh", now.Add(-10*time.Minute)
		require.NoError(t, s.PutSession(ctx, r))
	}

	live, err := s.Sessions(ctx, SessionFilter{Live: true})
	require.NoError(t, err)
	var ids []string
	for _, r := range live {
		ids = append(ids, r.ID)
	}
	assert.ElementsMatch(t, []string{"on-alive", "before-leases"}, ids, "sessions list --live leaves out the sessions of gone replicas")

	got, err := s.Session(ctx, "on-dead")
	require.NoError(t, err)
	assert.Equal(t, "incomplete", got.State)
	assert.Contains(t, got.Reason, "replica host-b-1 stopped renewing its lease at "+dead.LeaseUntil.Format(time.RFC3339))
	got, err = s.Session(ctx, "on-pruned")
	require.NoError(t, err)
	assert.Equal(t, "incomplete", got.State)
	assert.Contains(t, got.Reason, "replica host-z-9 is gone")
	got, err = s.Session(ctx, "ended-on-dead")
	require.NoError(t, err)
	assert.Equal(t, "stored", got.State, "an ended session keeps its state")
	assert.ErrorContains(t, s.RequestKill(ctx, "on-dead", "test", now), "nothing left to end: replica host-b-1")
	require.NoError(t, s.RequestKill(ctx, "on-alive", "test", now))

	dead.LeaseUntil = now.Add(time.Minute)
	require.NoError(t, s.RegisterReplica(ctx, dead, false))
	got, err = s.Session(ctx, "on-dead")
	require.NoError(t, err)
	assert.Equal(t, "live", got.State, "a replica that renews late shows its sessions live again")
	assert.Empty(t, got.Reason)
}
