package web_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestTransfersOnReviewsPage: when the identity provider deactivates an
// owner, the reviews page and API list an ownership-transfer item for each
// identity they owned, to admins and auditors.
func TestTransfersOnReviewsPage(t *testing.T) {
	c := newConsole(t)
	s := &iga.SCIM{Registry: &iga.Registry{Store: c.store}}
	_, err := s.ChangeUser(context.Background(), iga.UserChange{UserName: owner, RequestID: "req-1",
		Apply: func(u *iga.SCIMUser) error { u.Active = false; return nil }})
	require.NoError(t, err)

	adm, _, _ := c.signIn(admin)
	var rl struct {
		Transfers []struct {
			Identity, From string
			AssignedTo     string `json:"assigned_to"`
		} `json:"transfers"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, adm, c.srv.URL+"/api/v1/reviews", &rl))
	var ids []string
	for _, tr := range rl.Transfers {
		ids = append(ids, tr.Identity)
		assert.Equal(t, owner, tr.From)
		assert.Equal(t, admin, tr.AssignedTo, "the owner has no manager: the active admin gets it")
	}
	assert.ElementsMatch(t, []string{"svc-backup", "svc-report", "bg-root"}, ids)

	aud, _, _ := c.signIn(auditor)
	resp, err := aud.Get(c.srv.URL + "/reviews")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "Ownership transfers (3)")
	assert.Contains(t, string(body), "sallyport iga transfer IDENTITY --to PERSON")
}
