package recorder

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docBlock returns the first fenced block of the given language that
// contains marker in docs/recordings.md.
func docBlock(t *testing.T, lang, marker string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/recordings.md")
	require.NoError(t, err)
	for _, part := range strings.Split(string(doc), "```"+lang+"\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("docs/recordings.md has no %s block with %q", lang, marker)
	return ""
}

// copyGolden copies the chunk/1 golden recording into a fresh directory.
func copyGolden(t *testing.T) string { return copyGoldenDir(t, goldens[0]) }

// copyGoldenDir copies a golden recording into a fresh directory.
func copyGoldenDir(t *testing.T, g goldenRecording) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "rec")
	require.NoError(t, os.MkdirAll(dst, 0o755))
	ents, err := os.ReadDir(filepath.Join(g.dir, g.id))
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(g.dir, g.id, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

// TestDocumentedVerificationRecipe runs the shell and Python recipe from
// docs/recordings.md, as an auditor without sallyport would.
func TestDocumentedVerificationRecipe(t *testing.T) {
	python := lookPathOrSkip(t, "python3")
	lookPathOrSkip(t, "ssh-keygen")
	script := filepath.Join(t.TempDir(), "verify_recording.py")
	require.NoError(t, os.WriteFile(script, []byte(docBlock(t, "python", "hashlib")), 0o755))
	shell := docBlock(t, "sh", "ssh-keygen -Y verify")
	shell = strings.ReplaceAll(shell, "python3 verify_recording.py", python+" "+script)

	cases := []struct {
		name     string
		tamper   func(dir string)
		wantOK   bool
		wantText string
	}{
		{"intact", func(string) {}, true, "intact"},
		{"flipped byte", func(dir string) {
			p := filepath.Join(dir, "000002.chunk")
			b, _ := os.ReadFile(p)
			b[len(b)-3] ^= 1
			os.WriteFile(p, b, 0o644)
		}, false, "000002.chunk: 470 bytes sha256"},
		{"edited manifest", func(dir string) {
			p := filepath.Join(dir, "manifest.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"exit_status": 0`, `"exit_status": 1`, 1)), 0o644)
		}, false, "Could not verify signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyGolden(t)
			tc.tamper(dir)
			work := t.TempDir()
			pub, err := os.ReadFile(filepath.Join(goldenDir, "public_key"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(work, "recording.pub"), pub, 0o644))
			cmd := exec.Command("sh", "-e", "-c", strings.ReplaceAll(shell, "DIR", dir))
			cmd.Dir = work
			out, err := cmd.CombinedOutput()
			if tc.wantOK {
				assert.NoError(t, err, "recipe: %s", out)
			} else {
				assert.Error(t, err, "recipe accepted a tampered recording: %s", out)
			}
			assert.Contains(t, string(out), tc.wantText)
		})
	}
}

// TestDocumentedStreamRecipe runs the shell stream reader from
// docs/recordings.md, with the real zstd and gzip tools, on a fresh
// (zstd) recording and on the gzip and chunk/1 golden ones: it prints
// exactly what ExportCast writes. A damaged zstd payload stops it with an
// error instead of printing a stream with a hole.
func TestDocumentedStreamRecipe(t *testing.T) {
	lookPathOrSkip(t, "zstd")
	lookPathOrSkip(t, "gzip")
	recipe := docBlock(t, "sh", "zstd -dcq")

	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.ChunkSize = 16 << 10 })
	s, err := h.rec.Open(ctxT(t), testMeta("s-recipe"))
	require.NoError(t, err)
	output := termSample(100 << 10)
	for i := 0; i < len(output); i += relayRead {
		require.NoError(t, s.Output(0, output[i:min(i+relayRead, len(output))]))
	}
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	fresh, err := FindSession(ctxT(t), h.store, "s-recipe")
	require.NoError(t, err)
	freshDir := filepath.Join(h.store.(*FileStore).root, filepath.FromSlash(fresh.dir))
	require.Equal(t, encodingZstd, readStoredChunks(t, freshDir)[0].hdr.Encoding, "new chunks are zstd")

	dirs := map[string]string{"chunk/2 zstd": freshDir}
	for _, g := range goldens {
		dirs[g.format+" golden"] = copyGoldenDir(t, g)
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			src, err := DirSource(dir)
			require.NoError(t, err)
			var want strings.Builder
			require.NoError(t, ExportCast(ctxT(t), src, &want, 0))
			out, err := runRecipe(t, recipe, dir)
			require.NoError(t, err, "recipe: %s", out)
			cast, err := os.ReadFile(filepath.Join(dir, "session.cast"))
			require.NoError(t, err)
			assert.Equal(t, want.String(), string(cast))
		})
	}

	t.Run("damaged zstd payload", func(t *testing.T) {
		p := filepath.Join(freshDir, chunkName(2)) // a pty-0.cast chunk, as chunk 1
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		b[len(b)-100] ^= 0x40 // in the payload
		require.NoError(t, os.WriteFile(p, b, 0o600))
		out, err := runRecipe(t, recipe, freshDir)
		assert.Error(t, err, "the recipe printed a damaged stream: %s", out)
	})
}

// runRecipe runs a shell recipe from the docs in dir, as an auditor would.
func runRecipe(t *testing.T, recipe, dir string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", recipe)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}
