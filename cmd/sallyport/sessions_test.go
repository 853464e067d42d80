package main

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/proxy"
)

// TestSessionsKillFromAnotherProcess: `sallyport sessions kill`, run as its
// own process, ends a session this process runs within a second, through
// the session index the serve process's watcher polls.
func TestSessionsKillFromAnotherProcess(t *testing.T) {
	e := newEnv(t, "")
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	defer ap.Close()

	live := &proxy.Live{Index: ap.store, Logger: testLogger(t)}
	go live.Watch(ctx)
	req := iga.Request{Identity: "svc-backup", Target: "web-01", Action: iga.ActionExec, Source: netip.MustParseAddr("127.0.0.1")}
	s := live.Begin(ctx, "ssh", req, iga.Decision{Allow: true}, time.Now())
	require.NoError(t, ap.store.PutSession(ctx, sqlstore.SessionRecord{ID: s.ID, Identity: "svc-backup",
		Target: "web-01", Protocol: "ssh", State: "live", StartedAt: s.Started}))

	out := e.ok("sessions", "list", "--live")
	assert.Contains(t, out, s.ID)
	asked := time.Now()
	e.ok("sessions", "kill", s.ID, "--reason", "runaway job")
	select {
	case <-s.Context().Done():
		assert.Less(t, time.Since(asked), time.Second, "kill took longer than 1s")
		assert.ErrorIs(t, context.Cause(s.Context()), proxy.ErrKilled)
		assert.ErrorContains(t, context.Cause(s.Context()), "runaway job")
	case <-time.After(3 * time.Second):
		t.Fatal("the session was not ended 3s after sessions kill")
	}
	_, errOut, code := e.run("", "sessions", "kill", "no-such-session")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no session no-such-session")
}
