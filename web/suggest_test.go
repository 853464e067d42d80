package web_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// otherOwner owns nothing the fixture holds.
const otherOwner = "oscar@example.com"

// fakeSuggestions answers per identity, as cmd/sallyport's adapter would
// from the session index and recordings.
type fakeSuggestions map[string]struct {
	yaml   string
	unused []string
	err    error
}

func (f fakeSuggestions) Suggest(_ context.Context, id string) (string, []string, error) {
	s := f[id]
	return s.yaml, s.unused, s.err
}

// TestRegistrySuggestion: the registry page shows an identity's owner,
// auditors and admins the tighter entitlements its use suggests, escaped;
// another owner does not see them, and nor does anyone when the
// entitlements fit their use or no suggester is configured.
func TestRegistrySuggestion(t *testing.T) {
	c := newConsole(t)
	require.NoError(t, c.store.Update(t.Context(), func(tx iga.Tx) error {
		return tx.PutPerson(t.Context(), iga.Person{ID: otherOwner, Name: "Oscar", Roles: []string{"owner"}, Status: iga.PersonActive})
	}))
	const section = "Tighter entitlements for svc-backup"
	const hostile = "# from <script>alert(1)</script>\nidentities:\n  - id: svc-backup"
	c.ws.Suggestions = fakeSuggestions{
		"svc-backup": {yaml: hostile, unused: []string{"web-01 as backup: shell never used"}},
		"svc-report": {yaml: "identities: []"}, // nothing unused, no exec: nothing to tighten
		"bg-root":    {err: errors.New("recording store unreachable")},
	}
	for _, tc := range []struct {
		who      string
		wantShow bool
	}{
		{owner, true},
		{auditor, true},
		{admin, true},
		{otherOwner, false},
	} {
		t.Run(tc.who, func(t *testing.T) {
			b, _, _ := c.signIn(tc.who)
			code, _, body := getBody(t, b, c.srv.URL+"/registry")
			require.Equal(t, http.StatusOK, code)
			assert.NotContains(t, body, "Tighter entitlements for svc-report", "entitlements that fit their use get no section")
			if !tc.wantShow {
				assert.NotContains(t, body, section, "someone who neither owns svc-backup nor audits sees no suggestion")
				assert.NotContains(t, body, "alert(1)")
				return
			}
			assert.Contains(t, body, section)
			assert.Contains(t, body, "web-01 as backup: shell never used")
			assert.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;", "the YAML is shown as text")
			assert.NotContains(t, body, "<script>alert(1)")
			assert.Contains(t, body, "Tighter entitlements for bg-root", "a failed suggestion says so")
			assert.Contains(t, body, "could not be computed")
			assert.NotContains(t, body, "recording store unreachable", "the error's detail stays in the log")
		})
	}
	c.ws.Suggestions = nil
	b, _, _ := c.signIn(owner)
	_, _, body := getBody(t, b, c.srv.URL+"/registry")
	assert.NotContains(t, body, section, "without a suggester the page has no suggestions")
}
