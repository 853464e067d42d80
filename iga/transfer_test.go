package iga_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

const transferFile = `people:
  - {id: alice@example.com, name: Alice, roles: [owner]}
  - {id: bob@example.com, name: Bob, roles: [owner]}
  - {id: carol@example.com, name: Carol, roles: [admin]}
identities:
  - {id: svc-a, kind: service-account, state: active, owner: alice@example.com}
  - {id: svc-b, kind: pipeline, state: active, owner: alice@example.com}
  - {id: svc-gone, kind: workload, state: deprovisioned, owner: alice@example.com}
`

// transferFixture is a SQLite registry from transferFile and the SCIM
// side over it, its alerts collected.
func transferFixture(t *testing.T) (*iga.Registry, *iga.SCIM, *[]iga.Alert) {
	r := gwRegistry(gwOpen(t, sqlstore.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "registry.db")}))
	_, err := gwApply(t, r, "registry.yaml", []byte(transferFile), iga.ApplyOptions{})
	require.NoError(t, err)
	var alerts []iga.Alert
	return r, &iga.SCIM{Registry: r, Alert: func(a iga.Alert) { alerts = append(alerts, a) }}, &alerts
}

func setActive(t *testing.T, s *iga.SCIM, user string, active bool, manager string) {
	_, err := s.ChangeUser(context.Background(), iga.UserChange{UserName: user, RequestID: "req-" + user,
		Apply: func(u *iga.SCIMUser) error {
			u.Active = active
			if manager != "" {
				u.Manager = manager
			}
			return nil
		}})
	require.NoError(t, err)
}

func open(t *testing.T, r *iga.Registry) map[string]iga.Transfer {
	ts, err := r.Transfers(context.Background(), false)
	require.NoError(t, err)
	m := map[string]iga.Transfer{}
	for _, tr := range ts {
		m[tr.Identity] = tr
	}
	return m
}

// TestLeaverTransfers: a leaver's live identities get one item each for
// their manager, an apply that names a new owner closes one, reactivating
// the owner closes the rest.
func TestLeaverTransfers(t *testing.T) {
	r, s, alerts := transferFixture(t)
	setActive(t, s, "alice@example.com", false, "bob@example.com")
	items := open(t, r)
	require.Len(t, items, 2, "deprovisioned identities need no owner")
	for _, id := range []string{"svc-a", "svc-b"} {
		assert.Equal(t, "bob@example.com", items[id].AssignedTo)
		assert.Equal(t, "req-alice@example.com", items[id].RequestID)
	}
	assert.Len(t, *alerts, 2)

	setActive(t, s, "alice@example.com", false, "")
	assert.Len(t, open(t, r), 2, "deactivating twice opens nothing more")

	_, err := gwApply(t, r, "move.yaml", []byte(`people:
  - {id: carol@example.com, name: Carol, roles: [admin]}
identities:
  - {id: svc-a, kind: service-account, state: active, owner: carol@example.com}
`), iga.ApplyOptions{})
	require.NoError(t, err)
	items = open(t, r)
	assert.NotContains(t, items, "svc-a", "apply gave svc-a a new owner")
	assert.Contains(t, items, "svc-b")

	setActive(t, s, "alice@example.com", true, "")
	assert.Empty(t, open(t, r), "the owner came back")
	all, err := r.Transfers(context.Background(), true)
	require.NoError(t, err)
	outcomes := map[string]string{}
	for _, tr := range all {
		outcomes[tr.Identity] = tr.Outcome
	}
	assert.Equal(t, map[string]string{"svc-a": iga.TransferAssigned, "svc-b": iga.TransferReactivated}, outcomes)
}

// TestTransferAssignee: without an active manager an admin gets the item,
// and only an active person may become the new owner.
func TestTransferAssignee(t *testing.T) {
	r, s, _ := transferFixture(t)
	setActive(t, s, "bob@example.com", false, "")
	setActive(t, s, "alice@example.com", false, "bob@example.com")
	for _, tr := range open(t, r) {
		assert.Equal(t, "carol@example.com", tr.AssignedTo, "the manager left too: the admin gets it")
	}
	_, err := r.TransferOwnership(context.Background(), "svc-a", "bob@example.com", "carol@example.com")
	assert.ErrorIs(t, err, iga.ErrRefused, "an inactive person may not own")
	_, err = r.TransferOwnership(context.Background(), "svc-a", "nobody@example.com", "carol@example.com")
	assert.ErrorIs(t, err, iga.ErrRefused)
	tr, err := r.TransferOwnership(context.Background(), "svc-a", "carol@example.com", "carol@example.com")
	require.NoError(t, err)
	assert.Equal(t, "carol@example.com", tr.NewOwner)
	assert.NotContains(t, open(t, r), "svc-a")
}
