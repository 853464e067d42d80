package iga_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestOffboardTransfers: iga offboard runs the leaver flow the identity
// provider's deactivation runs: one transfer item per live identity for
// the active manager (else an admin), audited, an owner_inactive alert
// each after the commit, and nothing new the second time.
func TestOffboardTransfers(t *testing.T) {
	gwEachDriver(t, func(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
		t.Run("to the manager", func(t *testing.T) { testOffboardToManager(t, fresh(t)) })
		t.Run("to an admin", func(t *testing.T) { testOffboardToAdmin(t, fresh(t)) })
	})
}

// offboardFixture applies transferFile to r and returns the SCIM side
// over it (for a manager, which only the identity provider sends).
func offboardFixture(t *testing.T, r *iga.Registry) *iga.SCIM {
	_, err := gwApply(t, r, "registry.yaml", []byte(transferFile), iga.ApplyOptions{})
	require.NoError(t, err)
	return &iga.SCIM{Registry: r}
}

func testOffboardToManager(t *testing.T, r *iga.Registry) {
	setActive(t, offboardFixture(t, r), "alice@example.com", true, "bob@example.com")
	var alerts []iga.Alert
	off, err := r.OffboardPerson(gwCtx(t), "alice@example.com", "cli:hr", func(a iga.Alert) { alerts = append(alerts, a) })
	require.NoError(t, err)
	assert.False(t, off.Already)
	assert.Equal(t, []string{"svc-a", "svc-b"}, off.Orphaned)
	require.Len(t, off.Transfers, 2, "deprovisioned identities need no owner")
	items := open(t, r)
	for _, id := range []string{"svc-a", "svc-b"} {
		it := items[id]
		assert.Equal(t, "bob@example.com", it.AssignedTo, "the active manager gets the item")
		assert.Equal(t, "alice@example.com", it.From)
		assert.Equal(t, "owner alice@example.com was offboarded with `iga offboard` by cli:hr", it.Reason)
		assert.Empty(t, it.RequestID)
	}
	require.Len(t, alerts, 2)
	for _, a := range alerts {
		assert.Equal(t, iga.AlertOwnerInactive, a.Kind)
		assert.Equal(t, "bob@example.com", a.AssignedTo)
		assert.Contains(t, a.Summary, "left (iga offboard by cli:hr)")
		assert.Contains(t, a.Summary, "sallyport iga transfer "+a.Identity+" --to PERSON")
	}
	opened := gwAudit(t, r, iga.AuditFilter{Type: "transfer_open"})
	require.Len(t, opened, 2)
	for _, ev := range opened {
		assert.Equal(t, "cli:hr", ev.Actor)
		assert.False(t, strings.HasPrefix(ev.Detail, "scim request"), ev.Detail)
		assert.Contains(t, ev.Detail, "assigned to bob@example.com")
	}
	offboards := gwAudit(t, r, iga.AuditFilter{Type: "offboard"})
	require.Len(t, offboards, 1)
	assert.Equal(t, "person alice@example.com offboarded; orphaned: svc-a, svc-b", offboards[0].Detail)

	again, err := r.OffboardPerson(gwCtx(t), "alice@example.com", "cli:hr", func(a iga.Alert) { alerts = append(alerts, a) })
	require.NoError(t, err)
	assert.True(t, again.Already)
	assert.Empty(t, again.Transfers, "offboarding twice opens nothing new")
	assert.Len(t, alerts, 2, "nor alerts again")
	assert.Len(t, open(t, r), 2)
	assert.Len(t, gwAudit(t, r, iga.AuditFilter{Type: "transfer_open"}), 2)
}

func testOffboardToAdmin(t *testing.T, r *iga.Registry) {
	offboardFixture(t, r)
	off, err := r.OffboardPerson(gwCtx(t), "alice@example.com", "cli:hr", nil)
	require.NoError(t, err)
	require.Len(t, off.Transfers, 2)
	for _, it := range open(t, r) {
		assert.Equal(t, "carol@example.com", it.AssignedTo, "no manager known: the admin gets the item")
	}
	tr, err := r.TransferOwnership(gwCtx(t), "svc-a", "bob@example.com", "carol@example.com")
	require.NoError(t, err)
	assert.Equal(t, "bob@example.com", tr.NewOwner)
	assert.NotContains(t, open(t, r), "svc-a", "the new owner closed svc-a's item")
}

// TestTransfersIsARead: listing the items does not queue behind a writer
// holding the registry (SQLite has one), as admission's writes do.
func TestTransfersIsARead(t *testing.T) {
	r, s, _ := transferFixture(t)
	setActive(t, s, "alice@example.com", false, "bob@example.com")
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- r.Store.Update(context.Background(), func(iga.Tx) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	ts, err := r.Transfers(ctx, false)
	close(release)
	require.NoError(t, err, "listing waited for the writer")
	assert.Len(t, ts, 2)
	assert.Less(t, time.Since(start), time.Second)
	require.NoError(t, <-done)
}

// TestOffboardThenApplyActive: a file that makes the offboarded person
// active again closes the items their offboarding opened.
func TestOffboardThenApplyActive(t *testing.T) {
	r, _, _ := transferFixture(t)
	_, err := r.OffboardPerson(gwCtx(t), "alice@example.com", "cli:hr", nil)
	require.NoError(t, err)
	require.Len(t, open(t, r), 2)
	_, err = gwApply(t, r, "registry.yaml", []byte(transferFile), iga.ApplyOptions{})
	require.NoError(t, err)
	assert.Empty(t, open(t, r), "alice is active again")
	all, err := r.Transfers(gwCtx(t), true)
	require.NoError(t, err)
	for _, tr := range all {
		assert.Equal(t, iga.TransferReactivated, tr.Outcome)
	}
	closes := gwAudit(t, r, iga.AuditFilter{Type: "transfer_close"})
	require.Len(t, closes, 2, "apply recorded the closes")
	assert.Contains(t, closes[0].Detail, "owner alice@example.com active again")
}
