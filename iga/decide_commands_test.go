package iga_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestDecideCommands checks rule 5 with command entitlements on both
// drivers: what an identity restricted to backup.sh may and may not run,
// what the refusal tells it, and when the certificate forces the command.
func TestDecideCommands(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		_, keyLine := admKey(t)
		restricted := admPassing("svc-backup", keyLine)
		restricted.Entitlements[0].Commands = []string{"/usr/local/bin/backup.sh *"}
		single := admPassing("svc-uptime", keyLine)
		single.Entitlements[0].Commands = []string{"/usr/bin/uptime"}
		// Two logins on one target: the restricted one does not cover id,
		// the unrestricted one does.
		mixed := admPassing("svc-mixed", keyLine)
		mixed.Entitlements[0].Commands = []string{"/usr/bin/uptime"}
		mixed.Entitlements = append(mixed.Entitlements, iga.Entitlement{Target: "web-01", Login: "ops", Actions: []iga.Action{iga.ActionExec}})
		admSeed(t, s, admPeople, []iga.Identity{restricted, single, mixed}, nil)
		r := admRegistry(s, nil)

		for _, tc := range []struct {
			name, identity, command string
			action                  iga.Action
			dryRun                  bool
			allow                   bool
			login, force, says      string
			commands                []string
		}{
			{name: "allowed command", identity: "svc-backup", command: "/usr/local/bin/backup.sh nightly", allow: true, login: "backup"},
			{name: "other command", identity: "svc-backup", command: "id",
				says: `svc-backup may not run "id" on web-01 (allowed: "/usr/local/bin/backup.sh *"); ask its owner alice@example.com`},
			{name: "semicolon", identity: "svc-backup", command: "/usr/local/bin/backup.sh x; id"},
			{name: "substitution", identity: "svc-backup", command: "/usr/local/bin/backup.sh $(id)"},
			{name: "pipe", identity: "svc-backup", command: "/usr/local/bin/backup.sh x | sh"},
			{name: "newline", identity: "svc-backup", command: "/usr/local/bin/backup.sh x\nid", says: `"/usr/local/bin/backup.sh x\nid"`},
			{name: "invalid UTF-8", identity: "svc-backup", command: "/usr/local/bin/backup.sh \xff"},
			{name: "1 MB", identity: "svc-backup", command: "/usr/local/bin/backup.sh " + strings.Repeat("a", 1<<20),
				says: "… (1048601 bytes)"},
			{name: "empty command is refused", identity: "svc-backup", command: "", says: "may not run an empty command"},
			{name: "a check without a command lists them", identity: "svc-backup", dryRun: true, allow: true, login: "backup",
				commands: []string{"/usr/local/bin/backup.sh *"}},
			{name: "connect ignores commands", identity: "svc-backup", action: iga.ActionConnect, command: "id", allow: true, login: "backup"},
			{name: "sftp ignores commands", identity: "svc-backup", action: iga.ActionSFTP, command: "id", allow: true, login: "backup"},
			{name: "one exact command is forced", identity: "svc-uptime", command: "/usr/bin/uptime", allow: true, login: "backup", force: "/usr/bin/uptime"},
			{name: "one exact command, another asked", identity: "svc-uptime", command: "/usr/bin/uptime -p"},
			{name: "restricted login covers its command", identity: "svc-mixed", command: "/usr/bin/uptime", allow: true, login: "backup", force: "/usr/bin/uptime"},
			{name: "unrestricted login covers the rest", identity: "svc-mixed", command: "id", allow: true, login: "ops"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				action := tc.action
				if action == "" {
					action = iga.ActionExec
				}
				d, err := r.Decide(context.Background(), iga.Request{Identity: tc.identity, Target: "web-01", Action: action,
					Command: tc.command, DryRun: tc.dryRun})
				require.NoError(t, err)
				assert.Equal(t, tc.allow, d.Allow, "allow; reasons %v", d.Reasons)
				assert.Equal(t, tc.login, d.Login, "login")
				assert.Equal(t, tc.force, d.ForceCommand, "force command")
				assert.Equal(t, tc.commands, d.Commands, "commands listed")
				if tc.allow {
					return
				}
				require.Len(t, d.Reasons, 1)
				assert.Equal(t, iga.ReasonCommandNotEntitled, d.Reasons[0].Code)
				assert.Less(t, len(d.Reasons[0].Message), 400, "one sentence, the command clipped")
				assert.NotContains(t, d.Reasons[0].Message, "\n", "one line")
				assert.Contains(t, d.Reasons[0].Message, tc.says)
			})
		}
		events, err := s.Audit(context.Background(), iga.AuditFilter{Identity: "svc-backup", Type: "decision"})
		require.NoError(t, err)
		var refused int
		for _, e := range events {
			if !e.Allow && len(e.Reasons) > 0 && e.Reasons[0].Code == iga.ReasonCommandNotEntitled {
				refused++
			}
		}
		assert.Equal(t, 8, refused, "every refused command is an audit event")
	})
}
