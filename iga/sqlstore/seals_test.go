package sqlstore

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLostReplicaSeals runs the seal claims on every driver: the sessions
// of a replica lost past the grace are listed, exactly one of two racing
// sealers wins each, a finished seal is never claimed again, a stale claim
// is taken over, and a restarted replica's recovery keeps survivors away.
func TestLostReplicaSeals(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testLostReplicaSeals(t, b.start(t)) })
	}
}

func testLostReplicaSeals(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	dead := Replica{ID: "host-b-1", Host: "host-b", Started: now.Add(-time.Hour), LeaseUntil: now.Add(-time.Minute)}
	alive := Replica{ID: "host-a-1", Host: "host-a", Started: now.Add(-time.Hour), LeaseUntil: now.Add(time.Minute)}
	for _, r := range []Replica{dead, alive} {
		require.NoError(t, s.RegisterReplica(ctx, r, false))
	}
	put := func(id, replica, state string, ended time.Time) {
		require.NoError(t, s.PutSession(ctx, SessionRecord{ID: id, Identity: "svc-a", Protocol: "ssh", State: state,
			Dir: "2026/12/07/" + id + "/", StartedAt: now.Add(-10 * time.Minute), EndedAt: ended, Replica: replica}))
	}
	put("dead-live", dead.ID, "live", time.Time{})
	put("dead-uploading", dead.ID, "uploading", now.Add(-2*time.Minute))
	put("dead-stored", dead.ID, "stored", now.Add(-5*time.Minute))
	put("alive-live", alive.ID, "live", time.Time{})
	put("gone-live", "host-z-9", "live", time.Time{})

	lost, err := s.LostSessions(ctx, now.Add(-2*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, []string{"gone-live"}, lostIDs(lost), "within the grace only a replica whose row is gone counts as lost")
	lost, err = s.LostSessions(ctx, now.Add(-30*time.Second))
	require.NoError(t, err)
	require.Equal(t, []string{"dead-live", "dead-uploading", "gone-live"}, lostIDs(lost))
	assert.Equal(t, dead.LeaseUntil, lost[0].LeaseUntil)
	assert.Equal(t, "2026/12/07/dead-live/", lost[0].Dir)

	// Two survivors race for each session: exactly one wins it.
	claim := func(l LostSession, sealer string, at time.Time) bool {
		won, err := s.ClaimSeal(ctx, SealClaim{Session: l, Sealer: sealer, At: at, StaleBefore: at.Add(-5 * time.Minute)})
		require.NoError(t, err)
		return won
	}
	winners := map[string]string{}
	for _, l := range lost[:2] {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, sealer := range []string{"host-c-1", "host-d-1"} {
			wg.Go(func() {
				if claim(l, sealer, now) {
					mu.Lock()
					defer mu.Unlock()
					assert.Empty(t, winners[l.ID], "two sealers won %s", l.ID)
					winners[l.ID] = sealer
				}
			})
		}
		wg.Wait()
		require.NotEmpty(t, winners[l.ID], "no sealer won %s", l.ID)
		assert.True(t, claim(l, winners[l.ID], now.Add(time.Second)), "the winner may try again")
	}

	w := winners["dead-live"]
	require.NoError(t, s.MarkSealed(ctx, SealDone{Session: "dead-live", Sealer: w, At: now, Chunks: 3,
		Reason: "replica host-b-1 was lost", EndedAt: now.Add(-3 * time.Minute)}))
	got, err := s.Session(ctx, "dead-live")
	require.NoError(t, err)
	assert.Equal(t, "incomplete", got.State)
	assert.Equal(t, "replica host-b-1 was lost", got.Reason)
	assert.Equal(t, now.Add(-3*time.Minute), got.EndedAt)
	assert.False(t, claim(lost[0], w, now.Add(time.Hour)), "a finished seal is never claimed again, not even by its sealer")
	seal, err := s.SealOf(ctx, "dead-live")
	require.NoError(t, err)
	assert.Equal(t, LostSeal{Session: "dead-live", Kind: "seal", Replica: dead.ID, Sealer: w, SealedAt: now, Chunks: 3,
		Reason: "replica host-b-1 was lost"}, seal)

	// The winner of dead-uploading died while sealing: after the stale
	// time another takes over.
	other := map[string]string{"host-c-1": "host-d-1", "host-d-1": "host-c-1"}[winners["dead-uploading"]]
	assert.False(t, claim(lost[1], other, now.Add(time.Minute)), "a fresh claim holds")
	assert.True(t, claim(lost[1], other, now.Add(10*time.Minute)), "a stale claim is taken over")

	// A restarted replica recovering a session keeps survivors away; one
	// already claimed is the survivor's.
	mine, err := s.ClaimRecovered(ctx, "gone-live", "host-b-2", now)
	require.NoError(t, err)
	assert.True(t, mine)
	assert.False(t, claim(lost[2], "host-c-1", now.Add(time.Hour)), "a recovered session is not sealed from the store")
	mine, err = s.ClaimRecovered(ctx, "dead-uploading", "host-b-2", now)
	require.NoError(t, err)
	assert.False(t, mine, "a session a survivor claimed stays the survivor's")

	lost, err = s.LostSessions(ctx, now.Add(-30*time.Second))
	require.NoError(t, err)
	assert.Equal(t, []string{"dead-uploading"}, lostIDs(lost), "sealed and recovered sessions are not lost any more")
}

func lostIDs(ls []LostSession) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}
