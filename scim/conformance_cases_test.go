package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

const errorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"

func testTokens(t *testing.T, f *fixture) {
	for _, auth := range []string{"", "Bearer wrong-token-0123456789abcdefghij", "Basic " + tokenNew, "Bearer " + tokenNew[:10]} {
		status, body := f.do("GET", "/Users", "", "Authorization", auth)
		assert.Equal(t, http.StatusUnauthorized, status, "Authorization %q", auth)
		assert.Equal(t, []any{errorSchema}, body["schemas"])
		assert.NotContains(t, body, "detail", "a 401 says nothing more")
	}
	for _, tok := range []string{tokenOld, tokenNew} {
		status, _ := f.do("GET", "/Users", "", "Authorization", "Bearer "+tok)
		assert.Equal(t, http.StatusOK, status)
	}
}

func testDiscovery(t *testing.T, f *fixture) {
	status, spc := f.do("GET", "/ServiceProviderConfig", "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, spc["patch"].(map[string]any)["supported"])
	assert.Equal(t, true, spc["filter"].(map[string]any)["supported"])
	status, rts := f.do("GET", "/ResourceTypes", "")
	require.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 2, rts["totalResults"])
	status, schemas := f.do("GET", "/Schemas", "")
	require.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 3, schemas["totalResults"])
	status, _ = f.do("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "")
	assert.Equal(t, http.StatusOK, status)
}

func testAdopt(t *testing.T, f *fixture) {
	status, list := f.do("GET", `/Users?filter=userName+eq+%22Alice@Example.com%22`, "")
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 1, list["totalResults"])
	alice := list["Resources"].([]any)[0].(map[string]any)
	assert.Equal(t, "alice@example.com", alice["id"])
	assert.Equal(t, true, alice["active"])
	assert.Empty(t, managed(t, f), "looking up changes nothing")

	status, _ = f.do("PATCH", "/Users/alice@example.com",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"externalId":"00u-alice","name":{"givenName":"Alice","familyName":"Liddell"}}}]}`)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, []string{"alice@example.com"}, managed(t, f))
	assert.Equal(t, "Alice Liddell", f.person("alice@example.com").Name)
	assert.Equal(t, []string{"owner"}, f.person("alice@example.com").Roles, "roles from the file stay")
}

// managed lists the people the export marks as SCIM-managed.
func managed(t *testing.T, f *fixture) []string {
	doc, err := f.reg.Export(context.Background())
	require.NoError(t, err)
	var out []string
	for _, p := range doc.People {
		if p.ManagedBy == iga.ManagedBySCIM {
			out = append(out, p.ID)
		}
	}
	return out
}

const daveBody = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dave@example.com",
 "name":{"givenName":"Dave","familyName":"Jones"},"emails":[{"primary":true,"value":"dave@example.com","type":"work"}],
 "displayName":"Dave Jones","locale":"en-US","externalId":"00u1dave","active":true,"password":"never-kept-1"}`

func testCreateGetReplace(t *testing.T, f *fixture) {
	status, dave := f.do("POST", "/Users", daveBody)
	require.Equal(t, http.StatusCreated, status, "%v", dave)
	assert.Equal(t, "dave@example.com", dave["id"])
	assert.NotContains(t, fmt.Sprint(dave), "never-kept", "the password is neither kept nor echoed")
	assert.Equal(t, "Dave Jones", f.person("dave@example.com").Name)

	status, got := f.do("GET", "/Users/dave@example.com", "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "00u1dave", got["externalId"])
	assert.Equal(t, "User", got["meta"].(map[string]any)["resourceType"])

	for _, q := range []string{`externalId eq "00u1dave"`, `userName eq "dave@example.com"`, `displayName eq "Dave Jones"`} {
		status, list := f.do("GET", "/Users?filter="+urlQuery(q), "")
		require.Equal(t, http.StatusOK, status)
		assert.EqualValues(t, 1, list["totalResults"], q)
	}
	status, list := f.do("GET", "/Users?filter="+urlQuery(`userName eq "nobody@example.com"`), "")
	require.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 0, list["totalResults"])

	status, body := f.do("POST", "/Users", daveBody)
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "uniqueness", body["scimType"])

	status, got = f.do("PUT", "/Users/dave@example.com", strings.Replace(daveBody, `"Dave Jones"`, `"David Jones"`, 1))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "David Jones", got["displayName"])
	assert.Equal(t, "David Jones", f.person("dave@example.com").Name)
}

func urlQuery(s string) string {
	r := strings.NewReplacer(" ", "+", `"`, "%22")
	return r.Replace(s)
}

