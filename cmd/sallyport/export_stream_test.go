package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/sessionid"
)

// recordExecSession writes an exec channel (a bash -s script, its output
// with binary bytes, its stderr) through the recorder serve builds from the
// env's config, and returns the session id once it is stored.
func recordExecSession(t *testing.T, e *env, script, out []byte) string {
	t.Helper()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	rec, err := newRecorder(cfg, testLogger(t), newMetrics())
	require.NoError(t, err)
	ctx := context.Background()
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	defer ap.Close()
	rec.OnState = indexSessions(ap.store, testLogger(t))
	require.NoError(t, rec.Start(ctx))
	s, err := rec.Open(ctx, recorderMetaForTest(sessionid.New(time.Now())))
	require.NoError(t, err)
	require.NoError(t, s.Data(0, "stdin", script))
	require.NoError(t, s.Data(0, "stdout", out))
	require.NoError(t, s.Data(0, "stderr", []byte("warning: disk 91% full\n")))
	zero := 0
	require.NoError(t, s.EndExec(0, &zero, ""))
	require.NoError(t, s.Close(ctx, endForTest(&zero)))
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, rec.Shutdown(sctx))
	return s.Meta().ID
}

// TestCLIExportStream: recording export --stream writes one exec stream's
// exact bytes to a file or standard output, --help names the streams, and
// an unknown stream is an error naming those the recording has.
func TestCLIExportStream(t *testing.T) {
	e := newEnv(t, "")
	script := []byte("set -e\ntar czf - /etc/app | base64\n")
	out := append([]byte("H4sIAAAA\n"), 0x00, 0xff, 0x1f, 0x8b, '\n')
	id := recordExecSession(t, e, script, out)

	file := filepath.Join(e.dir, "stdout.bin")
	e.ok("recording", "export", id, "--stream", "exec-0.stdout", "-o", file)
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, out, got, "the file holds stdout byte for byte")
	assert.Equal(t, string(script), e.ok("recording", "export", id, "--stream", "exec-0.stdin", "-o", "-"), "-o - writes to standard output")

	text := e.ok("replay", id, "--format", "text")
	sum := sha256.Sum256(out)
	assert.Contains(t, text, "[ch0 stdin] tar czf - /etc/app | base64\n")
	assert.Contains(t, text, "[ch0 stderr] warning: disk 91% full\n")
	assert.Contains(t, text, "stdout 14 bytes sha256 "+hex.EncodeToString(sum[:]), "exec_end's hash matches the export")

	_, errOut, code := e.run("", "recording", "export", id, "--stream", "exec-3.stdout", "-o", filepath.Join(e.dir, "x"))
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "exec streams: exec-0.stdin, exec-0.stdout, exec-0.stderr")
	_, err = os.Stat(filepath.Join(e.dir, "x"))
	assert.True(t, os.IsNotExist(err), "no file is left for a stream that is not there")

	help := e.ok("recording", "export", "--help")
	for _, want := range []string{"exec-<channel>.stdin", "exec-<channel>.stdout", "exec-<channel>.stderr", "--stream exec-0.stdout -o - | sha256sum"} {
		assert.Contains(t, help, want)
	}
}
