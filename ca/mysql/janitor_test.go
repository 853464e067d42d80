package mysql_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/ca"
	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/internal/sessionid"
)

// TestSweepSessions: a user whose session runs on a live replica stays;
// one whose replica is gone goes even while its connection runs a query
// and before the grace, and the connection is killed.
func TestSweepSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	live, gone := sessionid.New(time.Now().Add(-time.Hour)), sessionid.New(time.Now())
	users := map[string]*camysql.User{}
	for _, id := range []string{live, gone} {
		u, err := e.issuer.Create(ctx, id, e.target.Role)
		require.NoError(t, err)
		users[id] = u
	}
	conn, err := e.login(ctx, users[gone])
	require.NoError(t, err)
	defer conn.Close()
	query := make(chan error, 1)
	go func() { _, err := conn.ExecContext(ctx, "SELECT SLEEP(30)"); query <- err }()
	time.Sleep(200 * time.Millisecond) // let the query start

	verdicts := map[string]ca.Verdict{camysql.UserName(live): ca.Live, camysql.UserName(gone): ca.Gone}
	dropped, err := e.issuer.SweepSessions(ctx, func(user string) ca.Verdict { return verdicts[user] })
	require.NoError(t, err)
	assert.Equal(t, []string{camysql.UserName(gone)}, dropped)
	assert.Len(t, e.users(t), 1, "the live session's user stays")
	select {
	case err := <-query:
		assert.Error(t, err, "the gone session's query must be ended")
	case <-time.After(5 * time.Second):
		t.Fatal("the gone session's query still runs 5s after its user was dropped")
	}
}
