package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sallyport/sallyport/recorder"
)

// auditMessages runs client messages, then server messages, through an
// audit and returns the events it recorded.
func auditMessages(t *testing.T, client, server []pgproto3.Message) []recorder.Event {
	t.Helper()
	a := newAudit(time.Now)
	for _, side := range []struct {
		msgs []pgproto3.Message
		sc   *frameScanner
	}{
		{client, &frameScanner{max: 1 << 20, want: clientWants, handle: a.client}},
		{server, &frameScanner{max: 1 << 20, want: serverWants, handle: a.server}},
	} {
		var b []byte
		for _, m := range side.msgs {
			var err error
			if b, err = m.Encode(b); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.scan(side.sc, b); err != nil {
			t.Fatal(err)
		}
	}
	return a.take()
}

func TestAuditRedacts(t *testing.T) {
	const secret = "Tr0ub4dor&3"
	ready := &pgproto3.ReadyForQuery{TxStatus: 'I'}
	for _, tc := range []struct {
		name         string
		client       []pgproto3.Message
		server       []pgproto3.Message
		wantSQL      string
		wantParams   []any
		wantError    string
		wantRedacted bool
	}{
		{
			name:    "simple query",
			client:  []pgproto3.Message{&pgproto3.Query{String: "ALTER ROLE app PASSWORD '" + secret + "'"}},
			server:  []pgproto3.Message{&pgproto3.CommandComplete{CommandTag: []byte("ALTER ROLE")}, ready},
			wantSQL: "ALTER ROLE app PASSWORD '[redacted]'", wantRedacted: true,
		},
		{
			name:   "error quoting the password",
			client: []pgproto3.Message{&pgproto3.Query{String: "ALTER ROLE app PASSWORD '" + secret + "' '" + secret + "'"}},
			server: []pgproto3.Message{&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42601",
				Message: `syntax error at or near "'` + secret + `'"`}, ready},
			wantSQL: "ALTER ROLE app PASSWORD '[redacted]' '[redacted]'", wantError: `syntax error at or near "'[redacted]'"`,
			wantRedacted: true,
		},
		{
			name: "parameter in a password position",
			client: []pgproto3.Message{&pgproto3.Parse{Name: "s1", Query: "UPDATE accounts SET password = $2 WHERE name = $1"},
				&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("alice"), []byte(secret)}},
				&pgproto3.Execute{}, &pgproto3.Sync{}},
			server: []pgproto3.Message{&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
				&pgproto3.CommandComplete{CommandTag: []byte("UPDATE 1")}, ready},
			wantSQL: "UPDATE accounts SET password = $2 WHERE name = $1", wantParams: []any{"alice", "[redacted]"}, wantRedacted: true,
		},
		{
			name: "connection string bound as text",
			client: []pgproto3.Message{&pgproto3.Parse{Query: "SELECT dblink_connect($1)"},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("host=db password=" + secret)}}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			server: []pgproto3.Message{&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
				&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, ready},
			wantSQL: "SELECT dblink_connect($1)", wantParams: []any{"host=db password=[redacted]"}, wantRedacted: true,
		},
		{
			name: "nothing to redact",
			client: []pgproto3.Message{&pgproto3.Parse{Query: "SELECT $1"},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("password")}}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			server: []pgproto3.Message{&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
				&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, ready},
			wantSQL: "SELECT $1", wantParams: []any{"password"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := auditMessages(t, tc.client, tc.server)
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1: %+v", len(evs), evs)
			}
			ev := evs[0]
			if ev.SQL != tc.wantSQL {
				t.Errorf("got sql %q, want %q", ev.SQL, tc.wantSQL)
			}
			if got, want := strings.TrimSpace(strings.Join(strs(ev.Params), " ")), strings.Join(strs(tc.wantParams), " "); got != want {
				t.Errorf("got params %q, want %q", got, want)
			}
			if ev.Redacted != tc.wantRedacted {
				t.Errorf("got redacted %v, want %v", ev.Redacted, tc.wantRedacted)
			}
			if got := ev.Outcome.Error; got != tc.wantError {
				t.Errorf("got error %q, want %q", got, tc.wantError)
			}
		})
	}
}

func strs(params []any) []string {
	out := make([]string, len(params))
	for i, p := range params {
		out[i], _ = p.(string)
	}
	return out
}
