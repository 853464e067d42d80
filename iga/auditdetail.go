package iga

import (
	"strconv"
	"strings"
)

// AuditDetailFields splits the detail of a decision or refusal event
// ("login app; asked \"ls; id\"; session 6571…") into its "key value"
// parts. A quoted value (asked, as AuditQuote wrote it) is taken whole, so
// a "; " inside the client's own words neither cuts it nor forges a part
// after it. Parts without a value are left out; a key written twice keeps
// its last value. Other events' detail is free text and yields whatever
// looks like a part.
func AuditDetailFields(detail string) map[string]string {
	out := map[string]string{}
	for rest := detail; rest != ""; {
		var part string
		part, rest = nextDetailPart(rest)
		if k, v, ok := strings.Cut(part, " "); ok {
			out[k] = v
		}
	}
	return out
}

// nextDetailPart cuts the first "; "-separated part off s, reading a
// value that starts with a quote to its closing quote first.
func nextDetailPart(s string) (part, rest string) {
	if k, v, ok := strings.Cut(s, " "); ok && strings.HasPrefix(v, `"`) && !strings.Contains(k, ";") {
		if q, err := strconv.QuotedPrefix(v); err == nil {
			n := len(k) + 1 + len(q)
			if end := strings.Index(s[n:], "; "); end >= 0 {
				return s[:n+end], s[n+end+2:]
			}
			return s, ""
		}
	}
	part, rest, _ = strings.Cut(s, "; ")
	return part, rest
}

// IsVerdict reports whether audit events of type typ allow or deny
// something, so that their Allow field means something: decisions, dry
// runs (check), failed logins and refusals (the last two always deny).
func IsVerdict(typ string) bool {
	switch typ {
	case "decision", "check", "login_failed", "refusal":
		return true
	}
	return false
}
