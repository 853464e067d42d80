package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
// with a key of its own for any key replicas share exits non-zero, naming
// the purpose, both fingerprints and the config key to set. Each case
// shares the keys before it, so the refusal is about its key alone.
func TestServeRefusesAnotherReplicaKey(t *testing.T) {
	block, dsn := sharedRegistry(t, "keys")
	first := newEnv(t, block)
	first.extraEnv = dsn
	revServe(t, first)
	cfg, err := LoadConfig(first.config)
	require.NoError(t, err)
	keyFP := func(path string) string {
		key, err := ca.LoadOrCreateKey(path)
		require.NoError(t, err)
		return recorder.Fingerprint(key.Public().(ed25519.PublicKey))
	}

	keys := []struct {
		name, purpose, configKey, path string
	}{
		{"ssh user ca", "ssh-user-ca", "ca.ssh_user_key_file", filepath.Join(first.dir, "data", "keys", "ssh_user_ca")},
		{"recording key", "recording", "recordings.signing_key_file", recordingKeyPath(cfg)},
		{"ssh host key", "ssh-host", "ssh.host_key_file", filepath.Join(first.dir, "data", "keys", "ssh_host_ed25519_key")},
		{"token key", "token", "tokens.signing_key_file", filepath.Join(first.dir, "data", "keys", "token.key")},
		{"console cookie key", "web-session", "web.session_key_file", filepath.Join(first.dir, "data", "keys", "web-session.key")},
	}
	for i, tc := range keys {
		t.Run(tc.name, func(t *testing.T) {
			second := newEnv(t, block)
			second.extraEnv = dsn
			for _, shared := range keys[:i] {
				setConfigKey(t, second.config, shared.configKey, shared.path)
			}
			out, code := serveUntilExit(t, second, 20*time.Second)
			assert.NotEqual(t, 0, code, "serve with another key must not start: %s", out)
			for _, want := range []string{tc.purpose, tc.configKey, keyFP(tc.path)} {
				assert.Contains(t, out, want)
			}
			assert.Regexp(t, tc.purpose+` key SHA256:\S+`, out, "the refused key's fingerprint")
		})
	}
	t.Run("all shared", func(t *testing.T) {
		second := &keyedReplica{env: newEnv(t, block), name: "second", webPort: freePort(t)}
		second.extraEnv = dsn
		data, err := os.ReadFile(second.config)
		require.NoError(t, err)
		data = []byte(strings.Replace(string(data), `web: {listen: "127.0.0.1:0"}`, fmt.Sprintf(`web: {listen: "127.0.0.1:%d"}`, second.webPort), 1))
		require.NoError(t, os.WriteFile(second.config, data, 0o600))
		for _, shared := range keys {
			setConfigKey(t, second.config, shared.configKey, shared.path)
		}
		second.start(t)
	})
}

// setConfigKey sets block.key to value in a config written from testConfig:
// first in the block's flow mapping when the file has one, else in a new
// block.
func setConfigKey(t *testing.T, config, dotted, value string) {
	t.Helper()
	data, err := os.ReadFile(config)
	require.NoError(t, err)
	block, key, _ := strings.Cut(dotted, ".")
	text, entry := string(data), fmt.Sprintf("%s: %q", key, value)
	if strings.Contains(text, "\n"+block+": {") {
		text = strings.Replace(text, "\n"+block+": {", "\n"+block+": {"+entry+", ", 1)
	} else {
		text += fmt.Sprintf("%s: {%s}\n", block, entry)
	}
	require.NoError(t, os.WriteFile(config, []byte(text), 0o600))
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
