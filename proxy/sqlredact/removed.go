package sqlredact

import "slices"

// Removed is what redaction took out of a statement, kept by a proxy for
// as long as the statement runs: the parameters in password positions, to
// redact the values bound to them, and the secrets, to scrub from an error
// message that quotes them. A statement with nothing removed has a nil one.
type Removed struct {
	Params  []int    // the parameters ($n, ?) in password positions
	Secrets []string // what was removed
}

// Statement is sql as it may be recorded, and what was removed (nil for
// nothing).
func Statement(d Dialect, sql string) (string, *Removed) {
	r := Redact(d, sql)
	if !r.Redacted && r.Params == nil {
		return sql, nil
	}
	return r.SQL, &Removed{Params: r.Params, Secrets: r.Secrets}
}

// Bound redacts, in place, the values bound to a statement from which rm
// was removed (nil: nothing), and returns what an execution of it removed.
func Bound(d Dialect, values []any, rm *Removed) *Removed {
	var at []int
	if rm != nil {
		at = rm.Params
	}
	secrets, changed := Values(d, values, at)
	switch {
	case secrets != nil:
		var kept []string
		if rm != nil {
			kept = rm.Secrets
		}
		return &Removed{Params: at, Secrets: append(slices.Clip(kept), secrets...)}
	case changed && rm == nil:
		return &Removed{}
	}
	return rm
}

// Scrub is msg without the secrets rm holds (nil: msg as it is).
func (rm *Removed) Scrub(msg string) string {
	if rm == nil {
		return msg
	}
	return Scrub(msg, rm.Secrets)
}
