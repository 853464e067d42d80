package mysql

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/fuzzseed"
)

func sampleLogin() []byte {
	b := binary.LittleEndian.AppendUint32(nil, serverCaps)
	b = binary.LittleEndian.AppendUint32(b, 1<<24)
	b = append(b, charsetUTF8MB4)
	b = append(b, make([]byte, 23)...)
	b = append(b, "svc-report\x00"...)
	b = append(b, 5, 't', 'o', 'k', 'e', 'n')
	b = append(b, "billing\x00mysql_clear_password\x00"...)
	return b
}

func FuzzParseLogin(f *testing.F) {
	f.Add(sampleLogin())
	f.Add(make([]byte, 32))
	f.Add(append(sampleLogin()[:40], 0xfe, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, p []byte) {
		l, err := parseLogin(p)
		if err == nil {
			_, _ = route(l)
		}
	})
}

func TestParseLogin(t *testing.T) {
	l, err := parseLogin(sampleLogin())
	require.NoError(t, err)
	assert.Equal(t, &login{caps: serverCaps, charset: charsetUTF8MB4, user: "svc-report", auth: []byte("token"),
		database: "billing", plugin: pluginClear}, l)
	tests := []struct {
		user, db, wantIdentity, wantTarget string
	}{
		{"svc", "billing", "svc", "billing"},
		{"svc@billing", "", "svc", "billing"},
		{"a@b@billing", "", "a@b", "billing"},
		{"svc@billing", "billing", "svc", "billing"},
		{"ci@acme", "billing", "ci@acme", "billing"}, // an identity with an @ and -D
	}
	for _, tt := range tests {
		t.Run(tt.user+" -D "+tt.db, func(t *testing.T) {
			id, target := route(&login{user: tt.user, database: tt.db})
			assert.Equal(t, tt.wantIdentity, id, "identity")
			assert.Equal(t, tt.wantTarget, target, "target")
		})
	}
}

// executeBody is a COM_STMT_EXECUTE body for st with types and values.
func executeBody(id uint32, nulls byte, bound bool, types []byte, values []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, id)
	b = append(b, 0, 1, 0, 0, 0, nulls)
	if bound {
		b = append(append(b, 1), types...)
	} else {
		b = append(b, 0)
	}
	return append(b, values...)
}

func TestDecodeExecute(t *testing.T) {
	types := []byte{typeLongLong, 0, typeDouble, 0, 0xfd, 0, typeDateTime, 0, typeTime, 0, typeTiny, unsignedFlag}
	values := binary.LittleEndian.AppendUint64(nil, uint64(1<<64-5))
	values = binary.LittleEndian.AppendUint64(values, 0x400a000000000000) // 3.25
	values = append(values, 3, 'a', 'b', 'c')
	values = append(values, 11, 0xea, 0x07, 11, 28, 9, 30, 15, 0x40, 0xe2, 0x01, 0)
	values = append(values, 8, 1, 1, 0, 0, 0, 2, 3, 4)
	values = append(values, 200)
	st := &stmt{params: 6}
	got, err := decodeExecute(executeBody(1, 0, true, types, values), st, 0)
	require.NoError(t, err)
	assert.Equal(t, []any{int64(-5), 3.25, "abc", "2026-11-28 09:30:15.123456", "-26:03:04", uint64(200)}, got)

	// Re-executed without types: the ones kept are used; NULLs take no bytes.
	got, err = decodeExecute(executeBody(1, 0b000110, false, nil, append(binary.LittleEndian.AppendUint64(nil, 7),
		0, 0, 4, 'x', 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)), st, 0)
	require.NoError(t, err)
	assert.Len(t, got, 6)
	assert.Equal(t, int64(7), got[0])
	assert.Nil(t, got[1])
	assert.Nil(t, got[2])

	// A parameter sent as long data is not in the packet.
	st2 := &stmt{params: 2, long: map[uint16]*longData{0: {head: []byte("long"), size: 4}}}
	got, err = decodeExecute(executeBody(2, 0, true, []byte{0xfc, 0, typeTiny, 0}, []byte{9}), st2, 0)
	require.NoError(t, err)
	assert.Equal(t, []any{"long", int64(9)}, got)

	_, err = decodeExecute(executeBody(3, 0, false, nil, nil), &stmt{params: 1}, 0)
	assert.Error(t, err, "no types ever sent")
	_, err = decodeExecute(executeBody(1, 0, true, types, values[:10]), &stmt{params: 6}, 0)
	assert.ErrorIs(t, err, errTruncated)
}

