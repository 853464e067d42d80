package main

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeDrainsWithinShutdownGrace: from SIGTERM on, /healthz answers 503
// saying draining while a session is still live (so a load balancer sends
// new connections elsewhere), the ssh listener refuses, the session is
// closed once shutdown_grace (2s here, not the 10s default) is over, and
// its recording is sealed and stored before serve exits 0.
func TestServeDrainsWithinShutdownGrace(t *testing.T) {
	const grace = 2 * time.Second
	c := newReplicaCluster(t)
	r := c.startKeyed(t, "a", grace.String())
	r.ok("iga", "apply", "-f", c.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	session := c.sshTo(ctx, r.sshPort, c.knownHosts(t, r.sshPort), "sleep 30")
	require.NoError(t, session.Start())
	t.Cleanup(func() { _ = session.Process.Kill() })
	ended := make(chan time.Time, 1)
	go func() { _ = session.Wait(); ended <- time.Now() }()
	require.Eventually(t, func() bool { return len(r.sessions("--live")) == 1 },
		10*time.Second, 50*time.Millisecond, "the session never showed as live; logs: %s", r.logs)

	require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
	signalled := time.Now()
	var code int
	var body string
	require.Eventually(t, func() bool {
		code, body = healthz(r.webURL())
		return code == http.StatusServiceUnavailable
	}, time.Second, 10*time.Millisecond, "/healthz still answers %d %q 1s after SIGTERM", code, body)
	assert.Contains(t, body, `"status":"draining"`)
	select {
	case at := <-ended:
		t.Fatalf("the session ended %s after SIGTERM, before /healthz said draining", at.Sub(signalled))
	default:
	}
	assert.Eventually(t, func() bool { return refuses(r.sshAddr()) },
		time.Second, 10*time.Millisecond, "the ssh listener still accepts 1s after SIGTERM")

	select {
	case at := <-ended:
		took := at.Sub(signalled)
		assert.GreaterOrEqual(t, took, grace-200*time.Millisecond, "the live session was closed before shutdown_grace")
		assert.Less(t, took, shutdownGrace, "the session lasted the default grace, not shutdown_grace %s", grace)
	case <-time.After(shutdownGrace + 5*time.Second):
		t.Fatalf("the session still runs %s after SIGTERM with shutdown_grace %s", shutdownGrace+5*time.Second, grace)
	}
	r.wait(t, 20*time.Second)

	ss := r.sessions()
	require.Len(t, ss, 1)
	assert.Equal(t, "stored", ss[0].State, "the recording of the closed session is sealed and stored; logs: %s", r.logs)
	assert.True(t, strings.Contains(r.ok("verify", ss[0].ID), "intact"), "the recording verifies")
}
