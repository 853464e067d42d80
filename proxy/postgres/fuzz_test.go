package postgres

import (
	"bytes"
	"encoding/binary"
	"flag"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/fuzzseed"
)

// FuzzStartup feeds arbitrary first packets to the startup decoder: it
// must never panic, never accept a packet outside the length bounds, and
// every accepted StartupMessage must be protocol 3.
func FuzzStartup(f *testing.F) {
	for _, seed := range [][]byte{
		startupSeed(196608, "user", "svc", "database", "analytics"),
		startupSeed(196610, "user", "svc", "_pq_.x", "1"),
		binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), codeSSL),
		binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 16), codeCancel),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		code, body, err := readStartupPacket(bytes.NewReader(data))
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(body)+8, maxStartupPacket)
		switch code {
		case codeSSL, codeGSSENC:
		case codeCancel:
			var c pgproto3.CancelRequest
			_ = c.Decode(append(binary.BigEndian.AppendUint32(nil, code), body...))
		default:
			st, err := parseStartup(code, body)
			if err == nil {
				assert.Equal(t, uint16(3), st.major)
			}
		}
	})
}

// FuzzRelayFrames feeds arbitrary byte streams, split at arbitrary points,
// through both directions' scanners and audits: no panic, and the messages
// seen do not depend on how the stream was split into reads.
func FuzzRelayFrames(f *testing.F) {
	var q []byte
	q, _ = (&pgproto3.Query{String: "SELECT 1"}).Encode(q)
	q, _ = (&pgproto3.Parse{Name: "s", Query: "SELECT $1"}).Encode(q)
	q, _ = (&pgproto3.Bind{PreparedStatement: "s", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{1, 2}}}).Encode(q)
	q, _ = (&pgproto3.Execute{}).Encode(q)
	q, _ = (&pgproto3.Sync{}).Encode(q)
	f.Add(q, uint16(3))
	var s []byte
	s, _ = (&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}).Encode(s)
	s, _ = (&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42501", Message: "no"}).Encode(s)
	s, _ = (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(s)
	f.Add(s, uint16(1))
	f.Add([]byte{'D', 0, 0, 0, 4, 'Z', 0, 0, 0, 5}, uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole := scanAll(data, len(data)+1)
		parts := scanAll(data, int(split%64)+1)
		assert.Equal(t, whole, parts, "messages depend on read boundaries")
	})
}

// scanAll runs data through a client and a server scanner in chunks of
// step bytes and returns the (type, size) sequence both saw.
func scanAll(data []byte, step int) [][2]int {
	a := newAudit(time.Now)
	var seen [][2]int
	tap := func(h func(byte, int, []byte) error) func(byte, int, []byte) error {
		return func(typ byte, size int, body []byte) error {
			seen = append(seen, [2]int{int(typ), size})
			_ = h(typ, size, body)
			return nil
		}
	}
	c := &frameScanner{max: 1 << 16, want: clientWants, handle: tap(a.client)}
	sv := &frameScanner{max: 1 << 16, want: serverWants, handle: tap(a.server)}
	for _, sc := range []*frameScanner{c, sv} {
		for i := 0; i < len(data); i += step {
			if sc.feed(data[i:min(i+step, len(data))]) != nil {
				seen = append(seen, [2]int{-1, 0})
				break
			}
		}
	}
	return seen
}

