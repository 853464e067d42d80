package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// linesRecordings plays a JSON replay of fixed lines.
type linesRecordings struct {
	Recordings
	lines []string
}

func (r linesRecordings) Events(_ context.Context, _ string, _ time.Time, w io.Writer) error {
	for _, l := range r.lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// TestTimelineLongLine: an event line of 20 MB (a statement recorded
// whole) shows on the page with its start and its size, and the events
// after it show too.
func TestTimelineLongLine(t *testing.T) {
	huge := strings.Repeat("x", 20<<20)
	long, err := json.Marshal(recorder.Event{Type: recorder.EventQuery, SQL: "INSERT INTO t VALUES ('" + huge + "')"})
	require.NoError(t, err)
	s := &Server{Recordings: linesRecordings{lines: []string{`{"type":"session","session":{"cert_serial":"9"}}`, string(long),
		`{"time":"2026-11-28T10:00:00Z","type":"query","sql":"SELECT 1"}`}}}
	d := sessionDetail{Session: sqlstore.SessionRecord{ID: "s-long"}}
	s.readTimeline(t.Context(), &d)
	require.Len(t, d.Timeline, 2)
	assert.Equal(t, "9", d.CertSerial)
	sql := d.Timeline[0].SQL
	assert.Less(t, len(sql), 128<<10, "the page holds a bounded part")
	assert.True(t, strings.HasPrefix(sql, "INSERT INTO t VALUES ('xxx"))
	assert.True(t, strings.HasSuffix(sql, fmt.Sprintf("… (%d bytes, first 64 KiB shown)", len(huge)+len("INSERT INTO t VALUES ('')"))), "got %q", sql[len(sql)-60:])
	assert.Equal(t, "SELECT 1", d.Timeline[1].SQL)
}

// TestMarkTransactions: a transaction's statements get its fate; an open
// one at the end of the whole timeline is marked so, and a transaction
// whose end was recorded without a transaction event is left unmarked.
func TestMarkTransactions(t *testing.T) {
	q := func(tx string) timelineEvent {
		return timelineEvent{Event: recorder.Event{Type: recorder.EventQuery, Tx: tx}}
	}
	tr := func(op string) timelineEvent {
		return timelineEvent{Event: recorder.Event{Type: recorder.EventTransaction, Op: op}}
	}
	note := timelineEvent{Event: recorder.Event{Type: recorder.EventNote}}
	for _, tc := range []struct {
		name  string
		tl    []timelineEvent
		whole bool
		want  []string
	}{
		{"commit", []timelineEvent{q("idle"), q("in"), note, q("idle"), tr("commit"), q("idle")}, true,
			[]string{"", "committed", "", "committed", "", ""}},
		{"rollback", []timelineEvent{q("in"), q("failed"), q("idle"), tr("rollback")}, true,
			[]string{"rolled back", "rolled back", "rolled back", ""}},
		{"open at the end", []timelineEvent{q("idle"), q("in")}, true, []string{"", "transaction still open at the end"}},
		{"cut timeline", []timelineEvent{q("in"), q("in")}, false, []string{"", ""}},
		{"no transaction event", []timelineEvent{q("in"), q("idle"), q("idle"), q("in"), tr("rollback")}, true,
			[]string{"", "", "", "rolled back", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			markTransactions(tc.tl, tc.whole)
			var got []string
			for _, e := range tc.tl {
				got = append(got, e.TxMark)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
