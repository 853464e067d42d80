package iga_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestRecheckWritesOnlyRefusals: the watcher re-admits every live session
// every few seconds, so an unchanged verdict must not flood the audit trail,
// while the refusal that ends a session must be in it.
func TestRecheckWritesOnlyRefusals(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		ctx := context.Background()
		_, line := admKey(t)
		admSeed(t, s, admPeople, []iga.Identity{admPassing("svc-backup", line)}, nil)
		reg := admRegistry(s, nil)
		req := iga.Request{Identity: "svc-backup", Target: "web-01", Action: iga.ActionExec}

		for range 3 {
			d, err := reg.Recheck(ctx, req)
			require.NoError(t, err)
			require.True(t, d.Allow, "got reasons %v, want allow", d.Reasons)
		}
		evs, err := s.Audit(ctx, iga.AuditFilter{Identity: "svc-backup", Type: "decision"})
		require.NoError(t, err)
		assert.Empty(t, evs, "an unchanged verdict wrote %d audit events", len(evs))

		id, err := s.Identity(ctx, "svc-backup")
		require.NoError(t, err)
		id.State = iga.StateSuspended
		require.NoError(t, s.Update(ctx, func(tx iga.Tx) error { return tx.PutIdentity(ctx, id) }))
		d, err := reg.Recheck(ctx, req)
		require.NoError(t, err)
		assert.False(t, d.Allow)
		assert.Equal(t, []string{iga.ReasonNotActive}, admCodes(d.Reasons))
		evs, err = s.Audit(ctx, iga.AuditFilter{Identity: "svc-backup", Type: "decision"})
		require.NoError(t, err)
		require.Len(t, evs, 1, "the refusal that ends a session is audited")
		assert.False(t, evs[0].Allow)
	})
}
