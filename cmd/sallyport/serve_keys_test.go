package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/recorder"
)

// sharedRegistry is a fresh database on a sandbox PostgreSQL: the config
// block that names it and the environment that holds its DSN.
func sharedRegistry(t *testing.T, name string) (block string, env []string) {
	t.Helper()
	pg := sandbox.PostgresT(t)
	db := fmt.Sprintf("%s_%d", name, time.Now().UnixNano())
	require.NoError(t, pg.CreateDatabase(t.Context(), db))
	return "registry: {driver: postgres, dsn_env: TEST_REGISTRY_DSN}", []string{"TEST_REGISTRY_DSN=" + pg.DSN(db)}
}

// TestServeRefusesAnotherReplicaKey: a second serve on the same registry
// with its own SSH user CA or recording key exits non-zero, naming the
// purpose, both fingerprints and the config key to set.
func TestServeRefusesAnotherReplicaKey(t *testing.T) {
	block, dsn := sharedRegistry(t, "keys")
	first := newEnv(t, block)
	first.extraEnv = dsn
	revServe(t, first)
	keyFP := func(path string) string {
		key, err := ca.LoadOrCreateKey(path)
		require.NoError(t, err)
		return recorder.Fingerprint(key.Public().(ed25519.PublicKey))
	}
	firstCA := filepath.Join(first.dir, "data", "keys", "ssh_user_ca")
	cfg, err := LoadConfig(first.config)
	require.NoError(t, err)
	firstRec := recordingKeyPath(cfg)

	tests := []struct {
		name, extra, purpose, configKey, recorded string
	}{
		{"ssh user ca", "", "ssh-user-ca", "ca.ssh_user_key_file", keyFP(firstCA)},
		{"recording key", fmt.Sprintf("ca: {ssh_user_key_file: %q}", firstCA), "recording", "recordings.signing_key_file", keyFP(firstRec)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			second := newEnv(t, block+"\n"+tc.extra)
			second.extraEnv = dsn
			out, code := serveUntilExit(t, second, 20*time.Second)
			assert.NotEqual(t, 0, code, "serve with another key must not start: %s", out)
			for _, want := range []string{tc.purpose, tc.configKey, tc.recorded} {
				assert.Contains(t, out, want)
			}
			assert.Regexp(t, tc.purpose+` key SHA256:\S+`, out, "the refused key's fingerprint")
		})
	}
}

// serveUntilExit runs serve and returns its output and exit code; serve
// still running after timeout fails the test.
func serveUntilExit(t *testing.T, e *env, timeout time.Duration) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--config", e.config, "serve")
	cmd.Env = append(os.Environ(), e.extraEnv...)
	out, _ := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "serve still running after %s: %s", timeout, out)
	return string(out), cmd.ProcessState.ExitCode()
}
