package scim

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFilter(t *testing.T) {
	for _, c := range []struct {
		in   string
		want filter
	}{
		{`userName eq "alice@example.com"`, filter{{"username", "alice@example.com"}}},
		{`USERNAME EQ "a\"b"`, filter{{"username", `a"b`}}},
		{`externalId eq "00u1"`, filter{{"externalid", "00u1"}}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x@y"`, filter{{"username", "x@y"}}},
		{`displayName eq "Sallyport Admins"`, filter{{"displayname", "Sallyport Admins"}}},
		{`id eq "g-1" and members[value eq "alice@example.com"]`, filter{{"id", "g-1"}, {"members.value", "alice@example.com"}}},
		{`  userName eq "a@b"  `, filter{{"username", "a@b"}}},
	} {
		got, err := parseFilter(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	for _, bad := range []string{
		``, `userName`, `userName eq`, `userName eq alice`, `userName co "a"`, `userName eq "a" or id eq "b"`,
		`password eq "x"`, `userName eq "unterminated`, `members[value co "x"]`, `members[type eq "x"]`,
		`userName eq "a" and`, `(userName eq "a")`, `userName eq "a" extra`, strings.Repeat("a", maxFilterLen+1),
	} {
		_, err := parseFilter(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// FuzzParseFilter: no input panics or hangs, an accepted filter has only
// filterable attributes, and parsing is deterministic.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`userName eq "alice@example.com"`, `id eq "g" and members[value eq "x"]`,
		`externalId eq "\u00e9\\"`, `displayName eq ""`, `a[`, `"`, `userName eq "a" and and`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseFilter(s)
		if err != nil {
			return
		}
		again, err := parseFilter(s)
		require.NoError(t, err)
		require.Equal(t, got, again)
		require.NotEmpty(t, got)
		for _, term := range got {
			require.True(t, filterable[term.attr], "attribute %q accepted", term.attr)
			require.True(t, utf8.ValidString(term.value) || !utf8.ValidString(s), "value %q", term.value)
		}
	})
}