// Okta's bodies, as its SCIM 2.0 provisioning guide shows them: a
// path-less replace of active, and group member add and remove.
func testOktaPatch(t *testing.T, f *fixture) {
	status, _ := f.do("POST", "/Users", daveBody)
	require.Equal(t, http.StatusCreated, status)
	status, got := f.do("PATCH", "/Users/dave@example.com",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, false, got["active"])
	assert.Equal(t, iga.PersonInactive, f.person("dave@example.com").Status)
	status, got = f.do("PATCH", "/Users/dave@example.com",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, got["active"])
	assert.Equal(t, iga.PersonActive, f.person("dave@example.com").Status)
}

// Entra ID's bodies, as its SCIM guide shows them: capitalised ops,
// booleans as strings, value paths, the enterprise manager.
func testEntraPatch(t *testing.T, f *fixture) {
	status, _ := f.do("POST", "/Users", daveBody)
	require.Equal(t, http.StatusCreated, status)
	status, got := f.do("PATCH", "/Users/dave@example.com", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
	 {"op":"Replace","path":"displayName","value":"Dave J."},
	 {"op":"Add","path":"emails[type eq \"work\"].value","value":"dave.jones@example.com"},
	 {"op":"Replace","path":"name.familyName","value":"Jones-Smith"},
	 {"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"carol@example.com"},
	 {"op":"Replace","path":"title","value":"Engineer"}]}`)
	require.Equal(t, http.StatusOK, status, "%v", got)
	assert.Equal(t, "Dave J.", got["displayName"])
	assert.Equal(t, "dave.jones@example.com", got["emails"].([]any)[0].(map[string]any)["value"])
	ext := got["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
	assert.Equal(t, "carol@example.com", ext["manager"].(map[string]any)["value"])

	status, got = f.do("PATCH", "/Users/dave@example.com",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, false, got["active"])
	assert.Equal(t, iga.PersonInactive, f.person("dave@example.com").Status)
}

func testGroups(t *testing.T, f *fixture) {
	status, _ := f.do("POST", "/Users", daveBody)
	require.Equal(t, http.StatusCreated, status)
	status, g := f.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Sallyport Admins","members":[{"value":"dave@example.com"}]}`)
	require.Equal(t, http.StatusCreated, status, "%v", g)
	id := g["id"].(string)
	assert.Contains(t, f.person("dave@example.com").Roles, "admin")

	status, list := f.do("GET", "/Groups?excludedAttributes=members&filter="+urlQuery(`displayName eq "Sallyport Admins"`), "")
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 1, list["totalResults"])
	assert.NotContains(t, list["Resources"].([]any)[0], "members")

	// Okta removes a member with a value filter in the path.
	status, _ = f.do("PATCH", "/Groups/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"dave@example.com\"]"}]}`)
	require.Equal(t, http.StatusOK, status)
	assert.NotContains(t, f.person("dave@example.com").Roles, "admin")

	// Entra adds and removes with a members path and a value array.
	status, _ = f.do("PATCH", "/Groups/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"dave@example.com"},{"value":"alice@example.com"}]}]}`)
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, f.person("dave@example.com").Roles, "admin")
	assert.ElementsMatch(t, []string{"owner", "admin"}, f.person("alice@example.com").Roles)
	status, _ = f.do("PATCH", "/Groups/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"alice@example.com"}]}]}`)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, []string{"owner"}, f.person("alice@example.com").Roles)

	// Okta renames with a path-less replace; a name with no role takes it away.
	status, _ = f.do("PATCH", "/Groups/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"`+id+`","displayName":"Engineering"}}]}`)
	require.Equal(t, http.StatusOK, status)
	assert.NotContains(t, f.person("dave@example.com").Roles, "admin")

	status, _ = f.do("DELETE", "/Groups/"+id, "")
	assert.Equal(t, http.StatusNoContent, status)
	status, _ = f.do("GET", "/Groups/"+id, "")
	assert.Equal(t, http.StatusNotFound, status)
}

func testPagination(t *testing.T, f *fixture) {
	for i := range 5 {
		status, _ := f.do("POST", "/Users", fmt.Sprintf(`{"userName":"user%d@example.com","active":true}`, i))
		require.Equal(t, http.StatusCreated, status)
	}
	// alice and carol from the file, and the five.
	status, list := f.do("GET", "/Users?startIndex=1&count=2", "")
	require.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 7, list["totalResults"])
	assert.EqualValues(t, 2, list["itemsPerPage"])
	seen := map[string]bool{}
	for start := 1; start <= 7; start += 3 {
		_, page := f.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=3", start), "")
		assert.EqualValues(t, start, page["startIndex"])
		for _, r := range page["Resources"].([]any) {
			seen[r.(map[string]any)["id"].(string)] = true
		}
	}
	assert.Len(t, seen, 7, "three pages of three show every user once")
	_, page := f.do("GET", "/Users?startIndex=50", "")
	assert.Empty(t, page["Resources"])
	_, page = f.do("GET", "/Users?count=0", "")
	assert.EqualValues(t, 7, page["totalResults"])
	assert.Empty(t, page["Resources"])
}
