package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSearchReplicas: two replicas sharing a PostgreSQL registry and an S3
// store both run the indexer; every session is indexed once (each marker
// one hit, on either replica), whichever replica ran it.
func TestSearchReplicas(t *testing.T) {
	c := newReplicaCluster(t)
	a, b := c.start(t), c.start(t)
	a.ok("iga", "apply", "-f", c.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	for i, r := range []*replica{a, b, a, b} {
		res := e2eRun(t, r.ssh(ctx, fmt.Sprintf("echo ha-marker-%d-$((6*7))", i)))
		require.Equalf(t, 0, res.code, "ssh through replica %d: %s", i, res.stderr)
	}
	res := e2eRun(t, a.psqlThrough(ctx, "-c", "select 'ha-query-marker'"))
	require.Equalf(t, 0, res.code, "psql through A: %s", res.stderr)

	for i := range 4 {
		text := fmt.Sprintf("ha-marker-%d-$((6*7))", i)
		var hits []searchHit
		require.Eventually(t, func() bool {
			hits = (&searchBastion{env: b.env}).search(t, text)
			return len(hits) > 0
		}, 20*time.Second, 200*time.Millisecond, "no hit for %s; A: %s\nB: %s", text, a.logs, b.logs)
		time.Sleep(500 * time.Millisecond) // time for a second indexer to add a duplicate, were there one
		for _, r := range []*replica{a, b} {
			hits = (&searchBastion{env: r.env}).search(t, text)
			assert.Len(t, hits, 1, "%s indexed once, seen from either replica: %+v", text, hits)
		}
	}
	hits := (&searchBastion{env: a.env}).search(t, "ha-query-marker")
	assert.Len(t, hits, 1, "the psql session's query indexed once: %+v", hits)
	assert.NotContains(t, a.ok("sessions", "search", "ha-marker"), "index is behind")
}
