package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/auditexport"
	"github.com/sallyport/sallyport/iga"
)

// TestAuditNamesSessionAndCommand: after a real ssh exec and a real psql
// session through serve, `audit list --json` shows their decisions naming
// the sessions `sessions list` shows, and the exec's decision naming the
// command it ran; the OCSF form of those events carries both in unmapped.
func TestAuditNamesSessionAndCommand(t *testing.T) {
	c := newReplicaCluster(t)
	r := c.start(t)
	r.ok("iga", "apply", "-f", c.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const command = "echo audited; echo twice"
	res := e2eRun(t, r.ssh(ctx, command))
	require.Equalf(t, 0, res.code, "ssh: %s; logs: %s", res.stderr, r.logs)
	assert.Equal(t, "audited\ntwice\n", res.stdout)
	res = e2eRun(t, r.psqlThrough(ctx, "-c", "SELECT 1"))
	require.Equalf(t, 0, res.code, "psql: %s; logs: %s", res.stderr, r.logs)

	ids := map[string]string{} // protocol → the session id sessions list shows
	for _, s := range r.sessions() {
		ids[s.Protocol] = s.ID
	}
	require.NotEmpty(t, ids["ssh"], "the ssh session is listed")
	require.NotEmpty(t, ids["postgres"], "the psql session is listed")

	var evs []auditEvent
	require.NoError(t, json.Unmarshal([]byte(r.ok("audit", "list", "--type", "decision", "--json")), &evs))
	byAction := map[iga.Action]auditEvent{}
	for _, e := range evs {
		byAction[e.Action] = e
	}
	for action, protocol := range map[iga.Action]string{iga.ActionConnect: "ssh", iga.ActionExec: "ssh", iga.ActionQuery: "postgres"} {
		e := byAction[action]
		require.NotNil(t, e.Allow, "no %s decision in %+v", action, evs)
		assert.True(t, *e.Allow, "%s allowed", action)
		assert.Equal(t, ids[protocol], e.Session, "the %s decision names the %s session", action, protocol)
		assert.Contains(t, e.Detail, "session "+ids[protocol], "the text form shows it too")
	}
	exec := byAction[iga.ActionExec]
	assert.Contains(t, exec.Detail, `asked "echo audited; echo twice"`, "the admitted exec names its command")
	text := r.ok("audit", "list", "--type", "decision")
	assert.Contains(t, text, `asked "echo audited; echo twice"; session `+ids["ssh"], "audit list prints both")

	r.ok("iga", "check", "svc-ops", "web-01", "--command", "uptime -p")
	var checks []auditEvent
	require.NoError(t, json.Unmarshal([]byte(r.ok("audit", "list", "--type", "check", "--json")), &checks))
	require.Len(t, checks, 1)
	assert.Contains(t, checks[0].Detail, `asked "uptime -p"`, "a dry run names the command it checked")
	assert.Empty(t, checks[0].Session, "a dry run belongs to no session")

	ev := iga.AuditEvent{ID: exec.ID, Time: exec.Time, Type: exec.Type, Actor: exec.Actor, Identity: exec.Identity,
		Target: exec.Target, Action: exec.Action, Source: exec.Source, Allow: *exec.Allow, Detail: exec.Detail}
	ocsf := auditexport.Mapper{}.OCSF(ev)
	require.NotEmpty(t, ocsf)
	u := ocsf[0]["unmapped"].(map[string]any)
	assert.Equal(t, ids["ssh"], u["session"], "the SIEM gets the session")
	assert.Equal(t, `"`+command+`"`, u["command"], "the SIEM gets the whole command")
}
