package mysql

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

func TestAuditRedacts(t *testing.T) {
	const secret = "Tr0ub4dor&3"
	errSyntax := append([]byte{hdrErr, 0x28, 0x04, '#', '4', '2', '0', '0', '0'},
		"You have an error in your SQL syntax; check the manual near 'USERR u IDENTIFIED BY '"+secret+"'' at line 1"...)
	execute := binary.LittleEndian.AppendUint32([]byte{comStmtExecute}, 1)
	execute = append(execute, 0, 1, 0, 0, 0, 0, 1, 0xfd, 0, 0x08, 0, byte(len(secret)))
	execute = binary.LittleEndian.AppendUint64(append(execute, secret...), 7)
	for _, tc := range []struct {
		name         string
		cmd          []byte
		resp         []byte
		wantSQL      string
		wantParams   string
		wantError    string
		wantRedacted bool
	}{
		{name: "identified by", cmd: []byte("\x03CREATE USER 'u'@'%' IDENTIFIED BY '" + secret + "'"), resp: okFinal,
			wantSQL: "CREATE USER 'u'@'%' IDENTIFIED BY '[redacted]'", wantParams: "[]", wantRedacted: true},
		{name: "syntax error quoting the password", cmd: []byte("\x03CREATE USERR u IDENTIFIED BY '" + secret + "'"), resp: errSyntax,
			wantSQL: "CREATE USERR u IDENTIFIED BY '[redacted]'", wantParams: "[]", wantRedacted: true,
			wantError: "42000: You have an error in your SQL syntax; check the manual near 'USERR u IDENTIFIED BY '[redacted]'' at line 1"},
		{name: "parameter in a password position", cmd: execute, resp: okFinal,
			wantSQL: "UPDATE accounts SET password = ? WHERE id = ?", wantParams: "[[redacted] 7]", wantRedacted: true},
		{name: "nothing to redact", cmd: []byte("\x03SELECT 'password'"), resp: okFinal, wantSQL: "SELECT 'password'", wantParams: "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAudit(time.Now, false)
			a.stmts[1] = &stmt{sql: "UPDATE accounts SET password = ? WHERE id = ?", params: 2}
			if err := a.client(tc.cmd); err != nil {
				t.Fatal(err)
			}
			(&packetScanner{handle: a.server}).feed(stream(tc.resp))
			if len(a.done) != 1 {
				t.Fatalf("got %d events, want 1", len(a.done))
			}
			ev := a.done[0]
			if ev.SQL != tc.wantSQL {
				t.Errorf("got sql %q, want %q", ev.SQL, tc.wantSQL)
			}
			if got := fmt.Sprint(ev.Params); got != tc.wantParams {
				t.Errorf("got params %s, want %s", got, tc.wantParams)
			}
			if ev.Redacted != tc.wantRedacted {
				t.Errorf("got redacted %v, want %v", ev.Redacted, tc.wantRedacted)
			}
			if ev.Outcome.Error != tc.wantError {
				t.Errorf("got error %q, want %q", ev.Outcome.Error, tc.wantError)
			}
		})
	}
}