func FuzzDecodeExecute(f *testing.F) {
	f.Add(uint8(2), executeBody(1, 0, true, []byte{typeLong, 0, 0xfe, 0}, []byte{1, 0, 0, 0, 2, 'h', 'i'}))
	f.Add(uint8(1), executeBody(1, 1, false, nil, nil))
	f.Add(uint8(3), executeBody(1, 0, true, []byte{typeDate, 0, typeTime, 0, typeFloat, 0}, []byte{4, 1, 2, 3, 4, 12, 1}))
	f.Fuzz(func(t *testing.T, n uint8, body []byte) {
		st := &stmt{params: int(n)}
		_, _ = decodeExecute(body, st, 0)
		_, _ = decodeExecute(body, st, 0) // with the types the first one kept
	})
}

// stream frames payloads as the target would send them.
func stream(payloads ...[]byte) []byte {
	var out []byte
	var seq byte
	for _, p := range payloads {
		out = appendPacket(out, &seq, p)
	}
	return out
}

func TestScannerJoinsAndSplits(t *testing.T) {
	big := bytes.Repeat([]byte{0xfe}, 2*maxPacketPayload+10)
	payloads := [][]byte{{hdrOK, 0, 0, 2, 0, 0, 0}, big, {hdrEOF, 0, 0, 2, 0}, bytes.Repeat([]byte{1}, maxPacketPayload)}
	data := stream(payloads...)
	for _, chunk := range []int{1, 7, 4096, len(data)} {
		var sizes []int
		var firsts []byte
		s := &packetScanner{handle: func(size int, b []byte) { sizes = append(sizes, size); firsts = append(firsts, firstByte(b)) }}
		for p := data; len(p) > 0; {
			n := min(chunk, len(p))
			s.feed(p[:n])
			p = p[n:]
		}
		assert.Equal(t, []int{7, len(big), 5, maxPacketPayload}, sizes, "chunks of %d: packet sizes", chunk)
		assert.Equal(t, []byte{hdrOK, hdrEOF, hdrEOF, 1}, firsts, "chunks of %d: first bytes", chunk)
		if chunk == 7 {
			break // the 1-byte run is slow on 48 MB; 7 covers split headers
		}
	}
}

func FuzzScanner(f *testing.F) {
	f.Add(stream([]byte{hdrOK, 0, 0}, []byte{1}, []byte("row")), uint8(3))
	f.Add([]byte{0xff, 0xff, 0xff, 0, 1, 2}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var total int
		s := &packetScanner{handle: func(size int, b []byte) {
			total += size
			if len(b) > size || len(b) > keepWhole {
				t.Fatalf("kept %d bytes of a %d-byte packet", len(b), size)
			}
		}}
		step := int(chunk) + 1
		for p := data; len(p) > 0; p = p[min(step, len(p)):] {
			s.feed(p[:min(step, len(p))])
		}
		if total > len(data) {
			t.Fatalf("packets of %d bytes in %d bytes of stream", total, len(data))
		}
	})
}

