package sqlstore

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// syncLog is a log buffer safe for the listener's goroutine.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// listenT runs s.ListenChanges until the test ends and returns the channel
// its calls arrive on, after the first (the one that says it listens).
func listenT(t *testing.T, s *Store, log *syncLog) <-chan time.Time {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	changes := make(chan time.Time, 64)
	go func() {
		defer close(done)
		s.ListenChanges(ctx, slog.New(slog.NewTextHandler(log, nil)), func() { changes <- time.Now() })
	}()
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatalf("the listener never listened: %s", log)
	}
	return changes
}

// quiet drains changes until none came for d.
func quiet(changes <-chan time.Time, d time.Duration) (n int) {
	for {
		select {
		case <-changes:
			n++
		case <-time.After(d):
			return n
		}
	}
}

// TestChangeNotifications: on a PostgreSQL registry, a replica listening
// hears every committed change that may end a live session, made by
// another replica, and none of the writes every admission makes.
func TestChangeNotifications(t *testing.T) {
	cfg := startPostgres(t)(t)
	listener, writer := openT(t, cfg), openT(t, cfg) // two replicas on one registry
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Second)
	putIdentities(t, writer, fullIdentity("svc-a"))
	put := func(fn func(ctx context.Context, tx iga.Tx) error) func() error {
		return func() error { return writer.Update(ctx, func(tx iga.Tx) error { return fn(ctx, tx) }) }
	}
	require.NoError(t, writer.RegisterReplica(ctx, Replica{ID: "r-1", Host: "h", Started: now, LeaseUntil: now.Add(time.Hour)}, false))
	live := SessionRecord{ID: "s-1", Identity: "svc-a", Protocol: "ssh", State: "live", StartedAt: now, Replica: "r-1"}
	require.NoError(t, writer.PutSession(ctx, live))
	suspended := fullIdentity("svc-a")
	suspended.State = iga.StateSuspended
	grant := iga.Grant{ID: "g-1", Identity: "svc-a", Target: "web-01", OpenedBy: "bob@example.com", Reason: "outage",
		OpenedAt: now, ExpiresAt: now.Add(time.Hour)}
	closed := grant
	closed.ClosedAt = now.Add(time.Minute)
	require.NoError(t, put(func(ctx context.Context, tx iga.Tx) error { return tx.PutGrant(ctx, grant) })())
	require.NoError(t, put(func(ctx context.Context, tx iga.Tx) error {
		return tx.PutPerson(ctx, iga.Person{ID: "alice@example.com", Name: "Alice", Roles: []string{"owner"}, Status: iga.PersonActive})
	})())

	log := &syncLog{}
	changes := listenT(t, listener, log)
	tests := []struct {
		name   string
		write  func() error
		notify bool
	}{
		{"an allowed admission marks the identity used", func() error {
			return writer.RecordDecision(ctx, iga.AuditEvent{Type: "decision", Identity: "svc-a", Allow: true, Time: now})
		}, false},
		{"the recorder moves a session's state", func() error {
			r := live
			r.Bytes, r.Events = 100, 3
			return writer.PutSession(ctx, r)
		}, false},
		{"an apply rewrites an identity unchanged", put(func(ctx context.Context, tx iga.Tx) error {
			return tx.PutIdentity(ctx, fullIdentity("svc-a"))
		}), false},
		{"a kill request", func() error { return writer.RequestKill(ctx, "s-1", "runaway", now) }, true},
		{"an identity suspended", put(func(ctx context.Context, tx iga.Tx) error { return tx.PutIdentity(ctx, suspended) }), true},
		{"a certification revoked", put(func(ctx context.Context, tx iga.Tx) error {
			return tx.AddCertification(ctx, "svc-a", iga.Certification{Decision: iga.DecisionRevoke, By: "alice@example.com", At: now})
		}), true},
		{"an owner leaves", put(func(ctx context.Context, tx iga.Tx) error {
			return tx.PutPerson(ctx, iga.Person{ID: "alice@example.com", Name: "Alice", Roles: []string{"owner"}, Status: iga.PersonInactive})
		}), true},
		{"a break-glass grant closed", put(func(ctx context.Context, tx iga.Tx) error { return tx.PutGrant(ctx, closed) }), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			quiet(changes, 50*time.Millisecond)
			committed := time.Now()
			require.NoError(t, tc.write())
			if !tc.notify {
				assert.Zero(t, quiet(changes, 300*time.Millisecond), "got a notification for a write that cannot end a session")
				return
			}
			select {
			case at := <-changes:
				t.Logf("heard %s after %s", tc.name, at.Sub(committed))
			case <-time.After(2 * time.Second):
				t.Fatalf("no notification 2s after %s", tc.name)
			}
		})
	}

	t.Run("the listener reconnects after losing its connection", func(t *testing.T) {
		quiet(changes, 50*time.Millisecond)
		var n int
		require.NoError(t, writer.queryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE query = 'LISTEN `+changesChannel+`'`).Scan(&n))
		require.Equal(t, 1, n, "terminated listening backends")
		select {
		case <-changes: // the call that says it listens again
		case <-time.After(10 * time.Second):
			t.Fatalf("the listener did not come back: %s", log)
		}
		assert.Contains(t, log.String(), "level=WARN msg=\"registry change notifications lost")
		require.NoError(t, put(func(ctx context.Context, tx iga.Tx) error { return tx.PutIdentity(ctx, fullIdentity("svc-a")) })())
		select {
		case <-changes:
		case <-time.After(2 * time.Second):
			t.Fatalf("no notification after reconnecting: %s", log)
		}
	})
}

// TestLeader: of two replicas on one PostgreSQL registry exactly one
// leads; a leader whose connection dies stops leading, and when the leader
// stops the other takes over within a try or two. On SQLite the only
// process leads.
func TestLeader(t *testing.T) {
	cfg := startPostgres(t)(t)
	const every = 100 * time.Millisecond
	type running struct {
		*Leader
		stop func()
	}
	var rs []running
	for range 2 {
		l := &Leader{Store: openT(t, cfg), Every: every, Logger: slog.New(slog.NewTextHandler(&syncLog{}, nil))}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = l.Run(ctx) }()
		stop := sync.OnceFunc(func() { cancel(); <-done })
		t.Cleanup(stop)
		rs = append(rs, running{l, stop})
	}
	a, b := rs[0], rs[1]
	oneLeads := func() bool { return a.Leading() != b.Leading() }
	require.Eventually(t, oneLeads, 5*time.Second, 10*time.Millisecond, "exactly one leads")
	for range 5 {
		time.Sleep(every)
		require.True(t, oneLeads(), "exactly one leads: got %v and %v", a.Leading(), b.Leading())
	}
	leader := func() (running, running) {
		if a.Leading() {
			return a, b
		}
		return b, a
	}

	first, _ := leader()
	ctx := ctxT(t)
	var n int
	require.NoError(t, first.Store.queryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND objid = 7405333 AND granted`).Scan(&n))
	require.Equal(t, 1, n, "terminated the leader's connection")
	require.Eventually(t, func() bool { return !first.Leading() }, 2*time.Second, 5*time.Millisecond,
		"a leader whose connection died stops leading")
	require.Eventually(t, oneLeads, 5*time.Second, 10*time.Millisecond, "then exactly one leads again")

	leading, other := leader()
	leading.stop()
	stopped := time.Now()
	require.Eventually(t, other.Leading, 5*time.Second, 10*time.Millisecond, "the other replica takes over")
	t.Logf("taken over %s after the leader stopped (tries every %s)", time.Since(stopped), every)

	lite := &Leader{Store: openT(t, Config{Path: filepath.Join(t.TempDir(), "registry.db")})}
	assert.True(t, lite.Leading(), "on SQLite the only serving process leads")
}
