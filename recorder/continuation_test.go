package recorder

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestContinuation: a replica dies with chunks of a live session still in
// its spool (the store was unreachable); a survivor seals what reached the
// store; when the replica comes back on its data_dir, its recovered chunks
// go beside the sealed recording as a signed continuation, the sealed
// manifest is kept, and verify and replay join the two.
func TestContinuation(t *testing.T) {
	cs := continuedSession(t, false)
	src, res, back := cs.src, cs.res, cs.back
	after, err := src.readSmall(ctxT(t), manifestObject, maxManifestSize)
	require.NoError(t, err)
	assert.Equal(t, cs.sealedBody, after, "the sealed manifest is never replaced")
	assert.Equal(t, []State{StateUploading, StateIncomplete}, back.states.of("s-cont"))
	assert.Empty(t, spoolEntries(t, back), "the continued session leaves the spool")

	rep := back.verify(t, "s-cont")
	require.Equal(t, StatusIncomplete, rep.Status, "%s", rep)
	require.NotNil(t, rep.Continuation, "%s", rep)
	assert.Equal(t, res.Chunks()+1, rep.Continuation.FirstSeq, "the continuation starts after the sealed chunks")
	assert.Equal(t, rep.Continuation.LastSeq, rep.Chunks, "verify counts the sealed chunks and the continuation's")
	assert.Contains(t, rep.Continuation.Reason, "continues the recording sealed in this replica's absence")
	assert.Contains(t, rep.String(), "continued by continuation/")
	var out bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &out, ReplayOptions{Format: FormatText}))
	assert.Contains(t, out.String(), "uploaded 0199")
	assert.Contains(t, out.String(), "spooled 0199", "replay joins the continuation")
	assert.Contains(t, out.String(), fmt.Sprintf("# chunks %d-%d are a continuation", rep.Continuation.FirstSeq, rep.Continuation.LastSeq))

	// Tampering with either part is caught.
	added := filepath.Join(cs.dir, "continuation", chunkName(99))
	require.NoError(t, os.WriteFile(added, []byte("added later\n"), 0o600))
	rep = back.verify(t, "s-cont")
	assert.Equal(t, StatusTampered, rep.Status)
	assert.Contains(t, rep.String(), "(continuation/"+chunkName(99)+"): not named by the manifest")
	require.NoError(t, os.Remove(added))
	cont := filepath.Join(cs.dir, "continuation", chunkName(rep.Continuation.LastSeq))
	info, err := os.Stat(cont)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(cont, info.Size()-5))
	rep = back.verify(t, "s-cont")
	assert.Equal(t, StatusTampered, rep.Status)
	assert.Contains(t, rep.String(), "(continuation/"+chunkName(rep.Continuation.LastSeq)+"): truncated")
	require.NoError(t, os.Remove(filepath.Join(cs.dir, chunkName(res.Chunks()))))
	rep = back.verify(t, "s-cont")
	assert.Contains(t, rep.String(), chunkName(res.Chunks())+"): missing from the store")
}

// continued is a session sealed by a survivor and continued by its
// replica come back.
type continued struct {
	src        Source
	dir        string // the session's directory in the file store
	key        ed25519.PrivateKey
	res        SealResult
	sealedBody []byte // the sealed manifest.json as the survivor wrote it
	back       *harness
}

// continuedSession records a session of which a replica uploads part, then
// keeps the rest in its spool (the store is down) and dies; a survivor
// seals what reached the store; the replica comes back on its spool.
// With ended set, the session ended (its spool sealed complete) before the
// replica died.
func continuedSession(t *testing.T, ended bool) continued {
	t.Helper()
	store := &switchStore{Store: fileStore(t)}
	cs := continued{key: testKey(t)}
	lostDir, backDir := t.TempDir(), t.TempDir()
	lost := newHarness(t, lostDir, store, cs.key, func(r *Recorder) { r.ChunkSize = 1024 })
	t.Cleanup(func() { store.down.Store(false) }) // runs first: lets the lost replica's harness shut down
	s, err := lost.rec.Open(ctxT(t), testMeta("s-cont"))
	require.NoError(t, err)
	write := func(what string, n int) {
		for i := range n {
			require.NoError(t, s.Output(0, fmt.Appendf(nil, "%s %04d\r\n", what, i)))
		}
	}
	write("uploaded", 200)
	time.Sleep(150 * time.Millisecond) // a few flushes: it is all in chunks
	lost.waitUploaded(t)
	store.down.Store(true)
	write("spooled", 200)
	if ended {
		require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0)}))
	}
	waitFor(t, func() bool { return metricValue(t, lost.rec.Metrics, "sallyport_recorder_upload_failures_total") > 0 },
		"the chunks after the outage stay in the spool: %s", lost.logs)
	time.Sleep(200 * time.Millisecond) // several flushes: everything written is in the spool
	copyTree(t, lost.rec.Config.SpoolDir(), filepath.Join(backDir, "spool"))

	cs.res, err = SealFromStore(ctxT(t), store.Store, cs.key, "s-cont", testMeta("s-cont").StartedAt, lostReason)
	require.NoError(t, err)
	require.True(t, cs.res.Sealed, "%+v", cs.res)
	cs.src, err = FindSession(ctxT(t), store.Store, "s-cont")
	require.NoError(t, err)
	cs.dir = filepath.Join(store.Store.(*FileStore).root, filepath.FromSlash(cs.src.dir))
	cs.sealedBody, err = cs.src.readSmall(ctxT(t), manifestObject, maxManifestSize)
	require.NoError(t, err)
	cs.back = newHarness(t, backDir, store.Store, cs.key, nil)
	cs.back.waitUploaded(t)
	return cs
}

