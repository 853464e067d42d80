package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga/sqlstore"
)

// TestSessionVisibility: an owner sees the sessions of the identities they
// own and no others; a session of someone else's identity answers exactly
// as a session that does not exist, on every session URL, the live stream
// included. Auditors see both.
func TestSessionVisibility(t *testing.T) {
	c := newConsole(t)
	require.NoError(t, c.store.PutSession(t.Context(), sqlstore.SessionRecord{ID: "s-theirs", Identity: "svc-ghost", Owner: inactive,
		Target: "web-01", Protocol: "ssh", Login: "ghost", State: "live", StartedAt: time.Now().Add(-time.Minute)}))
	own, _, _ := c.signIn(owner)
	aud, _, _ := c.signIn(auditor)

	for _, path := range []string{"/sessions/%s", "/sessions/%s/live", "/sessions/%s/cast", "/sessions/%s/events",
		"/sessions/%s/streams/exec-0.stdout", "/api/v1/sessions/%s", "/api/v1/sessions/%s/cast"} {
		t.Run(path, func(t *testing.T) {
			code, _, theirs := getBody(t, own, c.srv.URL+strings.Replace(path, "%s", "s-theirs", 1))
			missingCode, _, missing := getBody(t, own, c.srv.URL+strings.Replace(path, "%s", "s-nope00", 1))
			assert.Equal(t, http.StatusNotFound, code)
			assert.Equal(t, http.StatusNotFound, missingCode)
			assert.Equal(t, strings.ReplaceAll(missing, "s-nope00", "ID"), strings.ReplaceAll(theirs, "s-theirs", "ID"),
				"someone else's session reads as one that does not exist")
		})
	}
	code, _, page := getBody(t, own, c.srv.URL+"/sessions/s-ssh")
	assert.Equal(t, http.StatusOK, code, "the owner's own identity's session")
	_, _, list := getBody(t, own, c.srv.URL+"/sessions")
	assert.Contains(t, list, `href="/sessions/s-ssh"`)
	assert.NotContains(t, list, "s-theirs", "the list leaves out sessions the owner may not see")
	assert.Contains(t, page, "<dd>svc-backup</dd>", "the page is the session's")

	code, _, _ = getBody(t, aud, c.srv.URL+"/sessions/s-theirs")
	assert.Equal(t, http.StatusOK, code, "auditors see every session")
	code, _, body := getBody(t, aud, c.srv.URL+"/sessions/s-theirs/live")
	assert.Equal(t, http.StatusServiceUnavailable, code, "no live view on a console without a recorder: %s", body)
}
