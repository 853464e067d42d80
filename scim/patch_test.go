package scim

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// FuzzPatchUser: any PATCH body either fails with a SCIM error or applies;
// nothing panics, and a failure is always a *Error the IdP can read.
func FuzzPatchUser(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
		`{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"Operations":[{"op":"Add","path":"emails[type eq \"work\"].value","value":"a@b"}]}`,
		`{"Operations":[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"m@b"}}]}`,
		`{"Operations":[{"op":"remove","path":"name.givenName"},{"op":"add","path":"emails","value":[{"value":"x@y","primary":"True"}]}]}`,
		`{"Operations":[{"op":"replace","value":{"name":{"familyName":"X"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m@b"}}}]}`,
		`{"Operations":[]}`, `[]`, `{"Operations":[{"op":"remove"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseObject(body, "request body")
		if err == nil {
			var ops []operation
			if ops, err = parsePatch(o); err == nil {
				u := iga.SCIMUser{UserName: "alice@example.com", Active: true}
				err = patchUser(&u, ops)
			}
		}
		var e *Error
		if err != nil {
			require.True(t, errors.As(err, &e), "error %v (%T) is not a SCIM error", err, err)
			require.Equal(t, 400, e.Status)
		}
	})
}
