package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/proxy"
)

// registryDoc lets svc-ops run commands on web-01.
const registryDoc = `people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
identities:
  - id: svc-ops
    kind: service-account
    state: active
    owner: alice@example.com
    environment: prod
    entitlements: [{target: web-01, login: ops, actions: [exec]}]
    certification: {by: alice@example.com, at: %[1]s, until: %[2]s}
  - id: svc-batch
    kind: pipeline
    state: active
    owner: alice@example.com
    environment: prod
    entitlements: [{target: web-01, login: ops, actions: [exec]}]
    certification: {by: alice@example.com, at: %[1]s, until: %[2]s}
`

// TestWatchWakes: a woken watcher ends a killed or no longer admitted
// session at once, though its polls are an hour apart.
func TestWatchWakes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "registry.db")})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	reg := &iga.Registry{Store: store, Targets: func(name string) (iga.Target, bool) {
		return iga.Target{Name: name, Kind: "ssh", Environment: "prod"}, name == "web-01"
	}}
	now := time.Now().UTC()
	f, err := iga.ParseFile("registry.yaml", []byte(fmt.Sprintf(registryDoc,
		now.AddDate(0, 0, -1).Format(time.RFC3339), now.AddDate(0, 1, 0).Format(time.RFC3339))))
	require.NoError(t, err)
	_, err = reg.Apply(ctx, f, iga.ApplyOptions{Actor: "test"})
	require.NoError(t, err)

	req := iga.Request{Identity: "svc-ops", Target: "web-01", Action: iga.ActionExec}
	// Each case has a watcher of its own, so no round of another's is
	// still running; it stops with the case.
	watched := func(t *testing.T) *proxy.Live {
		live := &proxy.Live{Gate: reg, Index: store, KillPoll: time.Hour, Recheck: time.Hour}
		wctx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		go live.Watch(wctx)
		return live
	}
	begin := func(t *testing.T) (*proxy.Live, *proxy.Session) {
		live := watched(t)
		d, err := reg.Decide(ctx, req)
		require.NoError(t, err)
		require.True(t, d.Allow, "svc-ops is admitted: %v", d.Err())
		s := live.Begin(ctx, "ssh", req, d, time.Now())
		t.Cleanup(func() { live.End(s) })
		require.NoError(t, store.PutSession(ctx, sqlstore.SessionRecord{ID: s.ID, Identity: "svc-ops", Target: "web-01",
			Protocol: "ssh", State: "live", StartedAt: s.Started}))
		return live, s
	}
	endsAfterWake := func(t *testing.T, live *proxy.Live, s *proxy.Session, want string) {
		t.Helper()
		select {
		case <-s.Context().Done():
			t.Fatalf("the session ended before the wake-up: %v", context.Cause(s.Context()))
		case <-time.After(100 * time.Millisecond):
		}
		woken := time.Now()
		live.Wake()
		select {
		case <-s.Context().Done():
			t.Logf("ended %s after the wake-up", time.Since(woken))
		case <-time.After(2 * time.Second):
			t.Fatalf("the session still runs 2s after the wake-up")
		}
		cause := context.Cause(s.Context())
		assert.True(t, errors.Is(cause, proxy.ErrKilled), "cause: got %v, want ErrKilled", cause)
		assert.ErrorContains(t, cause, want)
	}

	t.Run("kill request", func(t *testing.T) {
		live, s := begin(t)
		require.NoError(t, store.RequestKill(ctx, s.ID, "killed elsewhere", time.Now()))
		endsAfterWake(t, live, s, "killed elsewhere")
	})
	t.Run("revocation", func(t *testing.T) {
		live, s := begin(t)
		require.NoError(t, reg.Revoke(ctx, "svc-ops", "alice@example.com", "leaked key"))
		endsAfterWake(t, live, s, "no longer admitted")
	})
	// A pipeline's many connections ask the same thing: one round re-admits
	// them with one decision, so 200 sessions end together and the audit
	// trail holds one refusal for them, not 200.
	t.Run("many sessions of one identity", func(t *testing.T) {
		batch := iga.Request{Identity: "svc-batch", Target: "web-01", Action: iga.ActionExec}
		live := watched(t)
		d, err := reg.Decide(ctx, batch)
		require.NoError(t, err)
		require.True(t, d.Allow, "svc-batch is admitted: %v", d.Err())
		var sessions []*proxy.Session
		for i := range 200 {
			req := batch
			req.Session = fmt.Sprintf("%024x", i) // each connection's own id, as the proxies mint it
			s := live.Begin(ctx, "ssh", req, d, time.Now())
			require.Equal(t, req.Session, s.ID, "the session takes the id its decision named")
			t.Cleanup(func() { live.End(s) })
			sessions = append(sessions, s)
		}
		since := time.Now()
		require.NoError(t, reg.Revoke(ctx, "svc-batch", "alice@example.com", "leaked key"))
		live.Wake()
		for i, s := range sessions {
			select {
			case <-s.Context().Done():
			case <-time.After(2 * time.Second):
				t.Fatalf("session %d of 200 still runs 2s after the wake-up", i)
			}
		}
		evs, err := store.Audit(ctx, iga.AuditFilter{Identity: "svc-batch", Type: "decision", Since: since})
		require.NoError(t, err)
		refusals := 0
		for _, ev := range evs {
			if !ev.Allow {
				refusals++
			}
		}
		assert.Equal(t, 1, refusals, "one refusal in the audit trail for the 200 sessions")
	})
}
