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

// copyGolden copies the golden recording into a fresh directory.
func copyGolden(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "rec")
	require.NoError(t, os.MkdirAll(dst, 0o755))
	ents, err := os.ReadDir(filepath.Join(goldenDir, "s-golden"))
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(goldenDir, "s-golden", e.Name()))
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

// TestDocumentedStreamRecipe runs the Python stream reader from
// docs/recordings.md on a compressed recording and on the golden (chunk/1)
// one: it prints exactly what ExportCast writes.
func TestDocumentedStreamRecipe(t *testing.T) {
	python := lookPathOrSkip(t, "python3")
	script := filepath.Join(t.TempDir(), "cat_stream.py")
	require.NoError(t, os.WriteFile(script, []byte(docBlock(t, "python", "gzip.decompress")), 0o755))

	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.ChunkSize = 16 << 10 })
	s, err := h.rec.Open(ctxT(t), testMeta("s-recipe"))
	require.NoError(t, err)
	require.NoError(t, s.Output(0, termSample(100<<10)))
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	fresh, err := FindSession(ctxT(t), h.store, "s-recipe")
	require.NoError(t, err)
	golden, err := DirSource(copyGolden(t))
	require.NoError(t, err)

	for name, src := range map[string]Source{"chunk/2": fresh, "chunk/1 golden": golden} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(src.store.(*FileStore).root, filepath.FromSlash(src.dir))
			var want strings.Builder
			require.NoError(t, ExportCast(ctxT(t), src, &want, 0))
			out, err := exec.Command(python, script, dir, "pty-0.cast").Output()
			require.NoError(t, err)
			assert.Equal(t, want.String(), string(out))
		})
	}
}
