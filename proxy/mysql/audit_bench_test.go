package mysql

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// auditExchange is one command and its response as the pump sees them:
// the client's bytes and the target's.
type auditExchange struct {
	client, target []byte
}

// benchColDef is a column definition as MariaDB sends it for
// orders.amount.
var benchColDef = func() []byte {
	b := []byte{3, 'd', 'e', 'f'}
	for _, s := range []string{"bench", "orders", "orders", "amount", "amount"} {
		b = append(append(b, byte(len(s))), s...)
	}
	return append(b, 0x0c, 0x3f, 0, 0x0b, 0, 0, 0, typeLongLong, 0x01, 0x10, 0, 0, 0)
}()

// benchEnd is the packet that ends column definitions (EOF) or rows (EOF,
// or an OK with header 0xFE under DEPRECATE_EOF).
func benchEnd(deprecateEOF bool) []byte {
	if deprecateEOF {
		return []byte{hdrEOF, 0, 0, statusAutocommit, 0, 0, 0}
	}
	return []byte{hdrEOF, 0, 0, statusAutocommit, 0}
}

// benchResult is the target's bytes for one column and rows.
func benchResult(deprecateEOF bool, rows ...[]byte) []byte {
	packets := [][]byte{{1}, benchColDef}
	if !deprecateEOF {
		packets = append(packets, benchEnd(false))
	}
	packets = append(append(packets, rows...), benchEnd(deprecateEOF))
	var seq byte = 1
	var out []byte
	for _, p := range packets {
		out = appendPacket(out, &seq, p)
	}
	return out
}

func benchCommand(payload []byte) []byte {
	var seq byte
	return appendPacket(nil, &seq, payload)
}

const (
	benchStmtID  = 7
	benchStmtSQL = "SELECT amount FROM orders WHERE id = ? AND customer = ? AND created < ?"
)

// benchPrepare prepares benchStmtSQL: 3 parameters, 1 column.
func benchPrepare(deprecateEOF bool) auditExchange {
	ok := []byte{hdrOK, benchStmtID, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0}
	packets := [][]byte{ok, benchColDef, benchColDef, benchColDef}
	if !deprecateEOF {
		packets = append(packets, benchEnd(false))
	}
	packets = append(packets, benchColDef)
	if !deprecateEOF {
		packets = append(packets, benchEnd(false))
	}
	var seq byte = 1
	var target []byte
	for _, p := range packets {
		target = appendPacket(target, &seq, p)
	}
	return auditExchange{benchCommand(append([]byte{comStmtPrepare}, benchStmtSQL...)), target}
}

// benchExchanges are a point select in the text protocol and an execute
// of benchStmtSQL with a BIGINT, a VARCHAR and a DATETIME, each with a
// one-row result.
func benchExchanges(deprecateEOF bool) []auditExchange {
	query := auditExchange{
		benchCommand([]byte("\x03SELECT amount FROM orders WHERE id = 17")),
		benchResult(deprecateEOF, []byte{5, '1', '2', '.', '5', '0'}),
	}
	params := binary.LittleEndian.AppendUint64(nil, 17)
	params = append(params, 9, 'c', 'u', 's', 't', 'o', 'm', 'e', 'r', '7')
	params = append(params, 7, 0xea, 0x07, 11, 28, 9, 30, 15)
	exec := append([]byte{comStmtExecute}, executeBody(benchStmtID, 0, true,
		[]byte{typeLongLong, 0, 0xfd, 0, typeDateTime, 0}, params)...)
	row := binary.LittleEndian.AppendUint64([]byte{hdrOK, 0}, math.Float64bits(12.5))
	return []auditExchange{query, {benchCommand(exec), benchResult(deprecateEOF, row)}}
}

// auditBench is a session's audit driven by the flows the pump calls.
type auditBench struct {
	a     *audit
	cmds  *commandScanner
	flow  func([]byte) error
	spare []recorder.Event
}

