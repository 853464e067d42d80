package sqlstore

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaderLockKey is the PostgreSQL advisory lock whose holder leads: any
// fixed key ("sallyport leader"), apart from the migrations' 7405332.
// Advisory locks are per database, so registries sharing a server do not
// contend.
const leaderLockKey = 7405333

// defaultLeaderEvery: see Leader.Every.
const defaultLeaderEvery = 5 * time.Second

// Leader decides which of the replicas sharing the registry does the work
// only one may do at a time (the credential janitors, the break-glass and
// review deadline sweeps). On PostgreSQL the leader is the replica whose
// dedicated connection holds a session-level advisory lock: when it dies
// its connection drops, PostgreSQL releases the lock, and another replica
// takes it at its next try, within Every. On SQLite one process serves the
// registry and always leads.
type Leader struct {
	Store *Store
	// Every is how often a follower tries for the lock and the leader
	// checks its connection. Zero: 5s.
	Every time.Duration
	// Logger hears of leadership gained, lost and of connection trouble.
	// Nil: slog.Default().
	Logger *slog.Logger

	leading atomic.Bool
}

// Leading reports whether this process leads now.
func (l *Leader) Leading() bool { return !l.Store.Notifies() || l.leading.Load() }

// Run tries for the leadership, and keeps it, until ctx ends; then it lets
// go of it. On SQLite it only waits for ctx.
func (l *Leader) Run(ctx context.Context) error {
	if !l.Store.Notifies() {
		<-ctx.Done()
		return nil
	}
	every := l.Every
	if every <= 0 {
		every = defaultLeaderEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var conn *pgx.Conn
	defer func() {
		l.leading.Store(false)
		if conn != nil {
			closeDedicated(conn) // releases the lock at once, so a follower need not wait for a dead connection
		}
	}()
	for {
		conn = l.round(ctx, conn)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round is one try: it connects when needed, then takes the lock as a
// follower or checks the connection as the leader. It returns the
// connection to keep, nil after a failure (which also ends leadership).
func (l *Leader) round(ctx context.Context, conn *pgx.Conn) *pgx.Conn {
	if conn == nil {
		c, err := l.Store.dedicatedConn(ctx)
		if err != nil {
			if ctx.Err() == nil {
				l.logger().Warn("cannot try for the leadership of the replicas", "err", err)
			}
			return nil
		}
		conn = c
	}
	if l.leading.Load() {
		if err := pingDedicated(ctx, conn); err != nil {
			l.leading.Store(false)
			closeDedicated(conn)
			if ctx.Err() == nil {
				l.logger().Warn("lost the leadership of the replicas: its connection failed", "err", err)
			}
			return nil
		}
		return conn
	}
	qctx, cancel := context.WithTimeout(ctx, dedicatedTimeout)
	defer cancel()
	var got bool
	if err := conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1)", int64(leaderLockKey)).Scan(&got); err != nil {
		closeDedicated(conn)
		if ctx.Err() == nil {
			l.logger().Warn("cannot try for the leadership of the replicas", "err", err)
		}
		return nil
	}
	if got {
		l.leading.Store(true)
		l.logger().Info("leading the replicas: the credential janitors and deadline sweeps run here")
	}
	return conn
}

func (l *Leader) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}
