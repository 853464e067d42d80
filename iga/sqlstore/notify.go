package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// changesChannel is the PostgreSQL channel the triggers of migration 0005
// notify on after a change that may end a live session.
const changesChannel = "sallyport_changes"

const (
	// listenPing is how long the listener waits for a notification before
	// it checks its connection, so one that died without a word (a
	// network partition) is noticed and replaced within it.
	listenPing = 15 * time.Second
	// dedicatedTimeout bounds connecting a dedicated connection and each
	// statement on it, so a dead server costs a retry, not a hang.
	dedicatedTimeout = 5 * time.Second
	// Reconnection backoff: quick after a blip, at most every 5 s while
	// the server is down (polling covers for the listener meanwhile).
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// Notifies reports whether the registry announces its changes, so that
// ListenChanges has something to listen to: PostgreSQL does, SQLite (one
// serving process, which polls) does not.
func (s *Store) Notifies() bool { return s.d == postgresDialect }

// ListenChanges calls changed after each committed change that may end a
// live session anywhere: a kill request, an identity's state, credentials
// or entitlements, a person's status, a certification, a break-glass grant.
// It holds one dedicated connection that LISTENs; when that fails it logs a
// warning and reconnects with backoff, and calls changed once it listens
// again, since what was announced meanwhile is lost. It returns when ctx
// ends, at once on a registry that does not notify.
func (s *Store) ListenChanges(ctx context.Context, log *slog.Logger, changed func()) {
	if !s.Notifies() {
		return
	}
	backoff := listenBackoffMin
	lost := false
	for ctx.Err() == nil {
		err := s.listen(ctx, changed, func() {
			if lost {
				log.Info("registry change notifications restored")
			}
			backoff, lost = listenBackoffMin, false
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn("registry change notifications lost; live sessions are re-checked by polling until they return",
			"err", err, "retry_in", backoff)
		lost = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listen runs one dedicated connection until it fails or ctx ends; it
// calls listening once the LISTEN is in place.
func (s *Store) listen(ctx context.Context, changed, listening func()) error {
	conn, err := s.dedicatedConn(ctx)
	if err != nil {
		return err
	}
	defer closeDedicated(conn)
	lctx, cancel := context.WithTimeout(ctx, dedicatedTimeout)
	_, err = conn.Exec(lctx, "LISTEN "+changesChannel)
	cancel()
	if err != nil {
		return fmt.Errorf("listen for registry changes: %w", err)
	}
	listening()
	changed()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			changed()
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			if err := pingDedicated(ctx, conn); err != nil {
				return err
			}
		default:
			return fmt.Errorf("wait for registry changes: %w", err)
		}
	}
}

// dedicatedConn opens a connection of its own to the PostgreSQL registry,
// outside the pool: LISTEN and session-level advisory locks belong to one
// connection for as long as it lives.
func (s *Store) dedicatedConn(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil { // the DSN may hold a password: keep it out of the error
		return nil, errors.New("connect to postgres registry: malformed DSN")
	}
	ctx, cancel := context.WithTimeout(ctx, dedicatedTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres registry: %w", err)
	}
	return conn, nil
}

// pingDedicated checks that conn still reaches the server.
func pingDedicated(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, dedicatedTimeout)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("check registry connection: %w", err)
	}
	return nil
}

func closeDedicated(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), dedicatedTimeout)
	defer cancel()
	_ = conn.Close(ctx) // the connection is done with either way
}
