package recorder

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordChunks records a session of several small chunks and returns the
// directory in the file store that holds its objects.
func recordChunks(t *testing.T, h *harness, id string, lines int) string {
	t.Helper()
	s, err := h.rec.Open(ctxT(t), testMeta(id))
	require.NoError(t, err)
	for i := range lines {
		require.NoError(t, s.Output(0, fmt.Appendf(nil, "line %04d of the session output\r\n", i)))
	}
	require.NoError(t, s.Event(Event{Type: EventExec, Command: "cat /etc/shadow"}))
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0)}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, id)
	require.NoError(t, err)
	return filepath.Join(h.store.(*FileStore).root, filepath.FromSlash(src.dir))
}

func TestVerifyDetectsTampering(t *testing.T) {
	chunk := func(dir string, seq int) string { return filepath.Join(dir, chunkName(seq)) }
	cases := []struct {
		name       string
		tamper     func(t *testing.T, dir string)
		wantObject string
		wantWhat   string
	}{
		{"flipped byte in a payload", func(t *testing.T, dir string) {
			b, err := os.ReadFile(chunk(dir, 3))
			require.NoError(t, err)
			b[len(b)-10] ^= 0x01
			require.NoError(t, os.WriteFile(chunk(dir, 3), b, 0o600))
		}, "000003.chunk", "content differs from the manifest"},
		{"truncated chunk", func(t *testing.T, dir string) {
			info, err := os.Stat(chunk(dir, 4))
			require.NoError(t, err)
			require.NoError(t, os.Truncate(chunk(dir, 4), info.Size()-100))
		}, "000004.chunk", "truncated"},
		{"deleted chunk", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(chunk(dir, 2)))
		}, "000002.chunk", "missing from the store"},
		{"swapped chunks", func(t *testing.T, dir string) {
			require.NoError(t, os.Rename(chunk(dir, 2), chunk(dir, 2)+".x"))
			require.NoError(t, os.Rename(chunk(dir, 3), chunk(dir, 2)))
			require.NoError(t, os.Rename(chunk(dir, 2)+".x", chunk(dir, 3)))
		}, "000002.chunk", "holds chunk 3: chunks were reordered"},
		{"manifest re-signed with another key", func(t *testing.T, dir string) {
			body, err := os.ReadFile(filepath.Join(dir, manifestObject))
			require.NoError(t, err)
			sig, err := signManifest(testKey(t), body)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, sigObject), sig, 0o600))
		}, manifestObject, "signed by a foreign key"},
		{"manifest edited", func(t *testing.T, dir string) {
			p := filepath.Join(dir, manifestObject)
			body, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(body), `"exit_status": 0`, `"exit_status": 1`, 1)), 0o600))
		}, manifestObject, "signature does not match the manifest"},
		{"manifest deleted", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, manifestObject)))
		}, manifestObject, "the manifest was removed"},
		{"session.json altered", func(t *testing.T, dir string) {
			p := filepath.Join(dir, sessionObject)
			body, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(body), "svc-backup", "svc-bakcup", 1)), 0o600))
		}, sessionObject, "content differs from the manifest"},
		{"object added", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, chunkName(99)), []byte("x"), 0o600))
		}, "000099.chunk", "not named by the manifest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.ChunkSize = 1024 })
			dir := recordChunks(t, h, "s-tamper", 200)
			before := h.verify(t, "s-tamper")
			require.Equal(t, StatusIntact, before.Status, "before tampering: %s", before)
			require.Greater(t, before.Chunks, 5, "want several chunks to tamper with")

			tc.tamper(t, dir)
			rep := h.verify(t, "s-tamper")
			assert.Equal(t, StatusTampered, rep.Status, "report: %s", rep)
			require.NotEmpty(t, rep.Problems)
			assert.Equal(t, tc.wantObject, rep.Problems[0].Object, "report: %s", rep)
			assert.Contains(t, rep.Problems[0].What, tc.wantWhat, "report: %s", rep)
		})
	}
}

func TestVerifyRejectsForeignTrustedKey(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	recordChunks(t, h, "s-foreign", 10)
	src, err := FindSession(ctxT(t), h.store, "s-foreign")
	require.NoError(t, err)
	other := testKey(t).Public().(ed25519.PublicKey)
	rep, err := Verify(ctxT(t), src, other)
	require.NoError(t, err)
	assert.Equal(t, StatusTampered, rep.Status)
	assert.Contains(t, rep.String(), "manifest.json: signed by a foreign key")
}

// TestReportPending: for a session still uploading, objects absent from
// the store are expected and the verdict is pending, not tampered; once
// the index says stored they are tampering again, and an object present
// but altered is tampering whatever the session's state.
func TestReportPending(t *testing.T) {
	chunk := func(dir string, seq int) string { return filepath.Join(dir, chunkName(seq)) }
	cases := []struct {
		name   string
		state  State
		change func(t *testing.T, dir string)
		want   Status
	}{
		{"nothing uploaded yet", StateUploading, func(t *testing.T, dir string) {
			require.NoError(t, os.RemoveAll(dir))
		}, StatusPending},
		{"stored, then everything removed", StateStored, func(t *testing.T, dir string) {
			require.NoError(t, os.RemoveAll(dir))
		}, StatusTampered},
		{"the last chunks and the manifest not there yet: unsealed, as while live", StateUploading, func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, manifestObject)))
			require.NoError(t, os.Remove(filepath.Join(dir, sigObject)))
			for seq := 5; ; seq++ {
				if err := os.Remove(chunk(dir, seq)); os.IsNotExist(err) {
					break
				}
			}
		}, StatusUnsealed},
		{"a chunk missing and another altered", StateUploading, func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(chunk(dir, 2)))
			b, err := os.ReadFile(chunk(dir, 3))
			require.NoError(t, err)
			b[len(b)-10] ^= 0x01
			require.NoError(t, os.WriteFile(chunk(dir, 3), b, 0o600))
		}, StatusTampered},
		{"untouched", StateUploading, func(t *testing.T, dir string) {}, StatusIntact},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.ChunkSize = 1024 })
			dir := recordChunks(t, h, "s-pending", 200)
			// As the CLI does: the index names the session, the store need
			// not hold anything of it.
			src, err := FindSession(ctxT(t), h.store, "s-pending")
			require.NoError(t, err)
			tc.change(t, dir)
			rep, err := Verify(ctxT(t), src, h.key.Public().(ed25519.PublicKey))
			require.NoError(t, err)
			rep.Pending(tc.state)
			assert.Equal(t, tc.want, rep.Status, "report: %s", rep)
		})
	}
}
