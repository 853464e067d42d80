package sqlstore

import (
	"context"
	"time"
)

// sqliteCheckpointInterval is how often a background goroutine copies the
// SQLite write-ahead log into the database file. Commits never checkpoint
// themselves (wal_autocheckpoint is off), so the checkpoint's page writes
// and fsync stay off the admission path; the log grows by at most one
// interval's writes in between.
const sqliteCheckpointInterval = time.Second

// sqliteCheckpointTimeout bounds one checkpoint.
const sqliteCheckpointTimeout = 30 * time.Second

// checkpointer runs passive checkpoints until stop is closed. A passive
// checkpoint never waits for readers or writers; what it cannot copy now
// it copies next time.
func (s *Store) checkpointer(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(sqliteCheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), sqliteCheckpointTimeout)
			// An error here (a busy database, say) only delays the copy; the
			// next tick tries again, and the log stays intact meanwhile.
			_, _ = s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			cancel()
		}
	}
}

// startCheckpointer starts the checkpointer when the dialect needs one.
func (s *Store) startCheckpointer() {
	if !s.d.walCheckpoints {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	s.stopCheckpoints = func() {
		close(stop)
		<-done
	}
	go s.checkpointer(stop, done)
}
