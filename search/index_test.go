package search_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/search"
	"github.com/stretchr/testify/require"
)

func TestIndexFindsEveryPlace(t *testing.T) {
	for name, registry := range registries(t) {
		t.Run(name, func(t *testing.T) { testFindsEveryPlace(t, newFixture(t, registry)) })
	}
}

func testFindsEveryPlace(t *testing.T, f *fixture) {
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(sec int) time.Time { return start.Add(time.Duration(sec) * time.Second) }
	ch := 1
	f.session("s-ssh", "svc-backup", "ssh", start, func(s *recorder.Session) {
		require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
		require.NoError(t, s.Input(0, []byte("typedmarker\r")))
		require.NoError(t, s.Output(0, []byte("\x1b[1mroot:x:0:0\x1b[0m outmarker\r\n")))
		require.NoError(t, s.Event(recorder.Event{Time: at(5), Type: recorder.EventExec, Channel: &ch, Command: "cat /etc/shadow"}))
		require.NoError(t, s.Data(ch, "stdin", []byte("echo stdinmarker\n")))
		require.NoError(t, s.Event(recorder.Event{Time: at(7), Type: recorder.EventSFTP, Op: "open", Direction: "upload", Path: "/srv/upload/fileMarker.tar"}))
		require.NoError(t, s.Event(recorder.Event{Time: at(8), Type: recorder.EventForward, Op: "open", Host: "10.1.2.3", Port: 5432}))
		require.NoError(t, s.Event(recorder.Event{Time: at(9), Type: recorder.EventNote, Text: "notemarker here"}))
	})
	f.session("s-pg", "svc-pay", "postgres", start, func(s *recorder.Session) {
		require.NoError(t, s.Event(recorder.Event{Time: at(3), Type: recorder.EventQuery, SQL: "SELECT * FROM payments.accounts WHERE id = $1",
			Params: []any{"parammarker-42"}, Outcome: &recorder.Outcome{Tag: "SELECT 1"}}))
	})
	f.session("s-other", "svc-other", "ssh", start, func(s *recorder.Session) {
		require.NoError(t, s.Event(recorder.Event{Time: at(1), Type: recorder.EventNote, Text: "peer 10.1.2.30 read /etc/shadowed"}))
	})
	behind := f.search(search.Query{Text: "payments"}).Behind
	require.Equal(t, 3, behind.Sessions, "three ended sessions are not indexed yet")
	require.Contains(t, behind.String(), "the index is behind: 3 ended session(s)")
	f.ix.Now = func() time.Time { return time.Now().Add(time.Minute) } // past the lag's cache
	n, err := f.idx.Pass(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3, n)

	cases := []struct {
		text    string
		where   search.Where
		session string
		offset  float64 // -1: not checked
	}{
		{"cat /etc/shadow", search.WhereCommand, "s-ssh", 5},
		{"stdinmarker", search.WhereStdin, "s-ssh", -1},
		{"outmarker", search.WhereOutput, "s-ssh", -1},
		{"typedmarker", search.WhereInput, "s-ssh", -1},
		{"payments.accounts", search.WhereQuery, "s-pg", 3},
		{"parammarker-42", search.WhereQuery, "s-pg", 3},
		{"fileMarker", search.WhereFile, "s-ssh", 7},
		{"10.1.2.3", search.WhereForward, "s-ssh", 8},
		{"notemark", search.WhereNote, "s-ssh", 9},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			res := f.search(search.Query{Text: c.text})
			require.Len(t, res.Hits, 1, "hits for %q: %+v", c.text, res.Hits)
			h := res.Hits[0]
			require.Equal(t, c.where, h.Where)
			require.Equal(t, c.session, h.Session)
			if c.offset >= 0 {
				require.InDelta(t, c.offset, h.Offset, 0.01)
			}
			require.NotEmpty(t, h.Marks, "snippet %q has no mark", h.Snippet)
		})
	}
	require.Empty(t, f.search(search.Query{Text: "/etc/shadowy"}).Hits, "a longer word must not match")
	require.Len(t, f.search(search.Query{Text: "/etc/shadow"}).Hits, 2, "cat /etc/shadow, and /etc/shadowed by prefix")
	require.Equal(t, "s-ssh", f.search(search.Query{Text: "/etc/shadow"}).Hits[0].Session, "whole words first")
	require.Empty(t, f.search(search.Query{Text: "etc/shadow.bak"}).Hits)
	require.Len(t, f.search(search.Query{Text: "payments", Identity: "svc-pay"}).Hits, 1)
	require.Empty(t, f.search(search.Query{Text: "payments", Identity: "svc-backup"}).Hits)
	require.Empty(t, f.search(search.Query{Text: "payments", Protocol: "ssh"}).Hits)
	require.Empty(t, f.search(search.Query{Text: "payments", Visible: []string{"svc-backup"}}).Hits)
	require.Empty(t, f.search(search.Query{Text: "payments", Visible: []string{}}).Hits)
	require.Empty(t, f.search(search.Query{Text: "payments", Breakglass: true}).Hits)
	require.Empty(t, f.search(search.Query{Text: "payments", Where: []search.Where{search.WhereCommand}}).Hits)
	require.False(t, f.search(search.Query{Text: "payments"}).Behind.Behind())
	testHostileText(t, f)
}

// testHostileText: operators, quotes, wildcards, unicode and long text
// give hits or a QueryError, never a database error.
func testHostileText(t *testing.T, f *fixture) {
	texts := []string{`"`, `""`, `a"b`, `NEAR(a b)`, `a OR b`, `-x`, `col:x`, `^x`, `x*`, `*`, `%`, `%x%`, `'; DROP TABLE sessions; --`,
		`\`, `:*`, `a & b | !c`, `<->`, `(x`, "grüße", "日本語", "🙂", strings.Repeat("ab ", 3000), "", " ", "a\x00b", `$1`, `?`}
	for _, text := range texts {
		_, err := f.ix.Search(context.Background(), search.Query{Text: text})
		if err != nil && !errors.Is(err, search.ErrBadQuery) {
			t.Errorf("search %.30q: %v is not a QueryError", text, err)
		}
	}
}
