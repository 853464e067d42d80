package mysql

import (
	"slices"

	"github.com/sallyport/sallyport/proxy/sqlredact"
	"github.com/sallyport/sallyport/recorder"
)

// redaction is what the audit removed from a statement before recording
// it (see proxy/sqlredact); a statement with none has a nil one, and its
// event says redacted: true when it has one.
type redaction struct {
	params  []int    // the parameters (?) in password positions
	secrets []string // what was removed, to scrub from the outcome's message
}

// redact is sql as it may be recorded, and what was removed.
func redact(sql string) (string, *redaction) {
	r := sqlredact.Redact(sqlredact.MySQL, sql)
	if !r.Redacted && r.Params == nil {
		return sql, nil
	}
	return r.SQL, &redaction{params: r.Params, secrets: r.Secrets}
}

// redactParams redacts the values bound to a statement whose redaction
// is red (nil: none) and returns the execution's redaction.
func redactParams(params []any, red *redaction) *redaction {
	var at []int
	if red != nil {
		at = red.params
	}
	secrets, changed := sqlredact.Values(sqlredact.MySQL, params, at)
	switch {
	case secrets != nil:
		return &redaction{params: at, secrets: append(slices.Clip(red.secrets), secrets...)}
	case changed && red == nil:
		return &redaction{}
	}
	return red
}

// redacted marks ev, c's event, as redacted and scrubs its outcome's
// message of the passwords c's statement held: MySQL quotes the
// statement near a syntax error.
func (c *command) redacted(ev *recorder.Event) {
	if c.red == nil {
		return
	}
	ev.Redacted = true
	if ev.Outcome != nil {
		ev.Outcome.Error = sqlredact.Scrub(ev.Outcome.Error, c.red.secrets)
	}
}
