package recorder

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const lostReason = "replica host-a-1 stopped renewing its lease at 2026-11-28T10:05:00Z and did not come back"

// storedUnsealed records a session of five or more chunks to a file store
// and removes its manifest and signature: the store then holds what a
// replica that died while the session was live had uploaded.
func storedUnsealed(t *testing.T, id string) (*harness, Source) {
	t.Helper()
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.ChunkSize = 1024 })
	s, err := h.rec.Open(ctxT(t), testMeta(id))
	require.NoError(t, err)
	for i := range 400 {
		require.NoError(t, s.Output(0, fmt.Appendf(nil, "line %04d of the lost session\r\n", i)))
	}
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0)}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, id)
	require.NoError(t, err)
	for _, name := range []string{manifestObject, sigObject} {
		require.NoError(t, os.Remove(storePath(t, h, src, name)))
	}
	names, err := src.chainOrder(ctxT(t), nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(names), 5, "the session needs several chunks")
	return h, src
}

func storePath(t *testing.T, h *harness, src Source, name string) string {
	t.Helper()
	p, err := h.store.(*FileStore).path(src.dir + name)
	require.NoError(t, err)
	return p
}

func sealT(t *testing.T, h *harness, src Source) SealResult {
	t.Helper()
	res, err := SealFromStore(ctxT(t), h.store, h.key, src.id, testMeta(src.id).StartedAt, lostReason)
	require.NoError(t, err)
	return res
}

// TestSealFromStore: a survivor seals what reached the store as an
// incomplete, signed recording that verifies and replays; a second run
// changes nothing.
func TestSealFromStore(t *testing.T) {
	h, src := storedUnsealed(t, "s-lost")
	names, err := src.chainOrder(ctxT(t), nil)
	require.NoError(t, err)

	res := sealT(t, h, src)
	require.True(t, res.Sealed)
	assert.Equal(t, len(names), res.Chunks(), "every chunk of the unbroken chain is sealed")
	assert.Empty(t, res.Beyond)
	rep := h.verify(t, "s-lost")
	assert.Equal(t, StatusIncomplete, rep.Status, "%s", rep)
	assert.Contains(t, rep.Reason, lostReason)
	assert.Contains(t, rep.Reason, fmt.Sprintf("sealed from the recording store with the %d chunks that reached it", len(names)))
	assert.Equal(t, Fingerprint(h.key.Public().(ed25519.PublicKey)), rep.Signer)
	var out bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &out, ReplayOptions{Format: FormatText}))
	assert.Contains(t, out.String(), "line 0399 of the lost session")

	body, err := os.ReadFile(storePath(t, h, src, manifestObject))
	require.NoError(t, err)
	again, err := SealFromStore(ctxT(t), h.store, testKey(t), src.id, testMeta(src.id).StartedAt, "another sealer")
	require.NoError(t, err)
	assert.True(t, again.Already)
	assert.False(t, again.Sealed)
	after, err := os.ReadFile(storePath(t, h, src, manifestObject))
	require.NoError(t, err)
	assert.Equal(t, body, after, "a second seal, even with another key, leaves the signed manifest as it is")

	require.NoError(t, os.Remove(storePath(t, h, src, names[len(names)-1])))
	rep = h.verify(t, "s-lost")
	assert.Equal(t, StatusTampered, rep.Status, "deleting the last sealed chunk is caught: %s", rep)
}

// TestSealFromStoreBrokenChain: only the unbroken prefix is sealed; the
// chunks past a damaged or missing one are reported, not covered.
func TestSealFromStoreBrokenChain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string) error
		brk    string
	}{
		{"cut", func(p string) error {
			info, err := os.Stat(p)
			if err == nil {
				err = os.Truncate(p, info.Size()-10)
			}
			return err
		}, "chunk 3 is damaged or does not continue the chain"},
		{"deleted", os.Remove, "chunk 3 is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, src := storedUnsealed(t, "s-broken")
			names, err := src.chainOrder(ctxT(t), nil)
			require.NoError(t, err)
			require.NoError(t, tc.damage(storePath(t, h, src, chunkName(3))))
			res := sealT(t, h, src)
			require.True(t, res.Sealed)
			assert.Equal(t, 2, res.Chunks(), "chunks 1-2 form the unbroken chain")
			want := names[3:]
			if tc.name == "cut" {
				want = names[2:]
			}
			assert.Equal(t, want, res.Beyond)
			assert.Equal(t, tc.brk, res.Break)
			assert.Contains(t, res.Manifest.Reason, fmt.Sprintf("%s: %d chunk objects in the store, %s to %s, are not covered",
				tc.brk, len(want), want[0], want[len(want)-1]))
			rep := h.verify(t, "s-broken")
			assert.Equal(t, StatusTampered, rep.Status, "objects the seal does not cover are reported: %s", rep)
			assert.Contains(t, rep.String(), want[len(want)-1]+"): not named by the manifest")
		})
	}
}

// TestSealFromStoreNothingStored: a session of which nothing reached the
// store is not sealed: there is nothing to sign.
func TestSealFromStoreNothingStored(t *testing.T) {
	store := fileStore(t)
	res, err := SealFromStore(ctxT(t), store, testKey(t), "s-none", testMeta("s-none").StartedAt, lostReason)
	require.NoError(t, err)
	assert.True(t, res.NothingStored)
	keys, err := store.List(ctxT(t), "")
	require.NoError(t, err)
	assert.Empty(t, keys)
}

// switchStore fails every Put while down is set, as an unreachable store.
type switchStore struct {
	Store
	down atomic.Bool
}

func (s *switchStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if s.down.Load() {
		return errors.New("store unreachable")
	}
	return s.Store.Put(ctx, key, r, size)
}

// copyTree copies a spool directory as a crashed process left it.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	}))
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, cond func() bool, what string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 10*time.Millisecond, append([]any{what}, args...)...)
}
