package main

import (
	"os"
	"slices"
	"strings"
)

// SCIMConfig turns on the SCIM 2.0 service provider under /scim/v2/ on the
// web listener (docs/scim.md).
type SCIMConfig struct {
	// TokenEnv names the environment variable holding the bearer token the
	// identity provider presents, or several separated by commas while one
	// is rotated. Empty: SCIM is off (/scim/v2 answers 404).
	TokenEnv string `yaml:"token_env"`
	// Groups maps a group's display name to the role its members get:
	// owner, auditor or admin. Empty: groups give no roles.
	Groups map[string]string `yaml:"groups"`
}

// minSCIMTokenLen refuses tokens short enough to guess.
const minSCIMTokenLen = 24

var scimRoles = []string{"owner", "auditor", "admin"}

// validate checks the block's shape; the token itself is read by serve.
func (s SCIMConfig) validate(add func(string, ...any)) {
	if s.TokenEnv == "" && len(s.Groups) > 0 {
		add("scim.groups: set scim.token_env too, or SCIM is off")
	}
	for name, role := range s.Groups {
		if strings.TrimSpace(name) == "" {
			add("scim.groups: a group display name is empty")
		}
		if !slices.Contains(scimRoles, role) {
			add("scim.groups[%q] %q: want owner, auditor or admin", name, role)
		}
	}
}

// scimTokens reads the bearer tokens from the environment: comma-separated,
// each at least minSCIMTokenLen characters. The message never shows one.
func (s SCIMConfig) scimTokens() ([]string, error) {
	raw := os.Getenv(s.TokenEnv)
	if strings.TrimSpace(raw) == "" {
		return nil, configErrorf("scim.token_env: environment variable %s is empty; set it to the bearer token the identity provider presents", s.TokenEnv)
	}
	var tokens []string
	for i, t := range strings.Split(raw, ",") {
		t = strings.TrimSpace(t)
		if len(t) < minSCIMTokenLen {
			return nil, configErrorf("scim.token_env: token %d in %s is shorter than %d characters; use a long random one (openssl rand -hex 32)", i+1, s.TokenEnv, minSCIMTokenLen)
		}
		tokens = append(tokens, t)
	}
	return tokens, nil
}
