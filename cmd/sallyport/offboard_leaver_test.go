package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOffboardLeaverEndToEnd: a team without an identity provider runs the
// leaver flow with `iga offboard`: her NHI's live SSH session ends within
// 5 s, its next login is denied owner_inactive, each of her two NHIs gets
// a transfer item for her manager, audited, its owner_inactive alert
// reaches the webhook before the command returns, offboarding again opens
// nothing, and a new owner closes an item. SQLite and PostgreSQL registries.
func TestOffboardLeaverEndToEnd(t *testing.T) {
	for _, driver := range registryDrivers(t) {
		t.Run(driver.name, func(t *testing.T) { testOffboardLeaver(t, newSCIMLeaver(t, driver)) })
	}
}

func testOffboardLeaver(t *testing.T, b *scimLeaver) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The manager is the one thing only an IdP sends; without it the admin
	// gets the items (iga's TestOffboardTransfers).
	require.Equal(t, http.StatusOK, b.scim(t, "PATCH", "/Users/alice@example.com", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
	 "Operations":[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"bob@example.com"}]}`, "mover-1"))
	long := b.ssh(ctx, "sleep 60")
	require.NoError(t, long.Start())
	b.waitLive(t)

	offboarded := time.Now()
	out := b.ok("iga", "offboard", "alice@example.com")
	waited := make(chan error, 1)
	go func() { waited <- long.Wait() }()
	select {
	case <-waited:
		t.Logf("the live session ended %s after iga offboard", time.Since(offboarded).Round(time.Millisecond))
		assert.Less(t, time.Since(offboarded), 5*time.Second, "the live session outlived its owner by more than 5 s")
	case <-time.After(8 * time.Second):
		t.Fatal("the live session still runs 8 s after its owner was offboarded")
	}
	assert.Contains(t, out, "2 ownership-transfer items opened")
	assert.Regexp(t, `svc-ops +assigned to bob@example\.com`, out)
	assert.Regexp(t, `svc-report +assigned to bob@example\.com`, out)
	assert.Contains(t, out, "next: sallyport iga transfer IDENTITY --to PERSON")
	assert.Contains(t, out, "2 owner_inactive alerts posted to the alert webhook")
	checkOffboardAlerts(t, b)
	res := e2eRun(t, b.ssh(ctx, "echo after-leaving"))
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "owner_inactive")

	checkOffboardTransfers(t, b)
	assert.Equal(t, map[string]int{"offboard": 1, "transfer_open": 2}, offboardEvents(t, b))

	out = b.ok("iga", "offboard", "alice@example.com")
	assert.Contains(t, out, "already inactive: nothing changed, no transfer item opened")
	assert.Equal(t, map[string]int{"offboard": 1, "transfer_open": 2}, offboardEvents(t, b), "the second offboard audits nothing")
	assert.Len(t, b.hook.kinds(), 2, "nor alerts again")
	assert.Len(t, offboardItems(t, b), 2, "nor opens items")

	out = b.ok("iga", "transfer", "svc-ops", "--to", "carol@example.com")
	assert.Contains(t, out, "now owned by carol@example.com")
	items := offboardItems(t, b)
	require.Len(t, items, 1, "the new owner closed svc-ops's item")
	assert.Equal(t, "svc-report", items[0].Identity)
}

// checkOffboardAlerts: the webhook got one signed owner_inactive alert per
// NHI by the time iga offboard returned, naming the operator.
func checkOffboardAlerts(t *testing.T, b *scimLeaver) {
	b.hook.mu.Lock()
	defer b.hook.mu.Unlock()
	assert.Zero(t, b.hook.bad, "the alerts' signatures verify")
	require.Len(t, b.hook.got, 2)
	var ids []string
	for _, a := range b.hook.got {
		assert.Equal(t, "owner_inactive", a["kind"])
		assert.Equal(t, "bob@example.com", a["assigned_to"])
		assert.Contains(t, a["summary"], "left (iga offboard by cli")
		ids = append(ids, a["identity"].(string))
	}
	assert.ElementsMatch(t, []string{"svc-ops", "svc-report"}, ids)
}

type offboardItem struct {
	ID, Identity, From, Reason string
	AssignedTo                 string `json:"assigned_to"`
	RequestID                  string `json:"request_id"`
}

func offboardItems(t *testing.T, b *scimLeaver) []offboardItem {
	var items []offboardItem
	require.NoError(t, json.Unmarshal([]byte(b.ok("iga", "transfers", "--json")), &items))
	return items
}

func checkOffboardTransfers(t *testing.T, b *scimLeaver) {
	items := offboardItems(t, b)
	require.Len(t, items, 2)
	for _, it := range items {
		assert.Equal(t, "bob@example.com", it.AssignedTo, "the active manager gets the item")
		assert.Equal(t, "alice@example.com", it.From)
		assert.Empty(t, it.RequestID, "no SCIM request opened it")
		assert.True(t, strings.HasPrefix(it.Reason, "owner alice@example.com was offboarded with `iga offboard` by cli"), it.Reason)
	}
	listed := b.ok("iga", "transfers")
	assert.Contains(t, listed, "svc-ops")
	assert.Contains(t, listed, "svc-report")
}

// offboardEvents counts the audit events of the leaver flow, checking
// that the operator, not scim, is their actor.
func offboardEvents(t *testing.T, b *scimLeaver) map[string]int {
	n := map[string]int{}
	for _, typ := range []string{"offboard", "transfer_open"} {
		var evs []struct{ Actor, Detail string }
		require.NoError(t, json.Unmarshal([]byte(b.ok("audit", "list", "--type", typ, "--json")), &evs))
		for _, ev := range evs {
			assert.True(t, strings.HasPrefix(ev.Actor, "cli"), "got actor %q, want the operator", ev.Actor)
			n[typ]++
		}
	}
	return n
}