// FuzzAudit feeds a command and arbitrary target packets to the audit: it
// must never panic, and a finished response must leave the queue.
func FuzzAudit(f *testing.F) {
	f.Add(byte(comQuery), true, stream([]byte{1}, []byte{3, 'd', 'e', 'f'}, []byte{hdrEOF, 0, 0, 0, 0}, []byte("r"), []byte{hdrEOF, 0, 0, 0, 0}))
	f.Add(byte(comStmtPrepare), false, stream([]byte{0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, []byte("p"), []byte("c")))
	f.Add(byte(comStmtExecute), true, stream([]byte{hdrErr, 0x46, 0x04, '#', '4', '2', '0', '0', '0', 'x'}))
	f.Fuzz(func(t *testing.T, cmd byte, deprecateEOF bool, data []byte) {
		a := newAudit(time.Now, deprecateEOF)
		a.stmts[1] = &stmt{sql: "SELECT ?", params: 1, types: []byte{typeLong, 0}}
		_ = a.client(append([]byte{cmd}, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0))
		s := &packetScanner{handle: a.server}
		s.feed(data)
		_ = a.inFlight()
	})
}

func FuzzParseGreeting(f *testing.F) {
	var seed [20]byte
	f.Add(greeting(7, seed, serverCaps))
	f.Add([]byte{10, 'x', 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		g, err := parseGreeting(p)
		if err == nil && g.plugin == "" {
			t.Fatal("a parsed greeting names its plugin")
		}
	})
}

func TestGreetingRoundTrip(t *testing.T) {
	var seed [20]byte
	copy(seed[:], "abcdefghijklmnopqrst")
	g, err := parseGreeting(greeting(42, seed, serverCaps|capSSL))
	require.NoError(t, err)
	assert.Equal(t, uint64(42), g.thread)
	assert.Equal(t, uint32(serverCaps|capSSL), g.caps)
	assert.Equal(t, seed[:], g.seed)
	assert.Equal(t, pluginNative, g.plugin)
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// TestFuzzCorpus keeps the seed corpus of the fuzz targets in
// testdata/fuzz, which `go test` runs as regression inputs: each seed below
// is a file there (go test -run TestFuzzCorpus -update-corpus writes them).
// Packets captured from real clients (captured-*) and inputs the fuzzer
// found are added there by hand.
func TestFuzzCorpus(t *testing.T) {
	fuzzseed.Check(t, fuzzseed.Corpus{
		"FuzzParseLogin":    loginCorpus(),
		"FuzzDecodeExecute": executeCorpus(),
		"FuzzScanner":       scannerCorpus(),
		"FuzzAudit":         auditCorpus(),
		"FuzzParseGreeting": greetingCorpus(),
	}, *updateCorpus)
}

// loginBody is a HandshakeResponse41: caps, the fixed part, user, auth as
// caps says, then db and plugin when given.
func loginBody(caps uint32, user string, auth []byte, db, plugin string) []byte {
	b := responsePrefix(caps, charsetUTF8MB4)
	b = append(append(b, user...), 0)
	switch {
	case caps&capPluginAuthLenenc != 0:
		b = append(appendLenenc(b, uint64(len(auth))), auth...)
	case caps&capSecureConn != 0:
		b = append(append(b, byte(len(auth))), auth...)
	default:
		b = append(append(b, auth...), 0)
	}
	if db != "" {
		b = append(append(b, db...), 0)
	}
	if plugin != "" {
		b = append(append(b, plugin...), 0)
	}
	return b
}

func loginCorpus() map[string][]any {
	one := func(b []byte) []any { return []any{b} }
	scramble := bytes.Repeat([]byte{0x5a}, 20)
	noPlugin := uint32(capLongPassword | capProtocol41 | capSecureConn | capConnectWithDB)
	return map[string][]any{
		"clear-password-with-db": one(sampleLogin()),
		"native-then-switch":     one(loginBody(serverCaps, "svc-report", scramble, "billing", pluginNative)),
		"user-at-target":         one(loginBody(serverCaps&^capConnectWithDB, "svc-report@billing", []byte("tok\x00"), "", pluginClear)),
		"identity-with-at":       one(loginBody(serverCaps, "ci@acme@billing", nil, "", pluginClear)),
		"no-plugin-auth":         one(loginBody(noPlugin, "svc", scramble, "billing", "")),
		"pre-secure-conn":        one(loginBody(capProtocol41|capLongPassword, "svc", []byte("tok"), "", "")),
		"protocol-320":           one(loginBody(capLongPassword, "svc", []byte("tok"), "", "")),
		"lenenc-auth-2-byte-len": one(loginBody(serverCaps, "svc", bytes.Repeat([]byte("t"), 300), "billing", pluginClear)),
		"ssl-request":            one(responsePrefix(serverCaps|capSSL, charsetUTF8MB4)),
		"auth-length-past-end":   one(append(responsePrefix(serverCaps, charsetUTF8MB4), 's', 0, 0xfc, 0xff, 0xff, 1)),
		"unterminated-user":      one(append(responsePrefix(serverCaps, charsetUTF8MB4), "svc"...)),
		"unterminated-db":        one(append(loginBody(serverCaps, "svc", nil, "", ""), "billing"...)),
		"short":                  one(make([]byte, 31)),
		"empty":                  one([]byte{}),
	}
}

// execute is a COM_STMT_EXECUTE body (after the command byte) with a null
// bitmap for params parameters.
func execute(id uint32, params int, nulls []byte, types, values []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, id)
	b = append(b, 0, 1, 0, 0, 0)
	bitmap := make([]byte, (params+7)/8)
	copy(bitmap, nulls)
	b = append(b, bitmap...)
	if types != nil {
		b = append(append(b, 1), types...)
	} else {
		b = append(b, 0)
	}
	return append(b, values...)
}

func executeCorpus() map[string][]any {
	le16 := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	le64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	ints := cat([]byte{0x7f}, le16(0x8000), le32(0xffffffff), le64(1<<63), le32(0x00ffffff), le16(2026))
	intTypes := []byte{typeTiny, 0, typeShort, 0, typeLong, unsignedFlag, typeLongLong, 0, typeInt24, 0, typeYear, 0}
	floats := cat(le32(math.Float32bits(1.5)), le64(math.Float64bits(-2.25)), le64(math.Float64bits(math.NaN())))
	strs := cat([]byte{3}, []byte("abc"), []byte{6}, []byte("123.45"), []byte{0xfc}, le16(300), bytes.Repeat([]byte("x"), 300),
		[]byte{2}, []byte("{}"), []byte{0}, []byte{1, 0xff})
	strTypes := []byte{0xfd, 0, 0xf6, 0, 0xfc, 0, 0xf5, 0, 0xfe, 0, 0x10, 0}
	times := cat([]byte{0}, []byte{4}, le16(2026), []byte{11, 28}, []byte{7}, le16(2026), []byte{11, 28, 9, 30, 15},
		[]byte{11}, le16(2026), []byte{11, 28, 9, 30, 15}, le32(123456), []byte{0}, []byte{8, 1}, le32(1), []byte{2, 3, 4},
		[]byte{12, 0}, le32(0), []byte{23, 59, 59}, le32(999999))
	timeTypes := []byte{typeDate, 0, typeDate, 0, typeTimestamp, 0, typeDateTime, 0, typeTime, 0, typeTime, 0, typeTime, 0}
	return map[string][]any{
		"integers":              {byte(6), execute(1, 6, nil, intTypes, ints)},
		"floats":                {byte(3), execute(1, 3, nil, []byte{typeFloat, 0, typeDouble, 0, typeDouble, 0}, floats)},
		"strings-decimal-blob":  {byte(6), execute(2, 6, nil, strTypes, strs)},
		"dates-and-times":       {byte(7), execute(3, 7, nil, timeTypes, times)},
		"nulls-over-eight":      {byte(10), execute(4, 10, []byte{0xff, 0x02}, bytes.Repeat([]byte{typeLong, 0}, 10), le32(5))},
		"null-type":             {byte(2), execute(5, 2, []byte{0x01}, []byte{typeNull, 0, typeTiny, 0}, []byte{9})},
		"reexecute-no-types":    {byte(1), execute(6, 1, nil, nil, le32(7))},
		"cursor-flag":           {byte(1), append(append(le32(7), 1, 1, 0, 0, 0, 0, 1, typeTiny, 0), 1)},
		"no-params":             {byte(0), execute(8, 0, nil, nil, nil)},
		"truncated-value":       {byte(1), execute(9, 1, nil, []byte{typeLongLong, 0}, []byte{1, 2, 3})},
		"string-length-too-big": {byte(1), execute(10, 1, nil, []byte{0xfd, 0}, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})},
		"bad-time-length":       {byte(1), execute(11, 1, nil, []byte{typeTime, 0}, []byte{5, 1, 2, 3, 4, 5})},
		"unknown-type":          {byte(1), execute(12, 1, nil, []byte{0x42, 0}, []byte{1})},
	}
}

