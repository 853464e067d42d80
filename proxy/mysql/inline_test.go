package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/proxy/internal/rectest"
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
	rec, store, s := rectest.Open(ctx, t, "s-inline", "mysql", 2<<10)
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

	got := rectest.Queries(ctx, t, store, "s-inline")
	assert.Equal(t, sent, got, "every statement once, in order")
}
