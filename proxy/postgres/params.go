package postgres

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sallyport/sallyport/proxy/sqlredact"
	"github.com/sallyport/sallyport/recorder"
)

// Parameters are recorded as text: text-format values as sent, NULL as
// null, and binary-format values of the types below decoded to their text
// form, which the server reads back to the very same value (integers,
// bool, oid, uuid and the text types as they are; floats in their
// shortest form that parses to the same bits, "NaN", "Infinity";
// timestamps, dates, times and intervals to the microsecond, a timestamptz
// in UTC; numeric digit for digit; arrays of these in PostgreSQL's array
// syntax). A bytea is written \x and hex, as PostgreSQL prints it. A
// binary value of any other type, or whose type is unknown (a Bind whose
// statement was not described), stays {"base64": ...}: its exact bytes.
// A value longer than the recording's statement cap is kept as
// recorder.CutParam cuts it: a prefix, its length and SHA-256 (of the
// bytes for a binary value).

// Type OIDs decoded by hand: the ones drivers bind on every query.
const (
	oidBool    = 16
	oidBytea   = 17
	oidName    = 19
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidText    = 25
	oidOID     = 26
	oidJSON    = 114
	oidFloat4  = 700
	oidFloat8  = 701
	oidUnknown = 705
	oidBPChar  = 1042
	oidVarchar = 1043
	oidUUID    = 2950
	oidJSONB   = 3802
)

// viaPgtype are the types decoded by pgtype's codecs, whose text encoding
// is exact for them: dates and times, numeric, interval, network
// addresses, and arrays of these and of the types above.
var viaPgtype = map[uint32]bool{
	1082: true, 1083: true, 1114: true, 1184: true, 1186: true, 1266: true, 1700: true, // date … numeric
	650: true, 869: true, 829: true, // cidr, inet, macaddr
	1000: true, 1001: true, 1005: true, 1007: true, 1016: true, 1021: true, 1022: true, // bool[] … float8[]
	1009: true, 1015: true, 1014: true, 1003: true, 2951: true, 1028: true, // text[], varchar[], bpchar[], name[], uuid[], oid[]
	1115: true, 1185: true, 1182: true, 1183: true, 1187: true, 1231: true, // timestamp[] … numeric[]
	199: true, 3807: true, 1041: true, 651: true, // json[], jsonb[], inet[], cidr[]
}

// typeMaps lends pgtype maps (costly to build, not safe for concurrent
// use) to the sessions' decoders.
var typeMaps = sync.Pool{New: func() any { return pgtype.NewMap() }}

// params renders a Bind's values; oids are its statement's parameter
// types (from Parse or ParameterDescription; missing or 0: unknown). Text
// values share one copy of the body. With a cap (max > 0), a value longer
// than max is not copied: it is returned as a view of the body, a string
// for text and []byte for binary, which cutParams must replace before the
// body is reused (viewed says there is one).
func (m *bindMsg) params(oids []uint32, max int) (out []any, viewed bool) {
	if m.nparams == 0 {
		return nil, false
	}
	out = make([]any, m.nparams)
	var text string // the values, copied when the first text one comes
	shared := max <= 0 || len(m.values) <= max
	rest := m.values
	for i := range out {
		v, r, _ := param(rest) // readBind checked them
		off := len(m.values) - len(rest) + 4
		rest = r
		switch {
		case v == nil:
			out[i] = nil
		case formatAt(m.formats, i) == 1:
			out[i] = binaryParam(oidAt(oids, i), v, max)
			_, b := out[i].([]byte)
			viewed = viewed || b
		case max > 0 && len(v) > max:
			out[i], viewed = view(v), true
		case !shared:
			out[i] = string(v)
		default:
			if text == "" {
				text = string(m.values)
			}
			out[i] = text[off : off+len(v)]
		}
	}
	return out, viewed
}

func oidAt(oids []uint32, i int) uint32 {
	if i < len(oids) {
		return oids[i]
	}
	return 0
}

// binaryParam is a binary value as recorded: its text when its type is
// one decoded, else {"base64": ...}; a view of v when longer than max.
func binaryParam(oid uint32, v []byte, max int) any {
	if oid == oidBytea {
		if max > 0 && 2+2*len(v) > max {
			return v // cut as bytes: its hash is the data's
		}
		return `\x` + hex.EncodeToString(v)
	}
	if max > 0 && len(v) > max {
		return v
	}
	if s, ok := decodeBinary(oid, v); ok {
		return s
	}
	return map[string]string{"base64": base64.StdEncoding.EncodeToString(v)}
}