// resultSet is a text result set of one column and rows, with EOF
// packets unless deprecateEOF (then it ends with an OK-as-EOF).
func resultSet(deprecateEOF bool, status uint16, rows ...string) [][]byte {
	col := appendLenenc(nil, 3)
	for _, s := range []string{"def", "billing", "orders", "orders", "id", "id"} {
		col = append(appendLenenc(col, uint64(len(s))), s...)
	}
	col = append(col, 0x0c, 0x3f, 0, 11, 0, 0, 0, typeLong, 0, 0, 0, 0, 0)
	out := [][]byte{{1}, col}
	eof := append([]byte{hdrEOF, 0, 0}, binary.LittleEndian.AppendUint16(nil, status)...)
	if !deprecateEOF {
		out = append(out, eof)
	}
	for _, r := range rows {
		out = append(out, append(appendLenenc(nil, uint64(len(r))), r...))
	}
	if deprecateEOF {
		return append(out, append([]byte{hdrEOF, 0, 0}, binary.LittleEndian.AppendUint16(nil, status)...))
	}
	return append(out, eof)
}

func okPayload(affected uint64, status uint16) []byte {
	b := appendLenenc([]byte{hdrOK}, affected)
	b = appendLenenc(b, 0)
	return append(binary.LittleEndian.AppendUint16(b, status), 0, 0)
}