func newAuditBench(deprecateEOF bool) *auditBench {
	a := newAudit(time.Now, deprecateEOF)
	ss := &session{srv: &Server{}, audit: a}
	ab := &auditBench{a: a, cmds: &commandScanner{ss: ss, max: defaultMaxMessage}}
	t := newTargetScanner(ss)
	ab.flow = func(p []byte) error { _, err := t.flow(nil, p); return err }
	return ab
}

// run passes ex through the flows as the pump would.
func (ab *auditBench) run(ex auditExchange) error {
	if _, err := ab.cmds.flow(nil, ex.client); err != nil {
		return err
	}
	return ab.flow(ex.target)
}

// take hands over the completed events, as flushEvents does.
func (ab *auditBench) take() []recorder.Event {
	evs := ab.a.take(ab.spare)
	ab.spare = evs
	return evs
}

// TestAuditBenchExchanges checks the benchmark's exchanges record what a
// session records for them.
func TestAuditBenchExchanges(t *testing.T) {
	for _, deprecateEOF := range []bool{false, true} {
		ab := newAuditBench(deprecateEOF)
		require.NoError(t, ab.run(benchPrepare(deprecateEOF)))
		exchanges := benchExchanges(deprecateEOF)
		for _, ex := range exchanges {
			require.NoError(t, ab.run(ex))
		}
		assert.False(t, ab.a.inFlight(), "every response read")
		evs := ab.take()
		require.Len(t, evs, 2)
		one := int64(1)
		for i, want := range []recorder.Event{
			{SQL: "SELECT amount FROM orders WHERE id = 17"},
			{SQL: benchStmtSQL, Statement: "7", Params: []any{int64(17), "customer7", "2026-11-28 09:30:15"}},
		} {
			got := evs[i]
			assert.False(t, got.Time.IsZero(), "time")
			assert.GreaterOrEqual(t, got.DurationMS, 0.0)
			got.Time, got.DurationMS = time.Time{}, 0
			want.Type, want.Tx = recorder.EventQuery, "idle"
			want.Outcome = &recorder.Outcome{Tag: tagRows, Rows: &one, Bytes: int64(len(exchanges[i].target))} // every byte of the response
			assert.Equal(t, want, got, "deprecateEOF %v: event %d", deprecateEOF, i)
		}
	}
}

// BenchmarkAuditQuery is the bastion's audit work for one statement and
// its one-row result, on the pump's goroutine: cutting and recording the
// command, following the response, handing the event over. "varied"
// alternates two texts, as a client that inlines its values does.
func BenchmarkAuditQuery(b *testing.B) {
	for _, deprecateEOF := range []bool{false, true} {
		name := "eof"
		if deprecateEOF {
			name = "deprecate_eof"
		}
		exchanges := benchExchanges(deprecateEOF)
		other := exchanges[0]
		other.client = benchCommand([]byte("\x03SELECT amount FROM orders WHERE id = 18"))
		for _, bench := range []struct {
			kind string
			ex   []auditExchange
		}{
			{"query", exchanges[:1]},
			{"varied", []auditExchange{exchanges[0], other}},
			{"execute", exchanges[1:]},
		} {
			b.Run(name+"/"+bench.kind, func(b *testing.B) {
				ab := newAuditBench(deprecateEOF)
				require.NoError(b, ab.run(benchPrepare(deprecateEOF)))
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					if err := ab.run(bench.ex[n%len(bench.ex)]); err != nil {
						b.Fatal(err)
					}
					// The flusher takes events every 25 ms: many at once.
					if n++; n%64 == 0 {
						ab.take()
					}
				}
			})
		}
	}
}

