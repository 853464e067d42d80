package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/proxy/internal/rectest"
	"github.com/sallyport/sallyport/recorder"
)

// TestInlineHandOverKeepsEveryStatementInOrder runs a pump session's
// audit against a recorder whose buffer holds one statement at a time,
// so the pump's hand-over keeps finding no room and the statements wait
// for a flush: every one of them is recorded once, in the order sent.
func TestInlineHandOverKeepsEveryStatementInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, store, s := rectest.Open(ctx, t, "s-inline", "postgres", 2<<10)
	a := newAudit(time.Now)
	a.start(s)
	a.inline = true
	fromClient := &frameScanner{max: 1 << 20, want: clientWants, handle: a.client}
	fromTarget := &frameScanner{max: 1 << 20, want: serverWants, handle: a.server}
	answer := mustEncode(t, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	var sent []string
	waited := 0
	for i := range 300 {
		sql := fmt.Sprintf("SELECT %d, '%s'", i, strings.Repeat("x", 1800))
		sent = append(sent, sql)
		_, err := a.scan(fromClient, mustEncode(t, &pgproto3.Query{String: sql}))
		require.NoError(t, err)
		n, err := a.scan(fromTarget, answer)
		require.NoError(t, err)
		if n > 0 {
			waited++
		}
		if n >= eventBatch { // as the pump's hand-over does
			require.NoError(t, a.flush())
		}
	}
	require.NoError(t, a.flush())
	require.NoError(t, s.Close(ctx, recorder.End{Reason: "test done"}))
	require.NoError(t, rec.Shutdown(ctx))
	assert.Positive(t, waited, "the recorder had no room at times")

	got := rectest.Queries(ctx, t, store, "s-inline")
	assert.Equal(t, sent, got, "every statement once, in order")
}

func mustEncode(t *testing.T, msgs ...pgproto3.Message) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		b, err = m.Encode(b)
		require.NoError(t, err)
	}
	return b
}
