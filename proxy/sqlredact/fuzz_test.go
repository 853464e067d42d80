package sqlredact

import (
	"fmt"
	"strings"
	"testing"
)

// placements put a secret in a password position, quoted as a client
// would quote it; false when the secret cannot be written that way.
var placements = []struct {
	d     Dialect
	place func(secret string) (string, bool)
}{
	{PostgreSQL, func(s string) (string, bool) { return "ALTER ROLE app PASSWORD " + pgQuote(s), true }},
	{PostgreSQL, func(s string) (string, bool) {
		return "CREATE ROLE app LOGIN ENCRYPTED PASSWORD E'" + escape(s, '\'') + "' VALID UNTIL 'infinity'", true
	}},
	{PostgreSQL, func(s string) (string, bool) {
		return "ALTER USER app PASSWORD $pw$" + s + "$pw$", !strings.Contains(s, "$")
	}},
	{PostgreSQL, func(s string) (string, bool) {
		return "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'app', password " + pgQuote(s) + ")", true
	}},
	{PostgreSQL, func(s string) (string, bool) {
		return "SELECT dblink_connect(" + pgQuote("host=db password='"+escape(s, '\'')+"' dbname=app") + ")", true
	}},
	{PostgreSQL, func(s string) (string, bool) {
		return "SELECT dblink_connect(" + pgQuote("host=db password="+s) + ")", bare(s)
	}},
	{PostgreSQL, func(s string) (string, bool) {
		return "DO $$BEGIN EXECUTE " + pgQuote("ALTER ROLE r PASSWORD "+pgQuote(s)) + "; END$$", !strings.Contains(s, "$")
	}},
	{MySQL, func(s string) (string, bool) { return "CREATE USER 'u'@'%' IDENTIFIED BY " + myQuote(s, '\''), true }},
	{MySQL, func(s string) (string, bool) {
		return "ALTER USER u IDENTIFIED WITH mysql_native_password BY " + myQuote(s, '"') + " REPLACE 'old'", true
	}},
	{MySQL, func(s string) (string, bool) {
		return "SET PASSWORD FOR 'u'@'h' = PASSWORD(" + myQuote(s, '\'') + ")", true
	}},
	{MySQL, func(s string) (string, bool) { return "GRANT ALL ON *.* TO u IDENTIFIED BY " + myQuote(s, '\''), true }},
	{MySQL, func(s string) (string, bool) {
		return "CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD=" + myQuote(s, '\'') + ", MASTER_PORT=3306", true
	}},
}

// FuzzRedact checks that Redact never panics on any text, and that a
// secret in a password position never survives it, whatever the secret
// holds and whatever follows the statement.
func FuzzRedact(f *testing.F) {
	f.Add("hunter2", "", uint8(0))
	f.Add("it's \\' -- /* $$ PASSWORD 'x'", "; SELECT 1", uint8(4))
	f.Add("a\"b`c", "/* unterminated", uint8(8))
	f.Fuzz(func(t *testing.T, secret, tail string, which uint8) {
		for _, d := range []Dialect{PostgreSQL, MySQL} {
			Redact(d, secret+tail)
			Param(d, secret+tail)
		}
		p := placements[int(which)%len(placements)]
		stmt, ok := p.place(secret)
		if !ok || len(secret) < 3 {
			return
		}
		stmt += "\n" + tail
		got := Redact(p.d, stmt)
		// The secret may be a word the rest of the statement has.
		shape, _ := p.place("")
		if strings.Contains(shape+Literal+Marker+"\n"+tail, secret) {
			return
		}
		if strings.Contains(got.SQL, secret) {
			t.Fatalf("secret %q survived in %q", secret, got.SQL)
		}
	})
}

func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// escape writes s for a literal whose backslash escapes.
func escape(s string, quote byte) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return strings.ReplaceAll(s, string(quote), `\`+string(quote))
}

func myQuote(s string, quote byte) string { return string(quote) + escape(s, quote) + string(quote) }

// bare reports whether s can be a connection string's unquoted value.
func bare(s string) bool { return s != "" && !strings.ContainsAny(s, " \t\n\r\f\v'\\") }

func ExampleRedact() {
	r := Redact(MySQL, "CREATE USER 'app'@'%' IDENTIFIED BY 'hunter2'")
	fmt.Println(r.SQL, r.Redacted)
	// Output: CREATE USER 'app'@'%' IDENTIFIED BY '[redacted]' true
}