// TestTemporalText holds DATE/DATETIME/TIME parameters to the text fmt
// gave them before they were formatted by hand.
func TestTemporalText(t *testing.T) {
	dateTimes := [][]byte{
		{0},
		{4, 0xea, 0x07, 2, 29},
		{7, 0xea, 0x07, 11, 28, 9, 30, 15},
		{11, 0xea, 0x07, 11, 28, 9, 30, 15, 0x40, 0xe2, 0x01, 0},
		{11, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{11, 9, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0},
	}
	for _, b := range dateTimes {
		got, _, err := temporal(b, dateTime)
		require.NoError(t, err)
		n, v := int(b[0]), b[1:]
		var y, mo, d, h, mi, s, us int
		if n >= 4 {
			y, mo, d = int(binary.LittleEndian.Uint16(v)), int(v[2]), int(v[3])
		}
		if n >= 7 {
			h, mi, s = int(v[4]), int(v[5]), int(v[6])
		}
		if n >= 11 {
			us = int(binary.LittleEndian.Uint32(v[7:]))
		}
		want := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s)
		if us > 0 {
			want += fmt.Sprintf(".%06d", us)
		}
		assert.Equal(t, want, got, "% x", b)
	}
	times := [][]byte{
		{},
		{0, 0, 0, 0, 0, 0, 0, 0},
		{1, 1, 0, 0, 0, 3, 4, 5},
		{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{1, 0, 0, 0, 0, 0, 59, 59, 1, 0, 0, 0},
	}
	for _, v := range times {
		want := "00:00:00"
		if len(v) >= 8 {
			sign := ""
			if v[0] == 1 {
				sign = "-"
			}
			want = fmt.Sprintf("%s%02d:%02d:%02d", sign, int(binary.LittleEndian.Uint32(v[1:]))*24+int(v[5]), v[6], v[7])
			if len(v) >= 12 {
				if us := binary.LittleEndian.Uint32(v[8:]); us > 0 {
					want += fmt.Sprintf(".%06d", us)
				}
			}
		}
		assert.Equal(t, want, formatTime(v), "% x", v)
	}
}

// FuzzScannerInPlace holds the scanner to handing over the same packets
// whether they lie whole in one read (handed over in place) or span reads
// (copied).
func FuzzScannerInPlace(f *testing.F) {
	f.Add(benchResult(false, []byte{5, '1', '2', '.', '5', '0'}), uint8(2))
	f.Add(stream([]byte{hdrOK, 0, 0}, nil, make([]byte, keepWhole+1), []byte{hdrEOF, 1}), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		collect := func(step int) (out [][]byte) {
			s := &packetScanner{handle: func(size int, b []byte) {
				out = append(out, append(binary.LittleEndian.AppendUint32(nil, uint32(size)), b...))
			}}
			for p := data; len(p) > 0; p = p[min(step, len(p)):] {
				s.feed(p[:min(step, len(p))])
			}
			return out
		}
		assert.Equal(t, collect(int(chunk)+1), collect(len(data)+1))
	})
}

// TestAuditPipelined sends commands before the responses to earlier ones
// came, as a pipelining client does: each response goes to its command,
// in order, while the audit reuses its queue and commands.
func TestAuditPipelined(t *testing.T) {
	a := newAudit(time.Now, true)
	s := &packetScanner{handle: a.server}
	var want []string
	sent, answered := 0, 0
	send := func(n int) {
		for range n {
			q := fmt.Sprintf("SELECT %d", sent)
			require.NoError(t, a.client(append([]byte{comQuery}, q...)))
			want = append(want, q)
			sent++
		}
	}
	answer := func(n int) {
		for range n {
			s.feed(stream([]byte{hdrOK, byte(answered), 0, 2, 0, 0, 0}))
			answered++
		}
	}
	for _, step := range [][2]int{{10, 3}, {10, 15}, {1, 0}, {5, 6}, {40, 39}, {0, 3}} {
		send(step[0])
		answer(step[1])
	}
	assert.False(t, a.inFlight(), "every command answered")
	evs := a.take(nil)
	require.Len(t, evs, len(want))
	for i, ev := range evs {
		assert.Equal(t, want[i], ev.SQL, "event %d", i)
		require.NotNil(t, ev.Outcome)
		require.NotNil(t, ev.Outcome.Rows)
		assert.Equal(t, int64(i), *ev.Outcome.Rows, "event %d: its own response", i)
	}
}
