package iga_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

func TestSuggest(t *testing.T) {
	id := iga.Identity{ID: "svc-backup", Kind: iga.KindServiceAccount, State: iga.StateActive, Owner: "alice@example.com",
		Entitlements: []iga.Entitlement{
			{Target: "web-01", Login: "backup", Actions: []iga.Action{iga.ActionExec, iga.ActionSFTP}, From: []string{"10.0.0.0/8"}},
			{Target: "web-02", Login: "backup", Actions: []iga.Action{iga.ActionExec}},
		}}
	exec := func(c string) iga.Observation {
		return iga.Observation{Target: "web-01", Login: "backup", Action: iga.ActionExec, Command: c}
	}
	obs := []iga.Observation{
		{Target: "web-01", Login: "backup", Action: iga.ActionConnect},
		exec("/usr/local/bin/backup.sh nightly"), exec("/usr/local/bin/backup.sh weekly"), exec("/usr/local/bin/backup.sh monthly"),
		exec("/usr/local/bin/backup.sh nightly"),
		exec("tar -czf /backups/a.tgz /srv/www"), exec("tar -czf /backups/a.tgz /srv/api"), exec("tar -czf /backups/b.tgz /srv/www"),
		exec("uptime"),
		exec("df -h /"), exec("df -h /srv"),
	}
	s := iga.Suggest(id, obs)
	require.Len(t, s.Entitlements, 1, "web-02 was never used")
	e := s.Entitlements[0]
	assert.Equal(t, []iga.Action{iga.ActionExec}, e.Actions, "sftp was never used")
	assert.Equal(t, []string{"10.0.0.0/8"}, e.From, "the source blocks stay")
	assert.Equal(t, []string{
		"/usr/local/bin/backup.sh *", // three commands differing in one argument
		"df -h /", "df -h /srv",      // two: kept exact
		"tar -czf /backups/a.tgz /srv/api", "tar -czf /backups/a.tgz /srv/www", "tar -czf /backups/b.tgz /srv/www", // differ in two places
		"uptime",
	}, e.Commands)
	require.Len(t, s.Notes[0], 1)
	assert.Contains(t, s.Notes[0][0], `"/usr/local/bin/backup.sh *" generalised from 3 commands that differ in argument 1`)
	assert.Equal(t, []string{"web-01 as backup: sftp never used", "web-01 as backup: exec of any command", "web-02 as backup: never used"}, s.Unused)
	for _, o := range obs[1:] {
		_, ok := iga.MatchCommand(e.Commands, o.Command)
		assert.True(t, ok, "the suggestion still admits %q", o.Command)
	}

	out, err := iga.MarshalSuggestion(id, s, "suggested for svc-backup")
	require.NoError(t, err)
	f, err := iga.ParseFile("suggest.yaml", out)
	require.NoError(t, err, "the suggestion is a registry file:\n%s", out)
	assert.Equal(t, e.Commands, f.Doc.Identities[0].Entitlements[0].Commands)
	assert.Contains(t, string(out), "# \"/usr/local/bin/backup.sh *\" generalised from 3 commands")
	assert.Contains(t, string(out), "#   web-02 as backup: never used")
}

func TestSuggestLeavesShellAndOddCommandsUnrestricted(t *testing.T) {
	id := iga.Identity{ID: "x"}
	s := iga.Suggest(id, []iga.Observation{
		{Target: "t", Login: "l", Action: iga.ActionShell},
		{Target: "t", Login: "l", Action: iga.ActionExec, Command: "id"},
		{Target: "u", Login: "l", Action: iga.ActionExec, Command: "printf 'a\tb'"},
	})
	require.Len(t, s.Entitlements, 2)
	assert.Empty(t, s.Entitlements[0].Commands, "beside shell, commands would be an error")
	assert.Contains(t, s.Notes[0][0], "also opened shells")
	assert.Empty(t, s.Entitlements[1].Commands)
	assert.Contains(t, s.Notes[1][0], "cannot be written as a pattern")
}
