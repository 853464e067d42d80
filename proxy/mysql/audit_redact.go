package mysql

import "github.com/sallyport/sallyport/recorder"

// redacted marks ev, c's event, as redacted and scrubs its outcomes'
// messages of the passwords c's statement held: MySQL quotes the
// statement near a syntax error.
func (c *command) redacted(ev *recorder.Event) {
	if c.red == nil {
		return
	}
	ev.Redacted = true
	if ev.Outcome != nil {
		ev.Outcome.Error = c.red.Scrub(ev.Outcome.Error)
	}
	for i := range ev.Outcomes {
		ev.Outcomes[i].Error = c.red.Scrub(ev.Outcomes[i].Error)
	}
}