// TestContinuationOfEndedSession: a session that ended, sealed complete in
// the spool but not stored when its replica died, is continued the same
// way: the survivor's seal is kept, and the rest with the end is beside it.
func TestContinuationOfEndedSession(t *testing.T) {
	cs := continuedSession(t, true)
	after, err := cs.src.readSmall(ctxT(t), manifestObject, maxManifestSize)
	require.NoError(t, err)
	assert.Equal(t, cs.sealedBody, after, "the sealed manifest is never replaced")
	rep := cs.back.verify(t, "s-cont")
	require.Equal(t, StatusIncomplete, rep.Status, "%s", rep)
	require.NotNil(t, rep.Continuation, "%s", rep)
	assert.Contains(t, rep.Continuation.Reason, "the replica's spool held the session sealed complete")
	var out bytes.Buffer
	require.NoError(t, Replay(ctxT(t), cs.src, &out, ReplayOptions{Format: FormatText}))
	assert.Contains(t, out.String(), "spooled 0199")
	assert.Contains(t, out.String(), "end: exit status 0", "the end event is in the continuation")
}

// TestContinuationNothingNew: when every recovered chunk is in the sealed
// recording, nothing is uploaded, and the index hears of both.
func TestContinuationNothingNew(t *testing.T) {
	store := &switchStore{Store: fileStore(t)}
	key := testKey(t)
	lostDir, backDir := t.TempDir(), t.TempDir()
	lost := newHarness(t, lostDir, store, key, nil)
	s, err := lost.rec.Open(ctxT(t), testMeta("s-same"))
	require.NoError(t, err)
	require.NoError(t, s.Output(0, []byte("all of it uploaded\r\n")))
	time.Sleep(150 * time.Millisecond)
	lost.waitUploaded(t)
	copyTree(t, lost.rec.Config.SpoolDir(), filepath.Join(backDir, "spool"))
	store.down.Store(true) // the lost replica's own shutdown must not seal it
	_, err = SealFromStore(ctxT(t), store.Store, key, "s-same", testMeta("s-same").StartedAt, lostReason)
	require.NoError(t, err)

	var reasons []string
	back := newHarness(t, backDir, store.Store, key, func(r *Recorder) {
		r.OnState = func(c StateChange) { reasons = append(reasons, string(c.State)+": "+c.Reason) }
	})
	back.waitUploaded(t)
	keys, err := store.Store.List(ctxT(t), "")
	require.NoError(t, err)
	for _, k := range keys {
		assert.NotContains(t, k, continuationDir, "nothing to continue")
	}
	require.Len(t, reasons, 2)
	assert.Contains(t, reasons[1], lostReason)
	assert.Contains(t, reasons[1], "the lost replica came back, with nothing past the sealed chunks")
	assert.Contains(t, reasons[1], "recovered at")
	assert.Equal(t, StatusIncomplete, back.verify(t, "s-same").Status)
	store.down.Store(false)
}

// FuzzParseContinuation: whatever a store holds as continuation/manifest.json,
// parsing it either fails or yields a continuation that re-encodes to one
// that parses the same.
func FuzzParseContinuation(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	f.Add([]byte(`{"sallyport":"continuation/1","session":"s","continues":{"manifest_sha256":"` + sum + `","seq":3,"sha256":"` + sum +
		`"},"state":"incomplete","started_at":"2026-11-28T10:00:00Z","ended_at":"2026-11-28T10:01:00Z","signer":"x","objects":[{"name":"000004.chunk","seq":4,"size":10,"sha256":"` +
		sum + `"}],"streams":[]}`))
	f.Add([]byte(`{"sallyport":"continuation/1","continues":{"seq":-1}}`))
	f.Add([]byte(`{"sallyport":"manifest/1","objects":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseContinuation(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(c)
		require.NoError(t, err)
		c2, err := ParseContinuation(again)
		require.NoError(t, err, "a parsed continuation re-encodes to a valid one")
		assert.Equal(t, c.Objects, c2.Objects)
		for i, o := range c.Objects {
			assert.Equal(t, c.Continues.Seq+1+i, o.Seq)
		}
	})
}
