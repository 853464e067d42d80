package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/recorder"
)

// retentionFor builds the retention job serve runs from e's config, over
// the registry and store the CLI sees.
func retentionFor(t *testing.T, e *env) *recorder.Retention {
	t.Helper()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ap, err := openApp(t.Context(), cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { ap.Close() })
	rc, err := recorderConfig(cfg)
	require.NoError(t, err)
	store, err := recorder.NewStore(rc)
	require.NoError(t, err)
	return newRetention(cfg, ap.store, store, testLogger(t))
}

// listedSessions is sessions list --json by id.
func listedSessions(t *testing.T, e *env) map[string]sessionOut {
	t.Helper()
	var out []sessionOut
	require.NoError(t, json.Unmarshal([]byte(e.ok("sessions", "list", "--json")), &out))
	by := map[string]sessionOut{}
	for _, s := range out {
		by[s.ID] = s
	}
	return by
}

// auditOf is the audit trail's events of type typ, as audit list prints them.
func auditOf(t *testing.T, e *env, typ string) []iga.AuditEvent {
	t.Helper()
	var evs []iga.AuditEvent
	require.NoError(t, json.Unmarshal([]byte(e.ok("audit", "list", "--type", typ, "--json")), &evs))
	return evs
}

// TestRetentionDeletesPastDueKeepsHeld: with recordings.retention 400d, the
// retention run 401 days on deletes a recording's objects and keeps its
// session in the index saying when retention deleted it, with an audit
// event; a recording on legal hold (recording hold) stays whole, and verify
// and sessions list show its hold. Released, it goes at the next run.
func TestRetentionDeletesPastDueKeepsHeld(t *testing.T) {
	e := newEnv(t, "recordings: {retention: 400d}")
	gone, held := recordSession(t, e), recordSession(t, e)
	out := e.ok("recording", "hold", held, "--reason", "litigation hold, case 2026-117")
	assert.Contains(t, out, "recording on legal hold since")
	assert.Contains(t, e.ok("sessions", "list"), "legal hold since "+time.Now().UTC().Format(time.DateOnly))
	_, errOut, code := e.run("", "recording", "hold", held)
	assert.Equal(t, 2, code, "a hold without a reason is refused")
	assert.Contains(t, errOut, "--reason")

	later := time.Now().AddDate(0, 0, 401)
	r := retentionFor(t, e)
	n, err := r.Sweep(t.Context(), later)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the recording that is not held goes")

	dirs, err := filepath.Glob(filepath.Join(e.dir, "data", "recordings", "*", "*", "*", gone))
	require.NoError(t, err)
	assert.Empty(t, dirs, "every object of the recording is deleted")
	listed := listedSessions(t, e)
	assert.Equal(t, "deleted", listed[gone].State, "the session stays in the index")
	assert.Equal(t, "recording deleted by retention on "+later.UTC().Format(time.DateOnly), listed[gone].Reason)
	assert.Contains(t, e.ok("sessions", "list"), "recording deleted by retention on "+later.UTC().Format(time.DateOnly))
	for _, args := range [][]string{{"replay", gone, "--format", "text"}, {"verify", gone}} {
		_, errOut, code := e.run("", args...)
		assert.Equal(t, 1, code, args[0])
		assert.Contains(t, errOut, "nothing to read, its recording deleted by retention on", args[0])
	}
	require.NotNil(t, listed[held].LegalHold)
	assert.Equal(t, "litigation hold, case 2026-117", listed[held].LegalHold.Reason)
	assert.Equal(t, "stored", listed[held].State)

	deletions := auditOf(t, e, "recording_delete")
	require.Len(t, deletions, 1)
	assert.Contains(t, deletions[0].Detail, "recording of session "+gone+" deleted")
	assert.Equal(t, "svc-backup", deletions[0].Identity)
	holds := auditOf(t, e, "recording_hold")
	require.Len(t, holds, 1)
	assert.Contains(t, holds[0].Detail, "litigation hold, case 2026-117")
	assert.True(t, strings.HasPrefix(holds[0].Actor, "cli"), "got actor %q, want the operator", holds[0].Actor)

	out = e.ok("verify", held)
	assert.Contains(t, out, "intact")
	assert.Contains(t, out, "legal hold since")
	assert.Contains(t, out, "retention marker: kept until")

	out = e.ok("recording", "release", held, "--reason", "case closed")
	assert.Contains(t, out, "legal hold released (it was held since")
	_, errOut, code = e.run("", "recording", "release", held, "--reason", "again")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "is not on legal hold")
	require.Len(t, auditOf(t, e, "recording_release"), 1)
	n, err = r.Sweep(t.Context(), later)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "released, the recording goes at the next run")
	assert.Equal(t, "deleted", listedSessions(t, e)[held].State)
	_, errOut, code = e.run("", "recording", "hold", held, "--reason", "too late")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "nothing to hold, its recording deleted by retention on")
}

// TestRetentionKeepsMarkedRecording: a recording stored under retention
// 400d keeps its file store marker when the setting is shortened to 1d:
// the next run leaves it whole, and it is still intact.
func TestRetentionKeepsMarkedRecording(t *testing.T) {
	e := newEnv(t, "recordings: {retention: 400d}")
	id := recordSession(t, e)
	data, err := os.ReadFile(e.config)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(e.config, []byte(strings.Replace(string(data), "400d", "1d", 1)), 0o600))
	n, err := retentionFor(t, e).Sweep(t.Context(), time.Now().AddDate(0, 0, 2))
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Contains(t, e.ok("verify", id), "intact")
	assert.Equal(t, "stored", listedSessions(t, e)[id].State)
	assert.Empty(t, auditOf(t, e, "recording_delete"))
}

// TestServeRunsRetention: serve itself runs the retention job at start (a
// single replica leads): a recording past a one-second retention is gone
// from the store and the index says so.
func TestServeRunsRetention(t *testing.T) {
	e := newEnv(t, "recordings: {retention: 1s}")
	id := recordSession(t, e)
	time.Sleep(1100 * time.Millisecond) // past the recording's marker
	_, logs := startServe(t, e)
	require.Eventually(t, func() bool { return listedSessions(t, e)[id].State == "deleted" }, 10*time.Second, 100*time.Millisecond,
		"serve did not delete the recording: %s", logs)
	assert.Contains(t, logs.String(), "recording deleted by retention")
	out, _, code := e.run("", "verify", id)
	assert.NotEqual(t, 0, code, "the recording is gone: %s", out)
	require.Len(t, auditOf(t, e, "recording_delete"), 1)
}

// TestRetentionOnlyOnLeader: a replica that does not lead never runs the
// retention job, so with replicas a recording is deleted (and audited)
// once, by the leader.
func TestRetentionOnlyOnLeader(t *testing.T) {
	e := newEnv(t, "recordings: {retention: 1s}")
	id := recordSession(t, e)
	time.Sleep(1100 * time.Millisecond) // past the recording's marker
	r := retentionFor(t, e)
	for _, leads := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		runRetention(ctx, r, func() bool { return leads }, testLogger(t))
		cancel()
		want := map[bool]string{false: "stored", true: "deleted"}[leads]
		assert.Equal(t, want, listedSessions(t, e)[id].State, "leading %v", leads)
	}
	require.Len(t, auditOf(t, e, "recording_delete"), 1)
}
