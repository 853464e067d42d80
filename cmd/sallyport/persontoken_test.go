package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIPersonTokenIssue: token issue takes an identity or --person, not
// both, and mints person tokens only for active people of the registry.
func TestCLIPersonTokenIssue(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)
	out := e.ok("token", "issue", "--person", "carol@example.com", "--ttl", "15m")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, "token issue prints the token alone")
	assert.True(t, strings.HasPrefix(lines[0], "spt_"), "got %q, want a spt_ token", lines[0])
	e.ok("iga", "offboard", "bob@example.com")

	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"identity and person", []string{"ci-deploy", "--person", "carol@example.com", "--ttl", "15m"}, 2, "IDENTITY or --person EMAIL, not both"},
		{"neither", []string{"--ttl", "15m"}, 2, "IDENTITY or --person EMAIL"},
		{"two identities", []string{"ci-deploy", "svc-backup", "--ttl", "15m"}, 2, "IDENTITY or --person EMAIL"},
		{"no ttl", []string{"--person", "carol@example.com"}, 2, "--ttl"},
		{"unknown person", []string{"--person", "mallory@example.com", "--ttl", "15m"}, 1, "no person mallory@example.com"},
		{"an identity given as a person", []string{"--person", "ci-deploy", "--ttl", "15m"}, 1, "no person ci-deploy"},
		{"offboarded person", []string{"--person", "bob@example.com", "--ttl", "15m"}, 1, "bob@example.com is inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := e.run("", append([]string{"token", "issue"}, tt.args...)...)
			assert.Equal(t, tt.code, code, "stderr %s", errOut)
			assert.Contains(t, errOut, tt.says)
			assert.Empty(t, out, "a refusal printed a token")
		})
	}
}
