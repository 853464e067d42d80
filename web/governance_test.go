package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

type reviewList struct {
	Pending []struct {
		ID, OpenedBy, AssignedTo string
		GrantReason              string `json:"grant_reason"`
		Sessions                 []struct{ ID string }
	} `json:"pending"`
	Completed []struct{ ID, CompletedBy, Outcome string } `json:"completed"`
}

func getJSON(t *testing.T, b *http.Client, u string, v any) int {
	resp, err := b.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}
	return resp.StatusCode
}

// TestReviews: nobody completes the review of a grant they opened; the
// assigned owner does, with an outcome and a note.
func TestReviews(t *testing.T) {
	c := newConsole(t)
	adm, _, _ := c.signIn(admin)
	own, _, _ := c.signIn(owner)
	var rl reviewList
	require.Equal(t, http.StatusOK, getJSON(t, own, c.srv.URL+"/api/v1/reviews", &rl))
	require.Len(t, rl.Pending, 1, "the owner sees the review assigned to them")
	rv := rl.Pending[0]
	assert.Equal(t, admin, rv.OpenedBy)
	assert.Equal(t, "disk full on web-01, paging", rv.GrantReason, "the grant's reason is the evidence")
	require.Len(t, rv.Sessions, 1, "and the sessions run under the grant")
	assert.Equal(t, "s-grant", rv.Sessions[0].ID)
	path := "/reviews/" + rv.ID + "/complete"
	for _, tc := range []struct {
		name   string
		client *http.Client
		form   url.Values
		want   int
	}{
		{"the opener may not", adm, url.Values{"csrf": {c.csrf(adm)}, "outcome": {"legitimate"}, "note": {"fine"}}, 403},
		{"no CSRF token", own, url.Values{"outcome": {"legitimate"}, "note": {"fine"}}, 403},
		{"a note is required", own, url.Values{"csrf": {c.csrf(own)}, "outcome": {"legitimate"}}, 403},
		{"the owner completes", own, url.Values{"csrf": {c.csrf(own)}, "outcome": {"legitimate"}, "note": {"disk cleaned, sessions fit the reason"}}, 200},
		{"only once", own, url.Values{"csrf": {c.csrf(own)}, "outcome": {"misuse"}, "note": {"again"}}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.post(tc.client, path, tc.form)
			assert.Equal(t, tc.want, resp.StatusCode)
		})
	}
	require.Equal(t, http.StatusOK, getJSON(t, adm, c.srv.URL+"/api/v1/reviews", &rl))
	require.Len(t, rl.Completed, 1)
	assert.Equal(t, owner, rl.Completed[0].CompletedBy)
	assert.Equal(t, "legitimate", rl.Completed[0].Outcome)
}

// TestCampaigns: an owner decides their items; an auditor sees them but
// cannot decide.
func TestCampaigns(t *testing.T) {
	c := newConsole(t)
	aud, _, _ := c.signIn(auditor)
	own, _, _ := c.signIn(owner)
	var cs []struct {
		ID    string
		Open  bool                                            `json:"open"`
		Items []struct{ Identity, Reviewer, Decision string } `json:"items"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, own, c.srv.URL+"/api/v1/campaigns", &cs))
	require.Len(t, cs, 1)
	require.NotEmpty(t, cs[0].Items)
	path := "/api/v1/campaigns/" + cs[0].ID + "/decide"
	resp := c.post(aud, path, url.Values{"csrf": {c.csrf(aud)}, "identity": {"svc-report"}, "decision": {"certify"}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "an auditor is not the reviewer")
	resp = c.post(own, path, url.Values{"csrf": {c.csrf(own)}, "identity": {"svc-report"}, "decision": {"certify"}, "note": {"still needed"}})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp = c.post(own, "/campaigns/"+cs[0].ID+"/decide", url.Values{"csrf": {c.csrf(own)}, "identity": {"svc-backup"}, "decision": {"revoke"}, "note": {"unused"}})
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the form redirects to the campaigns page")
	require.Equal(t, http.StatusOK, getJSON(t, aud, c.srv.URL+"/api/v1/campaigns", &cs))
	decided := map[string]string{}
	for _, it := range cs[0].Items {
		decided[it.Identity] = it.Decision
	}
	assert.Equal(t, "certify", decided["svc-report"])
	assert.Equal(t, "revoke", decided["svc-backup"])
}

// TestCampaignPageShowsCommands: each campaign item shows what its
// identity may do, down to the commands, so the owner certifies that.
func TestCampaignPageShowsCommands(t *testing.T) {
	c := newConsole(t)
	require.NoError(t, c.store.Update(t.Context(), func(tx iga.Tx) error {
		id, err := tx.Identity(t.Context(), "svc-backup")
		if err != nil {
			return err
		}
		id.Entitlements = []iga.Entitlement{
			{Target: "web-01", Login: "backup", Actions: []iga.Action{iga.ActionExec}, Commands: []string{"/usr/local/bin/backup.sh *", "/usr/local/bin/verify.sh"}},
			{Target: "web-01", Login: "ops", Actions: []iga.Action{iga.ActionExec, iga.ActionSFTP}},
		}
		return tx.PutIdentity(t.Context(), id)
	}))
	own, _, _ := c.signIn(owner)
	code, _, body := getBody(t, own, c.srv.URL+"/campaigns")
	require.Equal(t, http.StatusOK, code)
	row := body[strings.Index(body, "<td>svc-backup</td>"):]
	row = row[:strings.Index(row, "</tr>")]
	assert.Contains(t, row, "web-01 as backup: exec")
	assert.Contains(t, row, "may run <code>/usr/local/bin/backup.sh *</code>")
	assert.Contains(t, row, "may run <code>/usr/local/bin/verify.sh</code>")
	assert.Contains(t, row, "web-01 as ops: exec, sftp")
	assert.Contains(t, row, "may run any command", "exec without commands says so")
	assert.Contains(t, body, "no entitlements", "svc-report holds none")
}
