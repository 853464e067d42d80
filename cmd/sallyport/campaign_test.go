package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/proxy"
)

type cmpCampaign struct {
	ID        string
	State     string
	Items     []struct{ Identity, Reviewer, Decision string }
	Certified []string
	Revoked   []string
	Undecided []string
}

// TestCLICampaign: start, owner-only decisions (a revoke ends a live
// session run by another process), close with an undecided item.
func TestCLICampaign(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)
	var cp cmpCampaign
	require.NoError(t, json.Unmarshal([]byte(e.ok("iga", "campaign", "start", "--name", "2026-Q4", "--due", "14d", "--json")), &cp))
	require.NotEmpty(t, cp.ID)
	assert.Equal(t, []string{"bg-oncall", "ci-deploy", "svc-backup"}, cp.Undecided)
	for _, it := range cp.Items {
		assert.NotEmpty(t, it.Reviewer, "%s has its owner as reviewer", it.Identity)
	}
	sess := cmpLiveSession(t, e)

	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"non-owner refused", []string{"ci-deploy", "--by", "alice@example.com", "--decision", "certify"}, 1, "its owner bob@example.com decides it"},
		{"bad decision", []string{"ci-deploy", "--by", "bob@example.com", "--decision", "approve"}, 2, "certify or revoke"},
		{"owner certifies", []string{"ci-deploy", "--by", "bob@example.com", "--decision", "certify"}, 0, ""},
		{"owner revokes", []string{"svc-backup", "--by", "alice@example.com", "--decision", "revoke", "--note", "moved to vault"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := e.run("", append([]string{"iga", "campaign", "decide", cp.ID}, tc.args...)...)
			assert.Equalf(t, tc.code, code, "got exit %d, want %d: %s", code, tc.code, errOut)
			assert.Contains(t, errOut, tc.says)
		})
	}
	_, code := e.check("ci-deploy", "web-01", "--action", "exec")
	assert.Equal(t, 0, code, "the campaign certification admits ci-deploy")
	d, _ := e.check("svc-backup", "web-01", "--action", "exec", "--from", "10.1.2.3")
	assert.ElementsMatch(t, []string{"not_active", "certification_revoked"}, d.codes())
	select {
	case <-sess.Context().Done():
		assert.ErrorContains(t, context.Cause(sess.Context()), "certification_revoked")
	case <-time.After(5 * time.Second):
		t.Fatal("svc-backup's live session still runs 5s after the revoke")
	}

	report := filepath.Join(e.dir, "campaign.json")
	e.ok("iga", "campaign", "close", cp.ID, "--json", "-o", report)
	data, err := os.ReadFile(report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &cp))
	assert.Equal(t, "closed", cp.State)
	assert.Equal(t, []string{"ci-deploy"}, cp.Certified)
	assert.Equal(t, []string{"svc-backup"}, cp.Revoked)
	assert.Equal(t, []string{"bg-oncall"}, cp.Undecided)
	out := e.ok("iga", "campaign", "show", cp.ID)
	assert.Contains(t, out, "bg-oncall: they keep their current state")
	var list []cmpCampaign
	require.NoError(t, json.Unmarshal([]byte(e.ok("iga", "campaign", "list", "--json")), &list))
	require.Len(t, list, 1)
	_, errOut, code := e.run("", "iga", "campaign", "close", cp.ID)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "already closed")
}

// cmpLiveSession runs a live svc-backup session in this process, watched
// as serve watches its sessions, and indexed as the recorder indexes it.
func cmpLiveSession(t *testing.T, e *env) *proxy.Session {
	t.Helper()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { ap.Close() })
	live := &proxy.Live{Gate: ap.reg, Index: ap.store, Recheck: 200 * time.Millisecond, Logger: testLogger(t)}
	go live.Watch(ctx)
	req := iga.Request{Identity: "svc-backup", Target: "web-01", Action: iga.ActionExec}
	return live.Begin(ctx, "ssh", req, iga.Decision{Allow: true}, time.Now())
}