func errPayload(code uint16, state, msg string) []byte {
	b := binary.LittleEndian.AppendUint16([]byte{hdrErr}, code)
	return append(append(append(b, '#'), state...), msg...)
}

func scannerCorpus() map[string][]any {
	big := []byte{0xff, 0xff, 0xff, 0}
	big = append(big, bytes.Repeat([]byte{1}, 64)...)
	return map[string][]any{
		"ok":                   {stream(okPayload(3, statusAutocommit)), byte(0)},
		"err":                  {stream(errPayload(1146, "42S02", "Table 'billing.nope' doesn't exist")), byte(4)},
		"result-set":           {stream(resultSet(false, statusAutocommit, "1", "2", "3")...), byte(6)},
		"result-set-no-eof":    {stream(resultSet(true, statusAutocommit, "1")...), byte(1)},
		"continuation-claimed": {big, byte(9)},
		"empty-packet":         {[]byte{0, 0, 0, 0, 0, 0, 0, 1}, byte(2)},
	}
}

func auditCorpus() map[string][]any {
	param := resultSet(false, 0)[1] // a column definition
	prepareOK := append([]byte{hdrOK}, binary.LittleEndian.AppendUint32(nil, 1)...)
	prepareOK = append(prepareOK, 1, 0, 1, 0, 0, 0, 0)
	eof := []byte{hdrEOF, 0, 0, 2, 0}
	binRow := []byte{hdrOK, 0, 7, 0, 0, 0}
	more := resultSet(false, statusAutocommit|statusMoreResults, "a")
	multi := append(append(more, resultSet(false, statusAutocommit, "b")...), okPayload(0, statusAutocommit))
	return map[string][]any{
		"query-result-set":        {byte(comQuery), false, stream(resultSet(false, statusAutocommit, "1", "2")...)},
		"query-result-set-no-eof": {byte(comQuery), true, stream(resultSet(true, statusAutocommit, "1", "2")...)},
		"query-multi-results":     {byte(comQuery), false, stream(multi...)},
		"query-ok-affected":       {byte(comQuery), true, stream(okPayload(42, statusAutocommit))},
		"query-err":               {byte(comQuery), false, stream(errPayload(1142, "42000", "SELECT command denied"))},
		"query-local-infile":      {byte(comQuery), false, stream(append([]byte{hdrLocalInfile}, "/etc/passwd"...))},
		"prepare-with-param-col":  {byte(comStmtPrepare), false, stream(prepareOK, param, eof, param, eof)},
		"prepare-no-eof":          {byte(comStmtPrepare), true, stream(prepareOK, param, param)},
		"execute-binary-rows":     {byte(comStmtExecute), false, stream([]byte{1}, param, eof, binRow, binRow, eof)},
		"execute-err":             {byte(comStmtExecute), true, stream(errPayload(1062, "23000", "Duplicate entry"))},
		"init-db":                 {byte(comInitDB), false, stream(okPayload(0, statusAutocommit))},
		"ping":                    {byte(comPing), true, stream(okPayload(0, statusAutocommit))},
		"quit":                    {byte(comQuit), false, []byte{}},
		"stmt-close":              {byte(comStmtClose), false, []byte{}},
		"stmt-reset":              {byte(comStmtReset), false, stream(okPayload(0, statusAutocommit))},
		"field-list":              {byte(comFieldList), false, stream(param, eof)},
		"statistics":              {byte(comStatistics), false, stream([]byte("Uptime: 1  Threads: 1"))},
	}
}

