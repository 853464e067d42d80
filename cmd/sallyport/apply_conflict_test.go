package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decisionDate is how the registry writes a decision's time in messages:
// the day alone at midnight UTC, else RFC 3339.
func decisionDate(t time.Time) string {
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

// latestDecisionAt is when the identity's latest decision was made, as
// `iga show --json` reports it.
func (e *env) latestDecisionAt(identity string) time.Time {
	e.t.Helper()
	var v struct {
		Certification struct {
			Decision string
			At       time.Time
		} `json:"certification"`
	}
	require.NoError(e.t, json.Unmarshal([]byte(e.ok("iga", "show", identity, "--json")), &v))
	return v.Certification.At
}

// checkToken runs `iga check` for svc-backup's exec on web-01 with token.
func (e *env) checkToken(token string) (decisionJSON, int) {
	e.t.Helper()
	out, errOut, code := e.run(token, "iga", "check", "svc-backup", "web-01", "--action", "exec", "--from", "10.1.2.3", "--token", "-", "--json")
	var d decisionJSON
	require.NoErrorf(e.t, json.Unmarshal([]byte(out), &d), "check output %q, stderr %q", out, errOut)
	return d, code
}

// issueToken mints a bastion token for svc-backup.
func (e *env) issueToken() string {
	e.t.Helper()
	return strings.TrimSpace(e.ok("token", "issue", "svc-backup", "--ttl", "15m"))
}

// nextSecond waits for the next whole second: tokens carry whole seconds,
// and one minted in the second of a revocation counts as minted before it.
func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
}

func TestCLIApplyKeepsRevoke(t *testing.T) {
	e := newEnv(t, "")
	fileDay := time.Now().UTC().Format(time.DateOnly) // svc-backup's certification in the file
	e.ok("iga", "apply", "-f", e.registry)
	early := e.issueToken()
	d, code := e.checkToken(early)
	require.Equal(t, 0, code, "svc-backup is admitted before the revoke: %v", d.Reasons)

	nextSecond()
	e.ok("iga", "revoke", "svc-backup", "--by", "alice@example.com", "--reason", "key leaked in a build log")
	revokedAt := decisionDate(e.latestDecisionAt("svc-backup"))

	for range 2 { // the GitOps job re-applies the same file, again and again
		out, errOut, code := e.run("", "iga", "apply", "-f", e.registry)
		assert.Equal(t, 1, code, "a kept conflict must fail the job; stderr %s", errOut)
		assert.Contains(t, out, "0 created, 0 updated, 3 unchanged")
		assert.Contains(t, errOut, "conflict: "+e.registry+":")
		assert.Contains(t, errOut, "identity svc-backup: the registry's revocation by alice@example.com at "+revokedAt+
			" is later than the file's certification by alice@example.com at "+fileDay+
			"; kept the registry's decision and state suspended (the file says active)")
		assert.Contains(t, errOut, "sallyport: apply "+e.registry+": kept the registry's later decisions for svc-backup against the file")
		assert.Contains(t, errOut, "--force")

		d, _ = e.check("svc-backup", "web-01", "--action", "exec")
		assert.ElementsMatch(t, []string{"not_active", "certification_revoked"}, d.codes(), "the revoke survived the apply")
	}

	nextSecond()
	_, errOut, code := e.run("", "iga", "apply", "-f", e.registry, "--force")
	require.Equal(t, 0, code, "stderr %s", errOut)
	assert.Contains(t, errOut, "forced: "+e.registry+":")
	assert.Contains(t, errOut, "identity svc-backup: --force applied the file's certification")

	var events []struct {
		Type, Actor, Identity, Detail string
	}
	require.NoError(t, json.Unmarshal([]byte(e.ok("audit", "list", "--type", "apply_force", "--json")), &events))
	require.Len(t, events, 1, "one audit event per forced identity")
	assert.Equal(t, "svc-backup", events[0].Identity)
	assert.True(t, strings.HasPrefix(events[0].Actor, "cli"), "got actor %q, want the operator", events[0].Actor)
	assert.Equal(t, "the file's certification by alice@example.com at "+fileDay+" replaced the registry's later revocation by alice@example.com at "+
		revokedAt+"; state suspended→active", events[0].Detail)

	d, code = e.checkToken(early)
	assert.Equal(t, 1, code)
	assert.Equal(t, []string{"credential_invalid"}, d.codes(), "a token minted before the revoke stays refused after --force")
	assert.Contains(t, d.Reasons[0].Message, "before svc-backup was revoked at "+revokedAt)

	d, code = e.checkToken(e.issueToken())
	assert.Equal(t, 0, code, "a token minted after the re-certification works: %v", d.Reasons)
}

func TestCLICertifyAfterRevokeKeepsOldTokensOut(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)
	early := e.issueToken()
	nextSecond()
	e.ok("iga", "revoke", "svc-backup", "--by", "alice@example.com", "--reason", "key leaked in a build log")
	revokedAt := decisionDate(e.latestDecisionAt("svc-backup"))

	nextSecond()
	e.ok("iga", "certify", "svc-backup", "--by", "alice@example.com", "--for", "30d", "--note", "key rotated")
	_, errOut, code := e.run("", "iga", "apply", "-f", e.registry)
	require.Equal(t, 0, code, "the owner's later certification lets the file reactivate it; stderr %s", errOut)
	assert.Contains(t, errOut, "warning: "+e.registry+":")
	assert.Contains(t, errOut, "identity svc-backup: the registry's certification by alice@example.com")
	assert.NotContains(t, errOut, "conflict:")

	d, code := e.checkToken(early)
	assert.Equal(t, 1, code)
	assert.Equal(t, []string{"credential_invalid"}, d.codes(), "a token minted before the revoke stays refused after iga certify")
	assert.Contains(t, d.Reasons[0].Message, "before svc-backup was revoked at "+revokedAt)
	assert.Contains(t, d.Reasons[0].Message, "ask an administrator for a new one")

	d, code = e.checkToken(e.issueToken())
	assert.Equal(t, 0, code, "a token minted after the re-certification works: %v", d.Reasons)
}