// TestCLIReport: the hygiene report names its findings with OWASP NHI ids,
// and the session index and options change them.
func TestCLIReport(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)
	type report struct {
		Counts   map[string]int
		Findings []iga.Finding
	}
	findings := func(args ...string) map[string]string {
		var r report
		require.NoError(t, json.Unmarshal([]byte(e.ok(append([]string{"iga", "report", "--json"}, args...)...)), &r))
		out := map[string]string{}
		for _, f := range r.Findings {
			out[f.NHI+" "+f.Kind+" "+f.Identity] = f.Detail
		}
		return out
	}
	got := findings()
	assert.Contains(t, got, "NHI1 dormant svc-backup")
	assert.Contains(t, got, "NHI1 not_certified ci-deploy")
	assert.NotContains(t, got, "NHI1 dormant bg-oncall", "break-glass accounts are dormant by design")
	assert.NotContains(t, got, "NHI7 long_lived_key svc-backup", "its key expires in 100 days")
	assert.Contains(t, findings("--key-age", "30d"), "NHI7 long_lived_key svc-backup")

	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ap, err := openApp(context.Background(), cfg, testLogger(t))
	require.NoError(t, err)
	require.NoError(t, ap.store.PutSession(context.Background(), sqlstore.SessionRecord{ID: "s1", Identity: "svc-backup",
		Target: "web-01", Protocol: "ssh", State: "stored", StartedAt: time.Now().Add(-time.Hour)}))
	ap.Close()
	got = findings()
	assert.NotContains(t, got, "NHI1 dormant svc-backup", "a session an hour ago")
	assert.Contains(t, got["NHI5 unused_entitlement svc-backup"], "exec,sftp on web-01")
	out := e.ok("iga", "report")
	assert.Contains(t, out, "NHI5")
	_, _, code := e.run("", "iga", "report", "--window", "soon")
	assert.Equal(t, 2, code)
}

// TestCLICampaignShowsCommands: the owner sees, on each item, what the
// identity may do, down to the commands it may run, in text and JSON;
// exec without commands says it may run anything.
func TestCLICampaignShowsCommands(t *testing.T) {
	e := newEnv(t, "")
	reg, err := os.ReadFile(e.registry)
	require.NoError(t, err)
	restricted := strings.Replace(string(reg), "{target: web-01, login: deploy, actions: [exec]}",
		`{target: web-01, login: deploy, actions: [exec], commands: ["/usr/local/bin/deploy.sh *", "/usr/local/bin/deploy.sh --status"]}`, 1)
	require.NotEqual(t, string(reg), restricted, "the test registry has ci-deploy's entitlement")
	require.NoError(t, os.WriteFile(e.registry, []byte(restricted), 0o600))
	e.ok("iga", "apply", "-f", e.registry)
	var cp cmpCampaign
	require.NoError(t, json.Unmarshal([]byte(e.ok("iga", "campaign", "start", "--name", "2026-Q4", "--due", "14d", "--json")), &cp))

	out := e.ok("iga", "campaign", "show", cp.ID)
	deploy := out[strings.Index(out, "ci-deploy"):strings.Index(out, "svc-backup")]
	assert.Contains(t, deploy, "web-01 as deploy: exec\n")
	assert.Contains(t, deploy, `may run: "/usr/local/bin/deploy.sh *"`)
	assert.Contains(t, deploy, `may run: "/usr/local/bin/deploy.sh --status"`)
	assert.NotContains(t, deploy, "any command")
	assert.Contains(t, out[strings.Index(out, "svc-backup"):], "web-01 as backup: exec,sftp")
	assert.Contains(t, out[strings.Index(out, "svc-backup"):], "may run: any command")

	var shown struct {
		Items []struct {
			Identity     string
			Entitlements []struct {
				Target, Login string
				Actions       []string
				Commands      []string
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(e.ok("iga", "campaign", "show", cp.ID, "--json")), &shown))
	byID := map[string]int{}
	for i, it := range shown.Items {
		byID[it.Identity] = i
	}
	require.Contains(t, byID, "ci-deploy")
	got := shown.Items[byID["ci-deploy"]].Entitlements
	require.Len(t, got, 1)
	assert.Equal(t, "web-01", got[0].Target)
	assert.Equal(t, "deploy", got[0].Login)
	assert.Equal(t, []string{"exec"}, got[0].Actions)
	assert.Equal(t, []string{"/usr/local/bin/deploy.sh *", "/usr/local/bin/deploy.sh --status"}, got[0].Commands)
	assert.Empty(t, shown.Items[byID["svc-backup"]].Entitlements[0].Commands, "no commands: exec of anything")

	out = e.ok("iga", "campaign", "decide", cp.ID, "ci-deploy", "--by", "bob@example.com", "--decision", "certify")
	assert.Contains(t, out, `may run: "/usr/local/bin/deploy.sh *"`, "the confirmation says what was certified")
}
