package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzBodyReaders holds the audit's hand-written body readers to
// pgproto3's decoders: the same fields out of every body, and for a
// malformed one the same error, which is the reason a session ends with.
func FuzzBodyReaders(f *testing.F) {
	for _, m := range []pgproto3.Message{
		&pgproto3.Query{String: "SELECT 1"},
		&pgproto3.Parse{Name: "s", Query: "SELECT $1", ParameterOIDs: []uint32{23}},
		&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s", ParameterFormatCodes: []int16{0, 1},
			Parameters: [][]byte{[]byte("x"), {1, 2}, nil}, ResultFormatCodes: []int16{1}},
		&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{}, []byte("y")}},
		&pgproto3.Execute{Portal: "p", MaxRows: 5},
		&pgproto3.Close{ObjectType: 'S', Name: "s"},
		&pgproto3.CommandComplete{CommandTag: []byte("INSERT 0 5")},
		&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42501", Message: "no", Detail: "d"},
	} {
		b, err := m.Encode(nil)
		require.NoError(f, err)
		if _, ok := m.(*pgproto3.ErrorResponse); ok {
			b[0] = 'e' // 'E' is Execute's here
		}
		f.Add(b[0], b[5:])
		f.Add(b[0], b[5:len(b)-1]) // cut short
	}
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		switch typ {
		case 'Q':
			var m pgproto3.Query
			want := m.Decode(body)
			sql, err := readQuery(body)
			sameError(t, want, err)
			if err == nil {
				assert.Equal(t, m.String, string(sql))
			}
		case 'P':
			var m pgproto3.Parse
			want := m.Decode(body)
			name, sql, _, err := readParse(body)
			sameError(t, want, err)
			if err == nil {
				assert.Equal(t, [2]string{m.Name, m.Query}, [2]string{string(name), string(sql)})
			}
		case 'B':
			var m pgproto3.Bind
			want := m.Decode(body)
			got, err := readBind(body)
			sameError(t, want, err)
			if err == nil {
				assert.Equal(t, [2]string{m.DestinationPortal, m.PreparedStatement}, [2]string{string(got.portal), string(got.stmt)})
				gotParams, _ := got.params(nil, 0)
				assert.Equal(t, params(m.ParameterFormatCodes, m.Parameters), gotParams)
			}
		case 'E':
			var m pgproto3.Execute
			want := m.Decode(body)
			portal, err := readExecute(body)
			sameError(t, want, err)
			if err == nil {
				assert.Equal(t, m.Portal, string(portal))
			}
		case 'C':
			var m pgproto3.Close
			want := m.Decode(body)
			typ, name, err := readClose(body)
			sameError(t, want, err)
			if err == nil {
				assert.Equal(t, [2]string{string(m.ObjectType), m.Name}, [2]string{string(typ), string(name)})
			}
			var cc pgproto3.CommandComplete
			want = cc.Decode(body)
			tag, err := readTag(body)
			sameError(t, want, err)
			if err == nil {
				assert.Equal(t, string(cc.CommandTag), string(tag))
			}
		case 'e': // ErrorResponse
			var m pgproto3.ErrorResponse
			want := m.Decode(body)
			code, msg, err := readError(body)
			sameError(t, want, err)
			if err == nil {
				assert.Equal(t, [2]string{m.Code, m.Message}, [2]string{string(code), string(msg)})
			}
		}
	})
}

func sameError(t *testing.T, want, got error) {
	t.Helper()
	if want == nil || got == nil {
		require.Equal(t, want == nil, got == nil, "pgproto3: %v, reader: %v", want, got)
		return
	}
	require.Equal(t, want.Error(), got.Error())
}
