package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// TestInlineHandOverKeepsEveryStatementInOrder runs a pump session's
// audit against a recorder whose buffer holds one statement at a time,
// so the pump's hand-over keeps finding no room and the statements wait
// for a flush: every one of them is recorded once, in the order sent.
func TestInlineHandOverKeepsEveryStatementInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := recorder.Config{DataDir: t.TempDir(), FailClosed: true, FlushInterval: time.Hour}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	store, err := recorder.NewStore(cfg)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: cfg, Store: store, Key: key, BufferSize: 2 << 10}
	require.NoError(t, rec.Start(ctx))
	s, err := rec.Open(ctx, recorder.SessionMeta{ID: "s-inline", Identity: "svc", Target: "db",
		Protocol: "postgres", Login: "sp_test", StartedAt: time.Now()})
	require.NoError(t, err)
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

	src, err := recorder.FindSession(ctx, store, "s-inline")
	require.NoError(t, err)
	var js bytes.Buffer
	require.NoError(t, recorder.Replay(ctx, src, &js, recorder.ReplayOptions{Format: recorder.FormatJSON}))
	var got []string
	for _, line := range strings.Split(js.String(), "\n") {
		var ev recorder.Event
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Type == recorder.EventQuery {
			got = append(got, ev.SQL)
		}
	}
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
