package postgres

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
