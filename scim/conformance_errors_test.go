package scim_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// snapshot is everything a bad request must leave as it was.
type snapshot struct {
	people []iga.Person
	audit  int
	groups int
}

func (f *fixture) snapshot() snapshot {
	ctx := context.Background()
	people, err := f.store.People(ctx)
	require.NoError(f.t, err)
	audit, err := f.store.Audit(ctx, iga.AuditFilter{})
	require.NoError(f.t, err)
	groups, err := f.store.SCIMGroups(ctx)
	require.NoError(f.t, err)
	return snapshot{people: people, audit: len(audit), groups: len(groups)}
}

const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`

func testBadInput(t *testing.T, f *fixture) {
	status, _ := f.do("POST", "/Groups", `{"displayName":"Sallyport Auditors","members":[{"value":"carol@example.com"}]}`)
	require.Equal(t, http.StatusCreated, status)
	before := f.snapshot()
	huge := `{"userName":"big@example.com","displayName":"` + strings.Repeat("x", 10<<20) + `"}`
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		scimType                 string
	}{
		{"malformed JSON", "POST", "/Users", `{"userName":"eve@example.com",`, 400, "invalidSyntax"},
		{"data after the object", "POST", "/Users", `{"userName":"eve@example.com"} {}`, 400, "invalidSyntax"},
		{"not an object", "POST", "/Users", `["eve@example.com"]`, 400, "invalidSyntax"},
		{"unknown attribute", "POST", "/Users", `{"userName":"eve@example.com","favouriteColour":"blue"}`, 400, "invalidSyntax"},
		{"userName not an e-mail", "POST", "/Users", `{"userName":"eve"}`, 400, "invalidValue"},
		{"userName missing", "POST", "/Users", `{"displayName":"Eve"}`, 400, "invalidValue"},
		{"active not a boolean", "POST", "/Users", `{"userName":"eve@example.com","active":"perhaps"}`, 400, "invalidValue"},
		{"PATCH unknown path after a good op", "PATCH", "/Users/alice@example.com",
			patchOp + `[{"op":"replace","path":"displayName","value":"Mallory"},{"op":"replace","path":"favouriteColour","value":"red"}]}`, 400, "invalidPath"},
		{"PATCH unknown op", "PATCH", "/Users/alice@example.com", patchOp + `[{"op":"move","path":"displayName","value":"x"}]}`, 400, "invalidSyntax"},
		{"PATCH removes active", "PATCH", "/Users/alice@example.com", patchOp + `[{"op":"remove","path":"active"}]}`, 400, "mutability"},
		{"PATCH without operations", "PATCH", "/Users/alice@example.com", patchOp + `[]}`, 400, "invalidSyntax"},
		{"PATCH deactivates then sets a bad userName", "PATCH", "/Users/alice@example.com",
			patchOp + `[{"op":"replace","value":{"active":false}},{"op":"replace","path":"userName","value":"not-an-email"}]}`, 400, "invalidValue"},
		{"PUT renames the user", "PUT", "/Users/alice@example.com", `{"userName":"alice2@example.com","active":false}`, 400, "invalidValue"},
		{"10 MB body", "POST", "/Users", huge, 413, ""},
		{"unsupported filter", "GET", "/Users?filter=" + urlQuery(`userName co "a"`), "", 400, "invalidFilter"},
		{"filter on an unknown attribute", "GET", "/Users?filter=" + urlQuery(`password eq "a"`), "", 400, "invalidFilter"},
		{"bad count", "GET", "/Users?count=many", "", 400, "invalidValue"},
		{"unknown user", "GET", "/Users/nobody@example.com", "", 404, ""},
		{"PATCH an unknown user", "PATCH", "/Users/nobody@example.com", patchOp + `[{"op":"replace","value":{"active":false}}]}`, 404, ""},
		{"group member who is no user", "POST", "/Groups", `{"displayName":"Sallyport Admins","members":[{"value":"ghost@example.com"}]}`, 400, "invalidValue"},
		{"group name taken", "POST", "/Groups", `{"displayName":"sallyport auditors"}`, 409, "uniqueness"},
		{"group PATCH unknown path", "PATCH", "/Groups/none", patchOp + `[{"op":"add","path":"owners","value":"x"}]}`, 404, ""},
		{"unknown endpoint", "GET", "/Bulk", "", 404, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.do(c.method, c.path, c.body)
			assert.Equal(t, c.status, status, "%v", body)
			assert.Equal(t, []any{errorSchema}, body["schemas"])
			assert.EqualValues(t, http.StatusText(status) != "" && body["status"] != nil, true)
			if c.scimType != "" {
				assert.Equal(t, c.scimType, body["scimType"], "%v", body["detail"])
			}
		})
	}
	assert.Equal(t, before, f.snapshot(), "no bad request changed the registry or its audit trail")
	assert.Equal(t, []string{"carol@example.com"}, managed(t, f), "only the group made carol SCIM-managed; no bad request made anyone")
}

func testDeactivate(t *testing.T, f *fixture) {
	ctx := context.Background()
	status, _ := f.do("PATCH", "/Users/alice@example.com", patchOp+`[{"op":"replace","value":{"active":false}}]}`,
		"X-Request-Id", "okta-req-0001")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, iga.PersonInactive, f.person("alice@example.com").Status)

	d, err := f.reg.Decide(ctx, iga.Request{Identity: "svc-a", Target: "db", Action: iga.ActionQuery, DryRun: true})
	require.NoError(t, err)
	assert.Contains(t, codes(d.Reasons), iga.ReasonOwnerInactive)

	transfers, err := f.reg.Transfers(ctx, false)
	require.NoError(t, err)
	require.Len(t, transfers, 1)
	assert.Equal(t, "svc-a", transfers[0].Identity)
	assert.Equal(t, "carol@example.com", transfers[0].AssignedTo, "alice has no manager: an admin gets it")
	assert.Equal(t, "okta-req-0001", transfers[0].RequestID)

	select {
	case a := <-f.alerts:
		assert.Equal(t, iga.AlertOwnerInactive, a.Kind)
		assert.Equal(t, "svc-a", a.Identity)
	default:
		t.Error("no owner_inactive alert was sent")
	}
	events, err := f.store.Audit(ctx, iga.AuditFilter{})
	require.NoError(t, err)
	var withID []string
	for _, e := range events {
		if strings.Contains(e.Detail, "okta-req-0001") {
			withID = append(withID, e.Type)
		}
	}
	assert.ElementsMatch(t, []string{"scim", "offboard", "transfer_open"}, withID, "the leaver is audited as iga offboard audits one")

	testApplyRefused(t, f)

	closed, err := f.reg.TransferOwnership(ctx, "svc-a", "carol@example.com", "carol@example.com")
	require.NoError(t, err)
	assert.Equal(t, transfers[0].ID, closed.ID)
	transfers, err = f.reg.Transfers(ctx, false)
	require.NoError(t, err)
	assert.Empty(t, transfers, "assigning a new owner closes the item")
	d, err = f.reg.Decide(ctx, iga.Request{Identity: "svc-a", Target: "db", Action: iga.ActionQuery, DryRun: true})
	require.NoError(t, err)
	assert.NotContains(t, codes(d.Reasons), iga.ReasonOwnerInactive)
	assert.Contains(t, codes(d.Reasons), iga.ReasonNotCertified, "the new owner must certify")
}

func testRequestID(t *testing.T, f *fixture) {
	status, _ := f.do("PATCH", "/Users/alice@example.com", patchOp+`[{"op":"replace","value":{"displayName":"Alice L."}}]}`,
		"X-Request-Id", "../../etc passwd; rm")
	require.Equal(t, http.StatusOK, status)
	events, err := f.store.Audit(context.Background(), iga.AuditFilter{Type: "scim"})
	require.NoError(t, err)
	require.NotEmpty(t, events)
	assert.Regexp(t, `^scim request scim-[0-9a-f]{16}: `, events[len(events)-1].Detail, "a malformed request id is replaced")
}

// testApplyRefused: apply refuses to change a SCIM-managed person, and
// applying an export changes nothing.
func testApplyRefused(t *testing.T, f *fixture) {
	ctx := context.Background()
	file, err := iga.ParseFile("registry.yaml", []byte("people:\n  - {id: alice@example.com, name: Alice, roles: [owner]}\nidentities: []\n"))
	require.NoError(t, err)
	_, err = f.reg.Apply(ctx, file, iga.ApplyOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "managed by the identity provider")
	assert.Equal(t, iga.PersonInactive, f.person("alice@example.com").Status)

	doc, err := f.reg.Export(ctx)
	require.NoError(t, err)
	out, err := iga.MarshalDoc(doc)
	require.NoError(t, err)
	assert.Contains(t, string(out), "managed by the identity provider (SCIM)")
	file, err = iga.ParseFile("export.yaml", out)
	require.NoError(t, err)
	res, err := f.reg.Apply(ctx, file, iga.ApplyOptions{})
	require.NoError(t, err)
	assert.False(t, res.Changed(), "applying an export changes nothing: %+v", res)
}

func codes(rs []iga.Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

func testDelete(t *testing.T, f *fixture) {
	status, g := f.do("POST", "/Groups", `{"displayName":"Sallyport Auditors","members":[{"value":"alice@example.com"},{"value":"carol@example.com"}]}`)
	require.Equal(t, http.StatusCreated, status)
	status, _ = f.do("DELETE", "/Users/alice@example.com", "")
	require.Equal(t, http.StatusNoContent, status)
	_, g = f.do("GET", "/Groups/"+g["id"].(string), "")
	assert.Equal(t, []any{map[string]any{"value": "carol@example.com", "display": "carol@example.com"}}, g["members"], "a deleted user is no group's member")
	status, _ = f.do("GET", "/Users/alice@example.com", "")
	assert.Equal(t, http.StatusNotFound, status)
	_, list := f.do("GET", "/Users?filter="+urlQuery(`userName eq "alice@example.com"`), "")
	assert.EqualValues(t, 0, list["totalResults"])
	assert.Equal(t, iga.PersonInactive, f.person("alice@example.com").Status, "the person stays, inactive")
	assert.True(t, slices.Contains(managed(t, f), "alice@example.com"), "a deleted person stays SCIM-managed")
	transfers, err := f.reg.Transfers(context.Background(), false)
	require.NoError(t, err)
	assert.Len(t, transfers, 1)

	status, _ = f.do("POST", "/Users", `{"userName":"alice@example.com","active":true}`)
	assert.Equal(t, http.StatusCreated, status, "a rejoiner is created again")
	assert.Equal(t, iga.PersonActive, f.person("alice@example.com").Status)
}
