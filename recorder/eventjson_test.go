package recorder

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sameAsMarshal checks that appendEvent writes what encoding/json would,
// as a reader of events.jsonl sees it: the same fields, present or
// omitted, with the same values.
func sameAsMarshal(t *testing.T, ev Event) {
	t.Helper()
	want, wantErr := json.Marshal(ev)
	got, err := appendEvent([]byte("prefix"), &ev)
	if wantErr != nil {
		require.Error(t, err)
		require.Equal(t, "prefix", string(got), "a failed event leaves the buffer as it was")
		return
	}
	require.NoError(t, err)
	require.Equal(t, "prefix", string(got[:6]))
	got = got[6:]
	require.True(t, json.Valid(got), "%s", got)
	var wantAny, gotAny map[string]any
	require.NoError(t, json.Unmarshal(want, &wantAny))
	require.NoError(t, json.Unmarshal(got, &gotAny))
	require.Equal(t, wantAny, gotAny, "encoding/json: %s\nappendEvent:   %s", want, got)
	var back Event
	require.NoError(t, json.Unmarshal(got, &back))
	require.True(t, back.Time.Equal(ev.Time))
}

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 28, 15, 4, 5, 123456789, time.UTC)
	ch, status, rows, zero := 3, 0, int64(42), int64(0)
	for name, ev := range map[string]Event{
		"bare":  {Time: at, Type: EventNote},
		"zone":  {Time: at.In(time.FixedZone("x", 5*3600+1800)), Type: EventNote, Text: "half-hour zone"},
		"whole": {Time: at.Truncate(time.Second), Type: EventNote},
		"exec":  {Time: at, Type: EventExec, Channel: &ch, Command: `echo "hi" \ <b>&</b>`},
		"sftp":  {Time: at, Type: EventSFTP, Op: "rename", Path: "/tmp/a\nb", To: "/tmp/\u2028c", Bytes: 1 << 40},
		"fwd":   {Time: at, Type: EventForward, Host: "10.0.0.1", Port: 5432, Bytes: -1},
		"query": {Time: at, Type: EventQuery, SQL: "SELECT $1, $2", Statement: "s1", DurationMS: 0.123,
			Params:  []any{"text", nil, int64(-7), uint64(math.MaxUint64), 1.5, float32(0.1), true, []byte{0, 1, 2}, 7, int32(8), uint32(9)},
			Outcome: &Outcome{Tag: "SELECT 42", Rows: &rows}},
		"redacted":      {Time: at, Type: EventQuery, SQL: "ALTER ROLE a PASSWORD '[redacted]'", Statement: "s", Redacted: true},
		"failed":        {Time: at, Type: EventQuery, SQL: "x", Outcome: &Outcome{ErrorCode: "42P01", Error: `relation "x" does not exist`}},
		"empty outcome": {Time: at, Type: EventQuery, SQL: "x", Outcome: &Outcome{}},
		"zero rows":     {Time: at, Type: EventQuery, Outcome: &Outcome{Rows: &zero}},
		"empty params":  {Time: at, Type: EventQuery, Params: []any{}},
		"end":           {Time: at, Type: EventEnd, ExitStatus: &status, Reason: "client closed"},
		"scp file": {Time: at, Type: EventSCP, Channel: &ch, Op: "upload", Path: "/srv/a b", Mode: "0644", Size: &rows,
			Direction: "upload", SHA256: "ab12", Bytes: 42, Outcome: &Outcome{}},
		"forward close": {Time: at, Type: EventForward, Op: "close", Host: "localhost", Port: 7, ToTarget: 5, ToClient: 9, DurationMS: 12.5},
		"data":          {Time: at, Type: EventData, Channel: &ch, Stream: "stdout", Offset: 1 << 33, Bytes: 4096},
		"tx query":      {Time: at, Type: EventQuery, SQL: "insert", Tx: "failed", Outcome: &Outcome{Tag: "INSERT 0 1", Rows: &rows, Bytes: 17}},
		"multi": {Time: at, Type: EventQuery, SQL: "a; b; c", Outcome: &Outcome{ErrorCode: "1142", Error: "denied"},
			Outcomes: []Outcome{{SQL: "a", Tag: "INSERT"}, {SQL: "b", ErrorCode: "1142"}, {SQL: "c", NotExecuted: true}}},
		"cut":          {Time: at, Type: EventQuery, SQL: "INSERT INTO t VALUES ('aaaa", SQLCut: &Cut{Bytes: 10 << 20, SHA256: "ab"}},
		"transaction":  {Time: at, Type: EventTransaction, Op: "rollback", Statements: 3},
		"notification": {Time: at, Type: EventNotification, Notification: &Notification{Channel: "jobs", Payload: "42", PID: 7}},
		"cancel":       {Time: at, Type: EventCancel, From: "6b16c3e1 (10.0.0.9:5000)"},
		"command":      {Time: at, Type: EventCommand, Channel: &ch, Command: "ls -l", Source: "terminal"},
		"exec end": {Time: at, Type: EventExecEnd, Channel: &ch, Signal: "KILL", Streams: map[string]ExecStream{
			"stdin": {Bytes: 10, SHA256: "ff", Captured: 0, NotCaptured: "exec_capture_stdin off"}, "stdout": {Bytes: 1 << 30, Captured: 1 << 24, Truncated: true}}},
		"not utf8": {Time: at, Type: EventQuery, SQL: "SELECT '\xff\xfe\xc3'", Params: []any{"\x00\x1b[31m\x7f"}},
		"floats": {Time: at, Type: EventQuery, DurationMS: 1e21, Params: []any{1e-7, 1e20, -0.0, 123456789.125,
			float32(1e-7), float32(3e38), 5e-324, math.MaxFloat64}},
		"odd param":    {Time: at, Type: EventQuery, Params: []any{map[string]string{"undecoded": "short packet"}}},
		"binary param": {Time: at, Type: EventQuery, Params: []any{map[string]string{"base64": "AAEC"}, map[string]string{"z": "1", "a": "<2>", "m": ""}, map[string]string{}}},
		"other map":    {Time: at, Type: EventQuery, Params: []any{map[string]any{"a": 1}}},
		"nan":          {Time: at, Type: EventQuery, DurationMS: math.NaN()},
		"inf param":    {Time: at, Type: EventQuery, Params: []any{math.Inf(-1)}},
		"bad channel":  {Time: at, Type: EventQuery, Params: []any{make(chan int)}},
		"year 10000":   {Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Type: EventNote},
	} {
		t.Run(name, func(t *testing.T) { sameAsMarshal(t, ev) })
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("SELECT 1", "s", "SELECT 1", "", int64(1), 0.5, int64(3), "p\x00", -1.25e-9)
	f.Add("", "", "", "42P01", int64(0), 0.0, int64(0), "\xf0\x9f\x98", 1e300)
	f.Fuzz(func(t *testing.T, sql, stmt, tag, code string, rows int64, dur float64, n int64, param string, f64 float64) {
		ev := Event{Time: time.Unix(0, n).UTC(), Type: EventQuery, SQL: sql, Statement: stmt, DurationMS: dur,
			Bytes: n, Params: []any{param, n, f64, nil, float32(f64), uint64(n)}}
		if tag != "" || code != "" {
			ev.Outcome = &Outcome{Tag: tag, ErrorCode: code, Error: sql}
			if rows != 0 {
				ev.Outcome.Rows = &rows
			}
		}
		sameAsMarshal(t, ev)
	})
}

// BenchmarkEventEncode compares a statement's event written by appendEvent
// and by json.Marshal, which Session.Event used before.
func BenchmarkEventEncode(b *testing.B) {
	rows := int64(1)
	ev := Event{Time: time.Now(), Type: EventQuery, SQL: "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
		Params: []any{"12345"}, DurationMS: 0.087, Outcome: &Outcome{Tag: "SELECT 1", Rows: &rows}}
	b.Run("appendEvent", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendEvent(buf[:0], &ev)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(ev)
		}
	})
}
