package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAuditRepeatedQueryRedacted: a Query repeated as it was (its
// redaction is not computed again) is recorded as redacted each time, and
// the server's error quoting the password is scrubbed each time; a
// different text in between is recorded as itself.
func TestAuditRepeatedQueryRedacted(t *testing.T) {
	const secret = "Tr0ub4dor&3"
	alter := &pgproto3.Query{String: "ALTER ROLE app PASSWORD '" + secret + "' '" + secret + "'"}
	other := &pgproto3.Query{String: "SELECT 1"}
	failed := []pgproto3.Message{&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42601",
		Message: `syntax error at or near "'` + secret + `'"`}, &pgproto3.ReadyForQuery{TxStatus: 'I'}}
	selected := []pgproto3.Message{&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}}
	var server []pgproto3.Message
	for _, m := range [][]pgproto3.Message{failed, failed, selected, failed} {
		server = append(server, m...)
	}
	events := auditMessages(t, []pgproto3.Message{alter, alter, other, alter}, server)
	require.Len(t, events, 4)
	for i, ev := range events {
		if i == 2 {
			assert.Equal(t, "SELECT 1", ev.SQL)
			assert.False(t, ev.Redacted)
			continue
		}
		assert.Equal(t, "ALTER ROLE app PASSWORD '[redacted]' '[redacted]'", ev.SQL, "event %d", i)
		assert.True(t, ev.Redacted, "event %d", i)
		require.NotNil(t, ev.Outcome, "event %d", i)
		assert.Equal(t, `syntax error at or near "'[redacted]'"`, ev.Outcome.Error, "event %d", i)
	}
}
