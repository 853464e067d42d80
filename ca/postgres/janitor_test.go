package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/internal/sessionid"
)

// TestSweepSessions: a role whose session runs on a live replica stays
// even with no backend; one whose replica is gone goes even while its
// backend still runs a query and before the grace, and the backend ends.
func TestSweepSessions(t *testing.T) {
	i, target := newIssuer(t)
	ctx := context.Background()
	now := time.Now()
	mk := func(started time.Time) *Role {
		r, err := i.Create(ctx, sessionid.New(started), target.Role, now.Add(time.Hour))
		require.NoError(t, err)
		return r
	}
	live, orphanedBusy, unknownYoung := mk(now.Add(-time.Hour)), mk(now), mk(now)
	conn, err := login(t, target, orphanedBusy)
	require.NoError(t, err)
	defer conn.Close(ctx)
	query := make(chan error, 1)
	go func() { _, err := conn.Exec(ctx, "SELECT pg_sleep(30)"); query <- err }()
	require.Eventually(t, func() bool {
		var n int
		err := i.DB.(*pgxpool.Pool).QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", orphanedBusy.Name).Scan(&n)
		return err == nil && n == 1
	}, 5*time.Second, 20*time.Millisecond, "a backend is logged in as the orphaned role")
	time.Sleep(200 * time.Millisecond) // let its query start

	verdicts := map[string]ca.Verdict{live.Name: ca.Live, orphanedBusy.Name: ca.Gone}
	dropped, err := i.SweepSessions(ctx, func(role string) ca.Verdict { return verdicts[role] })
	require.NoError(t, err)
	assert.Equal(t, []string{orphanedBusy.Name}, dropped)
	for _, tc := range []struct {
		role *Role
		want bool
	}{{live, true}, {orphanedBusy, false}, {unknownYoung, true}} {
		assert.Equal(t, tc.want, roleExists(t, i, tc.role.Name), "role %s exists", tc.role.Name)
	}
	select {
	case err := <-query:
		assert.Error(t, err, "the gone session's query must be ended")
	case <-time.After(5 * time.Second):
		t.Fatal("the gone session's query still runs 5s after its role was dropped")
	}
}
