package proxy

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxLoginName bounds the identity and target names a database client may
// send: registry identity ids are at most 63 characters and target names
// are short; anything longer is refused before it is looked up.
const MaxLoginName = 128

// PlausibleName reports whether a client's user or database could name a
// registry identity or a target: valid UTF-8, printable, at most
// MaxLoginName bytes. Others (newlines, terminal escapes, NULs) would reach
// logs and the audit trail.
func PlausibleName(s string) bool {
	if len(s) > MaxLoginName || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// AuditName is a client-supplied name as the audit trail keeps it: as it
// is when plausible, else quoted and clipped, so that no control character
// reaches `sallyport audit list`.
func AuditName(s string) string {
	if PlausibleName(s) {
		return s
	}
	if len(s) > MaxLoginName {
		s = s[:MaxLoginName]
	}
	return strconv.QuoteToASCII(s)
}
