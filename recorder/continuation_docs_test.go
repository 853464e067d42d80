package recorder

import (
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocumentedContinuationRecipe runs the hand check of a continuation
// from docs/recordings.md, with ssh-keygen and Python as an auditor without
// sallyport would, on a continued recording and on damaged copies of it.
func TestDocumentedContinuationRecipe(t *testing.T) {
	python := lookPathOrSkip(t, "python3")
	lookPathOrSkip(t, "ssh-keygen")
	script := filepath.Join(t.TempDir(), "verify_continuation.py")
	require.NoError(t, os.WriteFile(script, []byte(docBlock(t, "python", "continues another manifest")), 0o755))
	shell := docBlock(t, "sh", "verify_continuation.py")
	shell = strings.ReplaceAll(shell, "python3 verify_continuation.py", python+" "+script)
	cs := continuedSession(t, false)

	for _, tc := range []struct {
		name     string
		damage   func(dir string)
		wantOK   bool
		wantText string
	}{
		{"as stored", func(string) {}, true, "continuation of chunks "},
		{"cut chunk", func(dir string) {
			p := filepath.Join(dir, "continuation", chunkName(cs.res.Chunks()+1))
			info, _ := os.Stat(p)
			os.Truncate(p, info.Size()-3)
		}, false, "continuation/" + chunkName(cs.res.Chunks()+1) + ": "},
		{"other sealed manifest", func(dir string) {
			p := filepath.Join(dir, "manifest.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, ' '), 0o644)
		}, false, "continues another manifest.json"},
		{"edited continuation manifest", func(dir string) {
			p := filepath.Join(dir, "continuation", "manifest.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), "recovered at", "recovered on", 1)), 0o644)
		}, false, "Could not verify signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rec")
			copyTree(t, cs.dir, dir)
			tc.damage(dir)
			work := t.TempDir()
			pub := PublicKeyLine(cs.key.Public().(ed25519.PublicKey))
			require.NoError(t, os.WriteFile(filepath.Join(work, "recording.pub"), []byte(pub+"\n"), 0o644))
			allowed := "echo \"sallyport $(cat recording.pub)\" > allowed_signers\n"
			cmd := exec.Command("sh", "-e", "-c", allowed+strings.ReplaceAll(shell, "DIR", dir))
			cmd.Dir = work
			out, err := cmd.CombinedOutput()
			if tc.wantOK {
				assert.NoError(t, err, "recipe: %s", out)
			} else {
				assert.Error(t, err, "recipe accepted a damaged continuation: %s", out)
			}
			assert.Contains(t, string(out), tc.wantText)
		})
	}
}
