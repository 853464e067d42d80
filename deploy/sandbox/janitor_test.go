package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A sandbox dir whose process died without Stop is removed by the next
// start; dirs of live processes and dirs without an owner are kept.
func TestStaleSandboxDirsAreSwept(t *testing.T) {
	base := t.TempDir()
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	me, ok := readProc(os.Getpid())
	require.True(t, ok, "read own /proc entry")

	tests := []struct {
		name     string
		dir      string
		owner    string // "" writes no owner file
		wantKept bool
	}{
		{name: "owner exited", dir: "sallyport-postgres-1", owner: fmt.Sprintf("%d 1\n", dead.Process.Pid)},
		{name: "pid reused by another process", dir: "sallyport-sshd-2", owner: fmt.Sprintf("%d %d\n", me.pid, me.start+1)},
		{name: "owner alive", dir: "sallyport-mariadb-3", owner: fmt.Sprintf("%d %d\n", me.pid, me.start), wantKept: true},
		{name: "no owner file (cache or being made)", dir: "sallyport-sandbox-cache-0", wantKept: true},
		{name: "not a sandbox dir", dir: "someone-else", owner: fmt.Sprintf("%d 1\n", dead.Process.Pid), wantKept: true},
	}
	for _, tt := range tests {
		require.NoError(t, os.Mkdir(filepath.Join(base, tt.dir), 0o755))
		if tt.owner != "" {
			require.NoError(t, os.WriteFile(filepath.Join(base, tt.dir, ownerFile), []byte(tt.owner), 0o644))
		}
	}
	fresh, err := makeBaseDir(base, "sallyport-test-*")
	require.NoError(t, err)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := os.Stat(filepath.Join(base, tt.dir))
			assert.Equal(t, tt.wantKept, err == nil, "%s after a start: got stat error %v, want kept %v", tt.dir, err, tt.wantKept)
		})
	}
	t.Run("new dir is marked with its owner", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(fresh, ownerFile))
		require.NoError(t, err)
		assert.True(t, ownerAlive(string(b)), "owner file %q: got a dead owner, want this process", b)
	})
}
