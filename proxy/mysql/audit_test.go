package mysql

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	colDef   = []byte{3, 'd', 'e', 'f', 0, 0, 0, 1, 'c', 0, 0x0c, 0x21, 0, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0}
	eofOK    = []byte{hdrEOF, 0, 0, 2, 0}
	eofMore  = []byte{hdrEOF, 0, 0, 2 | statusMoreResults, 0}
	okEnd    = []byte{hdrEOF, 0, 0, 2, 0, 0, 0} // an OK that ends rows (DEPRECATE_EOF)
	okMore   = []byte{hdrOK, 3, 0, 2 | statusMoreResults, 0, 0, 0}
	okFinal  = []byte{hdrOK, 5, 0, 2, 0, 0, 0}
	errDenid = append([]byte{hdrErr, 0x76, 0x04, '#', '4', '2', '0', '0', '0'}, "denied"...)
)

// TestAuditResponses feeds one command and its response packets, then a
// ping, and checks the outcome recorded and that the queue drained.
func TestAuditResponses(t *testing.T) {
	cursorEOF := []byte{hdrEOF, 0, 0, 2 | statusCursorExists, 0}
	tests := []struct {
		name         string
		deprecateEOF bool
		cmd          []byte
		resp         [][]byte
		want         string // tag rows, or error code
	}{
		{"text result set", false, []byte("\x03SELECT c"), [][]byte{{1}, colDef, eofOK, {1, 'a'}, {1, 'b'}, eofOK}, "ROWS 2"},
		{"text result set, DEPRECATE_EOF", true, []byte("\x03SELECT c"), [][]byte{{1}, colDef, {1, 'a'}, okEnd}, "ROWS 1"},
		{"a 0xFE packet of 9 bytes or more is a row", false, []byte("\x03SELECT c"), [][]byte{{1}, colDef, eofOK, {hdrEOF, 1, 2, 3, 4, 5, 6, 7, 8, 9}, eofOK}, "ROWS 1"},
		{"multi-results end with the last", false, []byte("\x03CALL p()"), [][]byte{okMore, {1}, colDef, eofOK, {1, 'a'}, eofMore, okFinal}, "OK 5"},
		{"error in the rows", false, []byte("\x03SELECT c"), [][]byte{{1}, colDef, eofOK, {1, 'a'}, errDenid}, "1142"},
		{"error at once", false, []byte("\x03SELECT c"), [][]byte{errDenid}, "1142"},
		{"OK", false, []byte("\x03DELETE"), [][]byte{okFinal}, "OK 5"},
		{"USE", false, []byte("\x02db"), [][]byte{okFinal}, "OK 5"},
		{"execute with a cursor", false, []byte{comStmtExecute, 1, 0, 0, 0, 1, 1, 0, 0, 0}, [][]byte{{1}, colDef, cursorEOF}, "CURSOR 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAudit(time.Now, tt.deprecateEOF)
			a.stmts[1] = &stmt{sql: "SELECT c", params: 0}
			require.NoError(t, a.client(tt.cmd))
			s := &packetScanner{handle: a.server}
			s.feed(stream(tt.resp...))
			require.Len(t, a.done, 1, "one event recorded")
			o := a.done[0].Outcome
			require.NotNil(t, o)
			got := o.ErrorCode
			if got == "" {
				got = o.Tag + " " + strconv.FormatInt(derefOr(o.Rows), 10)
			}
			assert.Equal(t, tt.want, got, "outcome")
			require.NoError(t, a.client([]byte{comPing}))
			s.feed(stream(okFinal))
			assert.False(t, a.inFlight(), "the queue must drain: the next response is matched to the next command")
		})
	}
}

func TestAuditRefusesLocalInfile(t *testing.T) {
	a := newAudit(time.Now, false)
	require.NoError(t, a.client([]byte("\x03LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t")))
	s := &packetScanner{handle: a.server}
	s.feed(stream(append([]byte{hdrLocalInfile}, "/home/me/.ssh/id_ed25519"...)))
	assert.Contains(t, a.serverViolation(), "LOAD DATA LOCAL", "a file request from the target must stop the relay")
	require.Len(t, a.done, 1, "the statement is recorded with the refusal")
	assert.Contains(t, a.done[0].Outcome.Error, "client file")
}

func TestAuditPrepare(t *testing.T) {
	for _, deprecateEOF := range []bool{false, true} {
		a := newAudit(time.Now, deprecateEOF)
		require.NoError(t, a.client([]byte("\x16SELECT ? FROM t WHERE x = ?")))
		resp := [][]byte{{0, 9, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0}, colDef, colDef}
		if !deprecateEOF {
			resp = append(resp, eofOK)
		}
		resp = append(resp, colDef)
		if !deprecateEOF {
			resp = append(resp, eofOK)
		}
		s := &packetScanner{handle: a.server}
		s.feed(stream(resp...))
		assert.False(t, a.inFlight(), "deprecateEOF %v: prepare answered", deprecateEOF)
		require.Contains(t, a.stmts, uint32(9))
		assert.Equal(t, 2, a.stmts[9].params)
		assert.Empty(t, a.done, "a successful prepare is not an event; its executes are")

		exec := append([]byte{comStmtExecute, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 0b10, 1, typeTiny, 0, typeNull, 0}, 5)
		require.NoError(t, a.client(exec))
		s.feed(stream([]byte{1}, colDef))
		if !deprecateEOF {
			s.feed(stream(eofOK))
		}
		s.feed(stream(append([]byte{0, 0}, 5)))
		if deprecateEOF {
			s.feed(stream(okEnd))
		} else {
			s.feed(stream(eofOK))
		}
		require.Len(t, a.done, 1)
		assert.Equal(t, "SELECT ? FROM t WHERE x = ?", a.done[0].SQL, "MariaDB's 'last prepared' id resolves")
		assert.Equal(t, []any{int64(5), nil}, a.done[0].Params)
		assert.Equal(t, "9", a.done[0].Statement)
	}
}

func derefOr(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// TestParseKill: the statements a client's Ctrl-C and an operator send are
// recognised as KILLs, whatever their spacing and case, and nothing else is.
func TestParseKill(t *testing.T) {
	query := func(s string) []byte { return append([]byte{comQuery}, s...) }
	tests := []struct {
		in        []byte
		ok, isQry bool
		id        uint32
	}{
		{query("KILL QUERY 42"), true, true, 42},
		{query(" \t\r\nkill query 7"), true, true, 7},
		{query("KILL CONNECTION 9"), true, false, 9},
		{query("kill 12"), true, false, 12},
		{[]byte{comProcessKill, 5, 0, 0, 0}, true, false, 5},
		{query("KIL"), false, false, 0},
		{query("   "), false, false, 0},
		{query("SELECT 'KILL 1'"), false, false, 0},
		{query("KILL QUERY 99999999999"), false, false, 0}, // not a 32-bit id
	}
	for _, tt := range tests {
		k, ok := parseKill(tt.in)
		if ok != tt.ok || k.query != tt.isQry || k.id != tt.id {
			t.Errorf("parseKill(%q) = %+v, %v; want id %d, query %v, %v", tt.in, k, ok, tt.id, tt.isQry, tt.ok)
		}
	}
}
