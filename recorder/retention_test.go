package recorder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordShort records one short terminal session through h and waits
// until it is in the store.
func recordShort(t *testing.T, h *harness, id string) {
	t.Helper()
	s, err := h.rec.Open(ctxT(t), testMeta(id))
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
	require.NoError(t, s.Output(0, []byte("$ uptime\r\n up 400 days\r\n")))
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0), Reason: "client closed"}))
	h.waitUploaded(t)
}

// TestFileStoreRetentionMarker: with a retention, the file store writes a
// marker beside each recording it stores; deleting the recording before
// the marker's date is refused with that date and deletes nothing, and
// verify reports the marker. After the date the whole recording goes.
func TestFileStoreRetentionMarker(t *testing.T) {
	store := fileStore(t)
	store.Retention = 400 * 24 * time.Hour
	h := newHarness(t, t.TempDir(), store, testKey(t), nil)
	id := "retained-session"
	before := time.Now().UTC()
	recordShort(t, h, id)
	dir := SessionDir(id, testMeta(id).StartedAt)

	marker, err := os.ReadFile(filepath.Join(store.root, filepath.FromSlash(strings.TrimSuffix(dir, "/"))+retainSuffix))
	require.NoError(t, err, "the marker lies beside the session directory")
	until, err := time.Parse(time.RFC3339, string(marker))
	require.NoError(t, err)
	assert.WithinDuration(t, before.Add(store.Retention), until, time.Minute)

	rep := h.verify(t, id)
	assert.Equal(t, StatusIntact, rep.Status, "the marker is no object of the recording: %s", rep)
	require.NotNil(t, rep.Lock)
	assert.Contains(t, rep.String(), "kept until "+until.Format(time.RFC3339))

	n, err := DeleteRecording(ctxT(t), store, dir, time.Now().AddDate(0, 0, 399))
	var retained *RetainedError
	require.True(t, errors.As(err, &retained), "got %v, want a RetainedError", err)
	assert.Zero(t, n)
	assert.Contains(t, err.Error(), "under retention until "+until.Format(time.RFC3339))
	assert.Equal(t, StatusIntact, h.verify(t, id).Status, "a refused delete removes nothing")

	n, err = DeleteRecording(ctxT(t), store, dir, until.Add(time.Second))
	require.NoError(t, err)
	assert.Greater(t, n, 2, "session.json, a chunk and the manifest at least")
	keys, err := store.List(ctxT(t), "")
	require.NoError(t, err)
	assert.Empty(t, keys, "every object of the recording is gone")
	_, err = os.Stat(filepath.Join(store.root, filepath.FromSlash(strings.TrimSuffix(dir, "/"))+retainSuffix))
	assert.True(t, errors.Is(err, os.ErrNotExist), "the marker went with the recording")
}

// TestFileStoreRetentionNotShortened: a recording stored under a long
// retention keeps its date when the setting is shortened later, and a
// damaged marker keeps the recording rather than letting it go.
func TestFileStoreRetentionNotShortened(t *testing.T) {
	store := fileStore(t)
	store.Retention = 30 * 24 * time.Hour
	h := newHarness(t, t.TempDir(), store, testKey(t), nil)
	recordShort(t, h, "long-kept")
	store.Retention = time.Hour
	dir := SessionDir("long-kept", testMeta("long-kept").StartedAt)
	_, err := DeleteRecording(ctxT(t), store, dir, time.Now().Add(2*time.Hour))
	var retained *RetainedError
	require.True(t, errors.As(err, &retained), "got %v, want a RetainedError", err)
	assert.True(t, retained.Until.After(time.Now().AddDate(0, 0, 29)), "got %s, want the 30-day date", retained.Until)

	p := filepath.Join(store.root, filepath.FromSlash(strings.TrimSuffix(dir, "/"))+retainSuffix)
	require.NoError(t, os.WriteFile(p, []byte("soon"), 0o600))
	_, err = DeleteRecording(ctxT(t), store, dir, time.Now().AddDate(1, 0, 0))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not an RFC 3339 time")
	assert.Equal(t, StatusIntact, h.verify(t, "long-kept").Status)
}

// TestObjectLockValidate: the object_lock block names the key at fault.
func TestObjectLockValidate(t *testing.T) {
	for _, tc := range []struct {
		lock ObjectLock
		want string
	}{
		{ObjectLock{}, ""},
		{ObjectLock{Mode: LockCompliance, Days: 400}, ""},
		{ObjectLock{Mode: LockGovernance, Days: 1}, ""},
		{ObjectLock{Mode: "compliance", Days: 400}, "not GOVERNANCE or COMPLIANCE"},
		{ObjectLock{Mode: LockCompliance}, "object_lock.days: 0"},
		{ObjectLock{Mode: LockCompliance, Days: maxLockDays + 1}, "object_lock.days"},
		{ObjectLock{Days: 30}, "object_lock.mode: missing"},
	} {
		t.Run(tc.lock.Mode+"/"+tc.want, func(t *testing.T) {
			err := tc.lock.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	err := Config{DataDir: "/d", S3: S3Config{ObjectLock: ObjectLock{Mode: LockCompliance, Days: 1}}}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs store s3")
}

// FuzzRetentionMarker: whatever a marker file holds, DeleteRecording
// deletes the recording only when the marker is an RFC 3339 time not after
// the deletion's; anything else keeps every object.
func FuzzRetentionMarker(f *testing.F) {
	for _, seed := range []string{"2026-12-07T10:00:00Z", "2099-01-01T00:00:00+02:00", "", "soon",
		"2026-12-07T10:00:00Z\n", "2026-13-40T99:00:00Z", "\x00\xff", "1", "2026-12-07"} {
		f.Add([]byte(seed))
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, marker []byte) {
		store, err := NewFileStore(t.TempDir())
		require.NoError(t, err)
		dir := "2026/11/28/s1/"
		for _, name := range []string{"session.json", "000001.chunk"} {
			require.NoError(t, store.Put(t.Context(), dir+name, strings.NewReader("x"), 1))
		}
		require.NoError(t, os.WriteFile(filepath.Join(store.root, "2026", "11", "28", "s1"+retainSuffix), marker, 0o600))
		until, perr := time.Parse(time.RFC3339, strings.TrimSpace(string(marker)))
		n, err := DeleteRecording(t.Context(), store, dir, now)
		keys, lerr := store.List(t.Context(), dir)
		require.NoError(t, lerr)
		if perr == nil && !now.Before(until) {
			require.NoError(t, err)
			assert.Equal(t, 2, n)
			assert.Empty(t, keys)
			return
		}
		require.Error(t, err, "marker %q", marker)
		assert.Len(t, keys, 2, "a refused delete keeps every object (marker %q)", marker)
	})
}
