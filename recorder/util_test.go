package recorder

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// lookPathOrSkip finds a program; missing, it fails under CI and skips
// loudly elsewhere.
func lookPathOrSkip(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (make deps): %v", name, err)
		}
		t.Skipf("SKIPPING: %s is not installed; make deps installs it", name)
	}
	return p
}

func runCmd(bin string, args ...string) ([]byte, error) {
	return exec.Command(bin, args...).CombinedOutput()
}