// targetGreetingOf is a HandshakeV10 as MariaDB or MySQL sends it.
func targetGreetingOf(version string, caps uint32, extCaps uint32, seedLen int, plugin string) []byte {
	b := append(append([]byte{10}, version...), 0)
	b = binary.LittleEndian.AppendUint32(b, 31)
	b = append(b, "abcdefgh"...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps))
	b = append(b, charsetUTF8MB4)
	b = binary.LittleEndian.AppendUint16(b, statusAutocommit)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16))
	b = append(b, byte(seedLen))
	b = append(b, make([]byte, 6)...)
	b = binary.LittleEndian.AppendUint32(b, extCaps) // MariaDB's extended capabilities
	b = append(append(b, "ijklmnopqrst"...), 0)
	if plugin != "" {
		b = append(append(b, plugin...), 0)
	}
	return b
}

func greetingCorpus() map[string][]any {
	var seed [20]byte
	copy(seed[:], "abcdefghijklmnopqrst")
	mariadb := uint32(serverCaps | capSSL | capCompress | capLocalFiles)
	return map[string][]any{
		"sallyport":           {greeting(7, seed, serverCaps|capSSL)},
		"mariadb-10.11":       {targetGreetingOf("5.5.5-10.11.19-MariaDB-0+deb12u1", mariadb&^capLongPassword, 0x1d, 21, pluginNative)},
		"mysql-8-caching-sha": {targetGreetingOf("8.0.40", serverCaps|capSSL, 0, 21, pluginCachingSHA2)},
		"no-plugin-auth":      {targetGreetingOf("5.1.73", capLongPassword|capProtocol41|capSecureConn, 0, 0, "")},
		"protocol-9":          {append([]byte{9}, "3.23.58\x00"...)},
		"truncated-seed":      {targetGreetingOf("10.0", serverCaps, 0, 40, pluginNative)[:60]},
		"no-version-nul":      {[]byte{10, 'x', 'y'}},
	}
}
