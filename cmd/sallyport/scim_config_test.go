package main

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSCIMConfigRefused: a scim block serve cannot run with is a config
// error (exit 2) that names the key, never the token.
func TestSCIMConfigRefused(t *testing.T) {
	for _, c := range []struct {
		name, block, token, want string
	}{
		{"a group mapped to no role", `scim: {token_env: TEST_SCIM_TOKEN, groups: {"Ops": root}}`, scimToken, `scim.groups["Ops"] "root": want owner, auditor or admin`},
		{"groups without a token", `scim: {groups: {"Ops": admin}}`, "", "scim.groups: set scim.token_env too"},
		{"an empty token variable", `scim: {token_env: TEST_SCIM_TOKEN}`, "", "environment variable TEST_SCIM_TOKEN is empty"},
		{"a short token after a good one", `scim: {token_env: TEST_SCIM_TOKEN}`, scimToken + ",short-secret-xyz", "token 2 in TEST_SCIM_TOKEN is shorter than 24 characters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.block)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "--config", e.config, "serve")
			cmd.Env = append(cmd.Environ(), "TEST_SCIM_TOKEN="+c.token)
			var logs bytes.Buffer
			cmd.Stderr = &logs
			require.Error(t, cmd.Run(), "serve must not start")
			assert.Equal(t, exitUsage, cmd.ProcessState.ExitCode(), "logs: %s", &logs)
			assert.Contains(t, logs.String(), c.want)
			assert.NotContains(t, logs.String(), "short-secret-xyz", "a token never reaches the log")
			if c.token != "" {
				assert.NotContains(t, logs.String(), scimToken)
			}
		})
	}
}

// TestSCIMOffByDefault: without scim.token_env, /scim/v2 is not served,
// whatever token is presented.
func TestSCIMOffByDefault(t *testing.T) {
	e := newEnv(t, "")
	base, _ := revServe(t, e)
	req, err := http.NewRequest("GET", base+"/scim/v2/Users", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+scimToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.False(t, strings.Contains(resp.Header.Get("Content-Type"), "scim"))
}