func startupSeed(code uint32, kv ...string) []byte {
	body := binary.BigEndian.AppendUint32(nil, code)
	for _, s := range kv {
		body = append(append(body, s...), 0)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

func TestFrameScannerSplitsAnywhere(t *testing.T) {
	var msgs []byte
	msgs, _ = (&pgproto3.Query{String: "SELECT 1"}).Encode(msgs)
	msgs, _ = (&pgproto3.Sync{}).Encode(msgs)
	msgs = append(msgs, 'd', 0, 0, 0, 7, 'a', 'b', 'c')
	for step := 1; step <= len(msgs); step++ {
		t.Run("", func(t *testing.T) {
			got := scanAll(msgs, step)
			want := [][2]int{{'Q', 9}, {'S', 0}, {'d', 3}}
			assert.Equal(t, want, got[:3], "step %d", step)
		})
	}
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// TestFuzzCorpus keeps the seed corpus of the fuzz targets in
// testdata/fuzz, which `go test` runs as regression inputs: each seed below
// is a file there (go test -run TestFuzzCorpus -update-corpus writes them).
// Inputs the fuzzer found are added there by hand, under their own names.
func TestFuzzCorpus(t *testing.T) {
	fuzzseed.Check(t, fuzzseed.Corpus{
		"FuzzStartup":     startupCorpus(),
		"FuzzRelayFrames": framesCorpus(),
	}, *updateCorpus)
}

func request(code uint32, body ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(binary.BigEndian.AppendUint32(b, code), body...)
}

// startupCorpus is first packets as clients send them, and broken ones.
func startupCorpus() map[string][]any {
	one := func(b []byte) []any { return []any{b} }
	key32 := bytes.Repeat([]byte{0xa5}, 32)
	return map[string][]any{
		"psql-3.0": one(startupSeed(196608, "user", "svc-report", "database", "analytics", "application_name", "psql",
			"client_encoding", "UTF8")),
		"pgx-3.0": one(startupSeed(196608, "database", "analytics", "user", "svc-report")),
		"libpq18-3.2-pq-option": one(startupSeed(196610, "user", "svc-report", "database", "analytics",
			"_pq_.protocol_managed_params", "search_path")),
		"future-3.9":          one(startupSeed(196617, "user", "svc", "database", "analytics")),
		"protocol-2.0":        one(startupSeed(131072, "user", "svc", "database", "analytics")),
		"replication":         one(startupSeed(196608, "user", "svc", "database", "analytics", "replication", "database")),
		"options-and-dup":     one(startupSeed(196608, "user", "a", "user", "b", "options", "-c statement_timeout=0")),
		"no-user":             one(startupSeed(196608, "database", "analytics")),
		"unterminated":        one(startupSeed(196608, "user", "svc")[:20]),
		"trailing-bytes":      one(append(startupSeed(196608, "user", "svc"), 'x')),
		"ssl-request":         one(request(codeSSL)),
		"gssenc-request":      one(request(codeGSSENC)),
		"ssl-request-padded":  one(request(codeSSL, 0, 0, 0, 0)),
		"ssl-then-startup":    one(append(request(codeSSL), startupSeed(196608, "user", "svc")...)),
		"gssenc-ssl-startup":  one(append(append(request(codeGSSENC), request(codeSSL)...), startupSeed(196608, "user", "svc")...)),
		"cancel-3.0":          one(request(codeCancel, 0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef)),
		"cancel-3.2-32-bytes": one(request(codeCancel, append([]byte{0x7f, 0, 0, 1}, key32...)...)),
		"cancel-no-key":       one(request(codeCancel, 0, 0, 0, 1)),
		"length-too-small":    one([]byte{0, 0, 0, 4, 0, 3, 0, 0}),
		"length-too-large":    one([]byte{0, 0, 0x27, 0x11, 0, 3, 0, 0}),
		"length-huge":         one([]byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0}),
		"tls-client-hello":    one([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}),
		"http":                one([]byte("GET / HTTP/1.1\r\nHost: bastion\r\n\r\n")),
		"empty":               one([]byte{}),
	}
}

// framesCorpus is message streams either way: the client's simple and
// extended protocol, pipelines, COPY and function calls; the server's
// results, errors and notices.
func framesCorpus() map[string][]any {
	enc := func(msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
		var b []byte
		for _, m := range msgs {
			b, _ = m.Encode(b)
		}
		return b
	}
	rows := []pgproto3.FieldDescription{{Name: []byte("id"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1}}
	return map[string][]any{
		"simple-query":          {enc(&pgproto3.Query{String: "SELECT count(*) FROM orders"}), uint16(5)},
		"multi-statement-query": {enc(&pgproto3.Query{String: "BEGIN; INSERT INTO imports VALUES (1, 'a'); COMMIT;"}), uint16(0)},
		"extended-unnamed-binary": {enc(
			&pgproto3.Parse{Query: "SELECT customer FROM orders WHERE id = $1", ParameterOIDs: []uint32{23}},
			&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0, 0, 0, 42}}, ResultFormatCodes: []int16{1}},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Sync{}), uint16(7)},
		"extended-named-text-null": {enc(
			&pgproto3.Parse{Name: "by_customer", Query: "SELECT count(*) FROM orders WHERE customer = $1 OR $2::int IS NULL"},
			&pgproto3.Describe{ObjectType: 'S', Name: "by_customer"},
			&pgproto3.Sync{},
			&pgproto3.Bind{DestinationPortal: "p1", PreparedStatement: "by_customer", Parameters: [][]byte{[]byte("customer-5"), nil}},
			&pgproto3.Execute{Portal: "p1", MaxRows: 10},
			&pgproto3.Execute{Portal: "p1"},
			&pgproto3.Close{ObjectType: 'P', Name: "p1"},
			&pgproto3.Close{ObjectType: 'S', Name: "by_customer"},
			&pgproto3.Sync{}), uint16(13)},
		"pipeline-mixed-formats": {enc(
			&pgproto3.Parse{Query: "INSERT INTO imports VALUES ($1, $2)"},
			&pgproto3.Bind{ParameterFormatCodes: []int16{1, 0}, Parameters: [][]byte{{0, 0, 0, 7}, []byte("seven")}},
			&pgproto3.Execute{},
			&pgproto3.Parse{Query: "SELECT $1::bytea"},
			&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0xde, 0xad}}},
			&pgproto3.Execute{},
			&pgproto3.Flush{},
			&pgproto3.Sync{}), uint16(2)},
		"bind-bad-format-count": {enc(&pgproto3.Bind{ParameterFormatCodes: []int16{1, 1, 1}, Parameters: [][]byte{{1}}}), uint16(1)},
		"copy-in": {enc(
			&pgproto3.Query{String: "COPY imports FROM STDIN WITH (FORMAT csv)"},
			&pgproto3.CopyData{Data: []byte("1,first\n2,second\n")},
			&pgproto3.CopyDone{}), uint16(4)},
		"copy-fail":     {enc(&pgproto3.CopyData{Data: []byte("x")}, &pgproto3.CopyFail{Message: "aborted"}), uint16(3)},
		"function-call": {enc(&pgproto3.FunctionCall{Function: 1598, ArgFormatCodes: []uint16{1}, Arguments: [][]byte{{0, 0, 0, 1}}, ResultFormatCode: 1}), uint16(6)},
		"terminate":     {enc(&pgproto3.Query{String: "SELECT 1"}, &pgproto3.Terminate{}), uint16(0)},
		"server-result": {enc(
			&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
			&pgproto3.RowDescription{Fields: rows},
			&pgproto3.DataRow{Values: [][]byte{[]byte("42")}},
			&pgproto3.DataRow{Values: [][]byte{nil}},
			&pgproto3.CommandComplete{CommandTag: []byte("SELECT 2")},
			&pgproto3.ReadyForQuery{TxStatus: 'I'}), uint16(9)},
		"server-error-in-pipeline": {enc(
			&pgproto3.CommandComplete{CommandTag: []byte("INSERT 0 1")},
			&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42501", Message: "permission denied for table payroll"},
			&pgproto3.ReadyForQuery{TxStatus: 'E'}), uint16(11)},
		"server-notice-status": {enc(
			&pgproto3.NoticeResponse{Severity: "WARNING", Code: "01000", Message: "careful"},
			&pgproto3.ParameterStatus{Name: "TimeZone", Value: "UTC"},
			&pgproto3.NotificationResponse{PID: 7, Channel: "jobs", Payload: "go"},
			&pgproto3.EmptyQueryResponse{},
			&pgproto3.ReadyForQuery{TxStatus: 'T'}), uint16(1)},
		"server-copy": {enc(
			&pgproto3.CopyInResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0, 0}},
			&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0}},
			&pgproto3.CopyData{Data: []byte("1,customer-1\n")},
			&pgproto3.CopyDone{},
			&pgproto3.CommandComplete{CommandTag: []byte("COPY 1")}), uint16(8)},
		"server-cancelled": {enc(
			&pgproto3.ErrorResponse{Severity: "ERROR", Code: "57014", Message: "canceling statement due to user request"},
			&pgproto3.ReadyForQuery{TxStatus: 'I'}), uint16(0)},
		"length-below-four": {[]byte{'Q', 0, 0, 0, 3, 'Z', 0, 0, 0, 5, 'I'}, uint16(1)},
		"length-over-max":   {[]byte{'D', 0x7f, 0xff, 0xff, 0xff, 0}, uint16(2)},
		"split-header":      {enc(&pgproto3.Query{String: "SELECT 1"}, &pgproto3.Sync{}), uint16(2)},
	}
}
