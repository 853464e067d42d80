package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIExportToStdout: `-o -` writes the cast to standard output, for a
// pipe into asciinema or gzip, and leaves no file named "-" behind.
func TestCLIExportToStdout(t *testing.T) {
	e := newEnv(t, "")
	id := recordSession(t, e)
	out := e.ok("recording", "export", id, "-o", "-")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Greater(t, len(lines), 1, "a header and events on stdout, got %q", out)
	assert.Contains(t, lines[0], `"version":2`)
	assert.Contains(t, out, "hello from the recording")
	_, err := os.Stat(filepath.Join(e.dir, "-"))
	assert.True(t, os.IsNotExist(err), "export wrote a file named -: %v", err)

	file := filepath.Join(e.dir, "s.cast")
	e.ok("recording", "export", id, "-o", file)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, string(data), out, "stdout holds exactly what the file would")
}
