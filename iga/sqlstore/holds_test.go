package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestRecordingHolds: on both drivers, a hold keeps a session out of the
// retention job's candidates until it is released; hold, release and the
// deletion each leave an audit event, and a deleted recording's session
// stays in the index saying so.
func TestRecordingHolds(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testRecordingHolds(t, b.start(t)) })
	}
}

func testRecordingHolds(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	old := time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)
	for _, r := range []SessionRecord{
		{ID: "s-old", State: "stored", StartedAt: old, EndedAt: old.Add(time.Minute)},
		{ID: "s-held", State: "stored", StartedAt: old, EndedAt: old.Add(2 * time.Minute)},
		{ID: "s-live", State: "live", StartedAt: old},
		{ID: "s-new", State: "stored", StartedAt: old.AddDate(1, 0, 0), EndedAt: old.AddDate(1, 0, 0)},
	} {
		r.Identity, r.Target, r.Protocol = "svc-backup", "web-01", "ssh"
		require.NoError(t, s.PutSession(ctx, r))
	}
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	h, created, err := s.HoldRecording(ctx, RecordingHold{Session: "s-held", At: at, By: "cli:alice", Reason: "case 4711"})
	require.NoError(t, err)
	assert.True(t, created)
	_, created, err = s.HoldRecording(ctx, RecordingHold{Session: "s-held", At: at.Add(time.Hour), By: "cli:bob", Reason: "again"})
	require.NoError(t, err)
	assert.False(t, created, "a second hold keeps the first")
	got, ok, err := s.RecordingHold(ctx, "s-held")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, h, got)
	_, _, err = s.HoldRecording(ctx, RecordingHold{Session: "s-none", At: at, By: "cli:alice", Reason: "x"})
	assert.ErrorIs(t, err, iga.ErrNotFound)

	due, err := s.RetentionDue(ctx, old.AddDate(0, 6, 0), 10)
	require.NoError(t, err)
	require.Len(t, due, 1, "neither the held, the live nor the new session is due")
	assert.Equal(t, "s-old", due[0].ID)
	require.NoError(t, s.MarkRecordingDeleted(ctx, due[0].ID, at, "5 objects"))
	r, err := s.Session(ctx, "s-old")
	require.NoError(t, err)
	assert.Equal(t, StateDeleted, r.State)
	assert.Equal(t, "recording deleted by retention on 2026-12-07", r.Reason)
	due, err = s.RetentionDue(ctx, old.AddDate(0, 6, 0), 10)
	require.NoError(t, err)
	assert.Empty(t, due, "a deleted recording is not due again")

	_, err = s.ReleaseRecording(ctx, RecordingHold{Session: "s-held", At: at.Add(2 * time.Hour), By: "cli:carol", Reason: "case closed"})
	require.NoError(t, err)
	_, err = s.ReleaseRecording(ctx, RecordingHold{Session: "s-held", At: at.Add(2 * time.Hour), By: "cli:carol", Reason: "twice"})
	assert.ErrorIs(t, err, ErrNotHeld)
	holds, err := s.RecordingHolds(ctx)
	require.NoError(t, err)
	assert.Empty(t, holds)
	due, err = s.RetentionDue(ctx, old.AddDate(0, 6, 0), 10)
	require.NoError(t, err)
	require.Len(t, due, 1, "released, the recording is due")

	evs, err := s.Audit(ctx, iga.AuditFilter{Identity: "svc-backup"})
	require.NoError(t, err)
	var types, details []string
	for _, e := range evs {
		types, details = append(types, e.Type), append(details, e.Actor+" "+e.Detail)
	}
	assert.Equal(t, []string{AuditRecordingHold, AuditRecordingDelete, AuditRecordingRelease}, types)
	assert.Contains(t, details[0], "cli:alice legal hold on the recording of session s-held: case 4711")
	assert.Contains(t, details[1], "sallyport recording of session s-old deleted: 5 objects")
	assert.Contains(t, details[2], "cli:carol legal hold released on the recording of session s-held: case closed")
}