// decodeBinary is a binary value of type oid as text; false when the type
// is not one decoded or v is not a valid value of it.
func decodeBinary(oid uint32, v []byte) (string, bool) {
	switch oid {
	case oidBool:
		if len(v) == 1 && v[0] <= 1 {
			return strconv.FormatBool(v[0] == 1), true
		}
	case oidInt2:
		if len(v) == 2 {
			return strconv.Itoa(int(int16(binary.BigEndian.Uint16(v)))), true
		}
	case oidInt4:
		if len(v) == 4 {
			return strconv.Itoa(int(int32(binary.BigEndian.Uint32(v)))), true
		}
	case oidInt8:
		if len(v) == 8 {
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10), true
		}
	case oidOID:
		if len(v) == 4 {
			return strconv.FormatUint(uint64(binary.BigEndian.Uint32(v)), 10), true
		}
	case oidFloat4:
		if len(v) == 4 {
			return formatFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 32), true
		}
	case oidFloat8:
		if len(v) == 8 {
			return formatFloat(math.Float64frombits(binary.BigEndian.Uint64(v)), 64), true
		}
	case oidUUID:
		if len(v) == 16 {
			return uuidText(v), true
		}
	case oidText, oidVarchar, oidBPChar, oidName, oidUnknown, oidJSON:
		if utf8.Valid(v) {
			return string(v), true
		}
	case oidJSONB:
		if len(v) > 0 && v[0] == 1 && utf8.Valid(v[1:]) {
			return string(v[1:]), true
		}
	default:
		if viaPgtype[oid] {
			return decodePgtype(oid, v)
		}
	}
	return "", false
}

// formatFloat is f as PostgreSQL reads it back to the same bits.
func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

func uuidText(v []byte) string {
	var b [36]byte
	hex.Encode(b[0:8], v[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], v[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], v[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], v[8:10])
	b[23] = '-'
	hex.Encode(b[24:], v[10:])
	return string(b[:])
}

// decodePgtype decodes v with pgtype's codec for oid and encodes it as
// text. A value the codec chokes on stays undecoded: a hostile client's
// bytes must not take the relay down.
func decodePgtype(oid uint32, v []byte) (s string, ok bool) {
	m := typeMaps.Get().(*pgtype.Map)
	defer func() {
		if recover() != nil {
			s, ok = "", false
			return // the map may be half-updated: let it go
		}
		typeMaps.Put(m)
	}()
	t, found := m.TypeForOID(oid)
	if !found {
		return "", false
	}
	val, err := t.Codec.DecodeValue(m, oid, pgtype.BinaryFormatCode, v)
	if err != nil || val == nil {
		return "", false
	}
	txt, err := m.Encode(oid, pgtype.TextFormatCode, val, nil)
	if err != nil || txt == nil {
		return "", false
	}
	return string(txt), true
}

// cutParams applies the statement cap to values rendered by params, after
// redaction: each long value becomes recorder.CutParam's prefix, length
// and SHA-256, copied out of the body it viewed.
func cutParams(values []any, max int) {
	if max <= 0 {
		return
	}
	for i, v := range values {
		switch v := v.(type) {
		case string:
			if len(v) > max {
				values[i] = cloned(recorder.CutParam(v, max))
			}
		case []byte:
			if len(v) <= max { // a bytea whose hex is longer than max
				values[i] = map[string]string{"base64": base64.StdEncoding.EncodeToString(v)}
			} else {
				values[i] = recorder.CutParam(v, max)
			}
		}
	}
}

// cloned is a cut parameter with its prefix copied out of the text it
// was cut from.
func cloned(v any) any {
	if m, ok := v.(map[string]string); ok {
		if p, ok := m["prefix"]; ok {
			m["prefix"] = strings.Clone(p)
		}
	}
	return v
}

// detach copies the secrets of rm that may view a message body (those
// redaction took from a viewed statement or value) so that they outlive
// it, for Scrub.
func detach(rm *sqlredact.Removed) *sqlredact.Removed {
	if rm == nil || len(rm.Secrets) == 0 {
		return rm
	}
	secrets := make([]string, len(rm.Secrets))
	for i, s := range rm.Secrets {
		secrets[i] = strings.Clone(s)
	}
	return &sqlredact.Removed{Params: rm.Params, Secrets: secrets}
}

// view is b as a string without a copy, for a text too long to copy
// whole before the statement cap cuts it: valid while b is, so nothing
// may keep it or a part of it (copy what is kept).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// formatAt is parameter i's format code out of a Bind's raw codes, as
// format reads decoded ones.
func formatAt(codes []byte, i int) uint16 {
	switch n := len(codes) / 2; {
	case n == 1:
		i = 0
	case i >= n:
		return 0
	}
	return binary.BigEndian.Uint16(codes[2*i:])
}

// params renders bound values for the recording: text as a string, binary
// as {"base64": ...}, NULL as null. It copies: values alias the read buffer.
func params[F int16 | uint16](formats []F, values [][]byte) []any {
	if len(values) == 0 {
		return nil
	}
	out := make([]any, len(values))
	for i, v := range values {
		switch {
		case v == nil:
			out[i] = nil
		case format(formats, i) == 1:
			out[i] = map[string]string{"base64": base64.StdEncoding.EncodeToString(v)}
		default:
			out[i] = string(v)
		}
	}
	return out
}

// format is parameter i's format code: none listed means text, one means
// all alike.
func format[F int16 | uint16](formats []F, i int) F {
	switch {
	case len(formats) == 0:
		return 0
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}
