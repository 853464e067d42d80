package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionsListSince: sessions list --since takes what sessions search
// --since takes (internal/when): a duration back from now, or a date,
// from the start of that day where the CLI runs; anything else exits 2
// and says what it wants.
func TestSessionsListSince(t *testing.T) {
	e := newEnv(t, "")
	id := recordSession(t, e)
	started := listedSessions(t, e)[id].StartedAt.Local()
	day := started.Format("2006-01-02")
	for _, tc := range []struct {
		since  string
		listed bool
	}{
		{"1h", true},
		{"30d", true},
		{day, true},
		{started.Add(-time.Minute).Format("2006-01-02T15:04"), true},
		{started.AddDate(0, 0, 1).Format("2006-01-02"), false},
		{started.Add(time.Minute).UTC().Format(time.RFC3339), false},
	} {
		var out []sessionOut
		require.NoError(t, json.Unmarshal([]byte(e.ok("sessions", "list", "--since", tc.since, "--json")), &out))
		got := false
		for _, s := range out {
			got = got || s.ID == id
		}
		assert.Equal(t, tc.listed, got, "sessions list --since %s lists the session started at %s", tc.since, started)
	}
	for arg, want := range map[string]string{
		"yesterday": `--since: "yesterday" is neither a duration back from now (90m, 24h, 30d) nor a date`,
		"-2h":       `--since: duration "-2h" is negative`,
	} {
		_, errOut, code := e.run("", "sessions", "list", "--since", arg)
		assert.Equal(t, exitUsage, code, "--since %s", arg)
		assert.Contains(t, errOut, want)
	}
}

// TestSearchUntilDate: sessions search --until with a bare date keeps that
// whole day, as the console's to does; --since starts at its midnight.
func TestSearchUntilDate(t *testing.T) {
	since, err := parseWhen("--since", "2026-12-01")
	require.NoError(t, err)
	until, err := parseWhen("--until", "2026-12-01")
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.Local), since)
	assert.Equal(t, time.Date(2026, 12, 2, 0, 0, 0, 0, time.Local), until, "hits before the next midnight are kept")
	_, err = parseWhen("--until", "soon")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--until: "soon" is neither a duration`)
}
