package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// appendEvents writes one audit event per type, each in its own transaction.
func appendEvents(t *testing.T, s *Store, types ...string) {
	t.Helper()
	for _, typ := range types {
		update(t, s, func(ctx context.Context, tx iga.Tx) error {
			return tx.AppendAudit(ctx, iga.AuditEvent{Type: typ, Actor: "sallyport"})
		})
	}
}

// drain delivers every waiting event of sink and returns their types.
func drain(t *testing.T, s *Store, sink string) []string {
	t.Helper()
	var got []string
	for {
		n, err := s.ExportBatch(ctxT(t), sink, 0, 2, func(_ context.Context, evs []iga.AuditEvent) error {
			for _, e := range evs {
				got = append(got, e.Type)
			}
			return nil
		})
		require.NoError(t, err, "export to %s", sink)
		if n == 0 {
			return got
		}
	}
}

func TestOutbox(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fresh := b.start(t)
			t.Run("every sink gets every event in order, a failed delivery is retried", func(t *testing.T) {
				s := openT(t, fresh(t))
				ctx := ctxT(t)
				require.NoError(t, s.RegisterSinks(ctx, []string{"a", "b"}))
				appendEvents(t, s, "e1", "e2", "e3")
				_, err := s.ExportBatch(ctx, "a", 0, 10, func(context.Context, []iga.AuditEvent) error { return errors.New("sink down") })
				require.Error(t, err, "a failing delivery reports its error")
				n, oldest, err := s.OutboxLag(ctx, "a")
				require.NoError(t, err)
				assert.Equal(t, 3, n, "events waiting for a after a failed delivery")
				assert.False(t, oldest.IsZero(), "the oldest waiting event has a time")
				assert.Equal(t, []string{"e1", "e2", "e3"}, drain(t, s, "a"))
				assert.Empty(t, drain(t, s, "a"), "a second pass delivers nothing again")
				pruned, err := s.PruneOutbox(ctx)
				require.NoError(t, err)
				assert.Zero(t, pruned, "nothing pruned while b has not had the events")
				assert.Equal(t, []string{"e1", "e2", "e3"}, drain(t, s, "b"))
				pruned, err = s.PruneOutbox(ctx)
				require.NoError(t, err)
				assert.EqualValues(t, 3, pruned, "events every sink had are pruned")
			})
			t.Run("with no sink registered the outbox does not grow", func(t *testing.T) {
				s := openT(t, fresh(t))
				appendEvents(t, s, "e1")
				pruned, err := s.PruneOutbox(ctxT(t))
				require.NoError(t, err)
				assert.EqualValues(t, 1, pruned)
			})
		})
	}
}

// TestOutboxPostgresConcurrency covers what only PostgreSQL allows: an
// event whose transaction commits after a later one was exported, and two
// replicas exporting to one sink.
func TestOutboxPostgresConcurrency(t *testing.T) {
	fresh := startPostgres(t)
	cfg := fresh(t)
	s1, s2 := openT(t, cfg), openT(t, cfg)
	ctx := ctxT(t)
	require.NoError(t, s1.RegisterSinks(ctx, []string{"siem"}))

	t.Run("an event committed late is not skipped", func(t *testing.T) {
		slow, err := s1.db.BeginTx(ctx, nil)
		require.NoError(t, err)
		w := &tx{reader: reader{d: s1.d, stmts: s1.stmts, tx: slow}}
		require.NoError(t, w.AppendAudit(ctx, iga.AuditEvent{Type: "late", Actor: "sallyport"}))
		appendEvents(t, s2, "early")
		assert.Equal(t, []string{"early"}, drain(t, s1, "siem"))
		require.NoError(t, slow.Commit())
		evs, err := s1.Audit(ctx, iga.AuditFilter{Type: "early"})
		require.NoError(t, err)
		n, err := s1.ExportBatch(ctx, "siem", evs[0].ID, 10, func(context.Context, []iga.AuditEvent) error { return nil })
		require.NoError(t, err)
		assert.Zero(t, n, "a read after the last delivered id does not see the lower id committed late")
		assert.Equal(t, []string{"late"}, drain(t, s1, "siem"), "a read from the start delivers it")
	})
	t.Run("a second replica finds the sink busy", func(t *testing.T) {
		appendEvents(t, s1, "held")
		inside, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := s1.ExportBatch(ctx, "siem", 0, 10, func(context.Context, []iga.AuditEvent) error {
				close(inside)
				<-release
				return nil
			})
			done <- err
		}()
		<-inside
		_, err := s2.ExportBatch(ctx, "siem", 0, 10, func(context.Context, []iga.AuditEvent) error {
			t.Error("the second replica delivered while the first held the sink")
			return nil
		})
		assert.ErrorIs(t, err, ErrSinkBusy)
		close(release)
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(testTimeout):
			t.Fatal("the first replica's delivery did not finish")
		}
		assert.Empty(t, drain(t, s2, "siem"), "the held batch was marked delivered once")
	})
}
