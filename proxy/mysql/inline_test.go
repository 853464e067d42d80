package mysql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// TestInlineHandOverKeepsEveryStatementInOrder runs a pump session's
// target flow against a recorder whose buffer holds about one statement,
// so the pump's hand-over keeps finding no room and statements wait for
// the timer, which runs meanwhile: every statement, and every command the
// bastion answered itself, is recorded once, in the order sent.
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
		Protocol: "mysql", Login: "sp_test", StartedAt: time.Now()})
	require.NoError(t, err)
	ss := &session{rec: s, audit: newAudit(time.Now, false)}
	stop := ss.startInline()
	target := newTargetScanner(ss)
	var seq byte = 1
	answer := appendPacket(nil, &seq, ok(1, statusAutocommit))
	var sent []string
	waited := 0
	for i := range 300 {
		if i%50 == 7 { // a command the bastion answers, off the pump
			sql := fmt.Sprintf("-- command %#02x", i)
			ss.audit.local(sql, &recorder.Outcome{ErrorCode: "1047"})
			ss.armFlush()
			sent = append(sent, sql)
		}
		sql := fmt.Sprintf("SELECT %d, '%s'", i, strings.Repeat("x", 1800))
		sent = append(sent, sql)
		require.NoError(t, ss.audit.client(append([]byte{comQuery}, sql...)))
		_, err := target.flow(nil, answer)
		require.NoError(t, err)
		if ss.audit.inFlight() {
			t.Fatal("the OK ends the command")
		}
		ss.audit.mu.Lock()
		if len(ss.audit.done) > 0 {
			waited++
		}
		ss.audit.mu.Unlock()
	}
	stop()
	require.NoError(t, s.Close(ctx, recorder.End{Reason: "test done"}))
	require.NoError(t, rec.Shutdown(ctx))
	assert.Positive(t, waited, "the recorder had no room at times")
	assert.Less(t, waited, 300, "statements went to the recorder on the pump")

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
