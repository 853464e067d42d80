package iga_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestDecisionEventNamesCommandAndSession: the audit event of an admitted
// exec names the command it runs (quoted and cut like a refusal's), and
// every decision made for a session names the session, so an auditor goes
// from the event to the recording.
func TestDecisionEventNamesCommandAndSession(t *testing.T) {
	s := admSQLite(t)
	_, keyLine := admKey(t)
	restricted := admPassing("svc-backup", keyLine)
	restricted.Entitlements[0].Commands = []string{"/usr/local/bin/backup.sh *"}
	admSeed(t, s, admPeople, []iga.Identity{restricted}, nil)
	r := admRegistry(s, nil)
	const session = "6571e0a0d41d8cd98f00b204"
	long := "/usr/local/bin/backup.sh " + strings.Repeat("a", 600)
	for _, tc := range []struct {
		name string
		req  iga.Request
		want string // the event's whole detail
	}{
		{"admitted exec", iga.Request{Action: iga.ActionExec, Command: "/usr/local/bin/backup.sh nightly", Session: session},
			`login backup; asked "/usr/local/bin/backup.sh nightly"; session ` + session},
		{"admitted exec of a long command", iga.Request{Action: iga.ActionExec, Command: long, Session: session},
			`login backup; asked "` + long[:512] + `" (first 512 of 625 bytes); session ` + session},
		{"refused exec", iga.Request{Action: iga.ActionExec, Command: "/usr/local/bin/backup.sh x; session forged", Session: session},
			`asked "/usr/local/bin/backup.sh x; session forged"; session ` + session},
		{"login", iga.Request{Action: iga.ActionConnect, Session: session}, "login backup; session " + session},
		{"admitted sftp names no command", iga.Request{Action: iga.ActionSFTP, Session: session}, "login backup; session " + session},
		{"dry run of a command", iga.Request{Action: iga.ActionExec, Command: "/usr/local/bin/backup.sh n", DryRun: true},
			`login backup; asked "/usr/local/bin/backup.sh n"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Identity, req.Target, req.Asked = "svc-backup", "web-01", req.Command
			_, err := r.Decide(context.Background(), req)
			require.NoError(t, err)
			evs, err := s.Audit(context.Background(), iga.AuditFilter{Identity: "svc-backup"})
			require.NoError(t, err)
			got := evs[len(evs)-1]
			assert.Equal(t, tc.want, got.Detail)
			fields := iga.AuditDetailFields(got.Detail)
			assert.Equal(t, req.Session, fields["session"], "session read back")
			if req.Command != "" {
				assert.Equal(t, iga.AuditQuote(req.Command), fields["asked"], "command read back whole")
			}
		})
	}
}

// TestAuditDetailFields reads details as decisions and refusals write them,
// and words of a client that look like parts do not forge one.
func TestAuditDetailFields(t *testing.T) {
	for _, tc := range []struct {
		detail string
		want   map[string]string
	}{
		{"", map[string]string{}},
		{"login app; credential SHA256:abc", map[string]string{"login": "app", "credential": "SHA256:abc"}},
		{`login app; asked "ls; session forged"; session 65`, map[string]string{"login": "app", "asked": `"ls; session forged"`, "session": "65"}},
		{`asked "a\"; session x"`, map[string]string{"asked": `"a\"; session x"`}},
		{`asked "abc" (first 3 of 9 bytes); session 65`, map[string]string{"asked": `"abc" (first 3 of 9 bytes)`, "session": "65"}},
		{`protocol ssh; asked "unterminated; session 65`, map[string]string{"protocol": "ssh", "asked": `"unterminated`, "session": "65"}},
		{"; ; login ", map[string]string{"login": ""}},
	} {
		assert.Equal(t, tc.want, iga.AuditDetailFields(tc.detail), "detail %q", tc.detail)
	}
}

// FuzzAuditDetailFields: whatever command a client sends, the parts of a
// decision's detail read back as written.
func FuzzAuditDetailFields(f *testing.F) {
	f.Add("ls", "6571e0a0d41d8cd98f00b204")
	f.Add(`sh -c 'a; b'; session x`, "65")
	f.Add("\"; session \"", "")
	f.Add(strings.Repeat("é; ", 200), "s")
	f.Fuzz(func(t *testing.T, command, session string) {
		if strings.Contains(session, ";") || strings.Contains(session, " ") {
			return // not a session id: those are hex
		}
		detail := "login app; asked " + iga.AuditQuote(command)
		if session != "" {
			detail += "; session " + session
		}
		got := iga.AuditDetailFields(detail)
		if got["asked"] != iga.AuditQuote(command) || got["session"] != session || got["login"] != "app" {
			t.Fatalf("detail %q read as %q", detail, got)
		}
	})
}
