package mysql

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	got, err := decodeExecute(executeBody(1, 0, true, types, values), st)
	require.NoError(t, err)
	assert.Equal(t, []any{int64(-5), 3.25, "abc", "2026-11-28 09:30:15.123456", "-26:03:04", uint64(200)}, got)

	// Re-executed without types: the ones kept are used; NULLs take no bytes.
	got, err = decodeExecute(executeBody(1, 0b000110, false, nil, append(binary.LittleEndian.AppendUint64(nil, 7),
		0, 0, 4, 'x', 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)), st)
	require.NoError(t, err)
	assert.Len(t, got, 6)
	assert.Equal(t, int64(7), got[0])
	assert.Nil(t, got[1])
	assert.Nil(t, got[2])

	// A parameter sent as long data is not in the packet.
	st2 := &stmt{params: 2, long: map[uint16]*longData{0: {head: []byte("long"), size: 4}}}
	got, err = decodeExecute(executeBody(2, 0, true, []byte{0xfc, 0, typeTiny, 0}, []byte{9}), st2)
	require.NoError(t, err)
	assert.Equal(t, []any{"long", int64(9)}, got)

	_, err = decodeExecute(executeBody(3, 0, false, nil, nil), &stmt{params: 1})
	assert.Error(t, err, "no types ever sent")
	_, err = decodeExecute(executeBody(1, 0, true, types, values[:10]), &stmt{params: 6})
	assert.ErrorIs(t, err, errTruncated)
}

func FuzzDecodeExecute(f *testing.F) {
	f.Add(uint8(2), executeBody(1, 0, true, []byte{typeLong, 0, 0xfe, 0}, []byte{1, 0, 0, 0, 2, 'h', 'i'}))
	f.Add(uint8(1), executeBody(1, 1, false, nil, nil))
	f.Add(uint8(3), executeBody(1, 0, true, []byte{typeDate, 0, typeTime, 0, typeFloat, 0}, []byte{4, 1, 2, 3, 4, 12, 1}))
	f.Fuzz(func(t *testing.T, n uint8, body []byte) {
		st := &stmt{params: int(n)}
		_, _ = decodeExecute(body, st)
		_, _ = decodeExecute(body, st) // with the types the first one kept
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
