package mysql

import (
	"testing"
	"time"
)

// TestAuditRepeatedStatementRedacted: a statement repeated as it was (its
// redaction is not computed again) is recorded redacted each time, with
// the server's error quoting the password scrubbed each time; a different
// text in between does not mix the two up.
func TestAuditRepeatedStatementRedacted(t *testing.T) {
	const secret = "Tr0ub4dor&3"
	create := []byte("\x03CREATE USERR u IDENTIFIED BY '" + secret + "'")
	errSyntax := append([]byte{hdrErr, 0x28, 0x04, '#', '4', '2', '0', '0', '0'},
		"You have an error in your SQL syntax; check the manual near 'USERR u IDENTIFIED BY '"+secret+"'' at line 1"...)
	const (
		wantSQL   = "CREATE USERR u IDENTIFIED BY '[redacted]'"
		wantError = "42000: You have an error in your SQL syntax; check the manual near 'USERR u IDENTIFIED BY '[redacted]'' at line 1"
	)
	a := newAudit(time.Now, false)
	for i, cmd := range [][]byte{create, create, []byte("\x03SELECT 1"), create} {
		if err := a.client(cmd); err != nil {
			t.Fatal(err)
		}
		resp := errSyntax
		if i == 2 {
			resp = okFinal
		}
		(&packetScanner{handle: a.server}).feed(stream(resp))
	}
	if len(a.done) != 4 {
		t.Fatalf("got %d events, want 4", len(a.done))
	}
	for i, ev := range a.done {
		if i == 2 {
			if ev.SQL != "SELECT 1" || ev.Redacted {
				t.Errorf("event 2: got sql %q redacted %v, want SELECT 1 as sent", ev.SQL, ev.Redacted)
			}
			continue
		}
		if ev.SQL != wantSQL || !ev.Redacted {
			t.Errorf("event %d: got sql %q redacted %v, want %q redacted", i, ev.SQL, ev.Redacted, wantSQL)
		}
		if ev.Outcome == nil || ev.Outcome.Error != wantError {
			t.Errorf("event %d: got outcome %+v, want error %q", i, ev.Outcome, wantError)
		}
	}
}
