package mysql

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/sallyport/sallyport/recorder"
)

// Column types of bound parameters (binary protocol).
const (
	typeTiny      = 0x01
	typeShort     = 0x02
	typeLong      = 0x03
	typeFloat     = 0x04
	typeDouble    = 0x05
	typeNull      = 0x06
	typeTimestamp = 0x07
	typeLongLong  = 0x08
	typeInt24     = 0x09
	typeDate      = 0x0a
	typeTime      = 0x0b
	typeDateTime  = 0x0c
	typeYear      = 0x0d
	unsignedFlag  = 0x80
)

// errTruncated marks an execute packet shorter than its parameters say.
var errTruncated = errors.New("execute packet truncated")

// decodeExecute reads the bound parameters of a COM_STMT_EXECUTE body
// (after the command byte) with the types of st, keeping the types the
// packet sends for the next execute that omits them. Values come back as
// the recording shows them: integers and floats as numbers, decimals,
// strings, dates and times as text, {"base64": …} for bytes that are not
// UTF-8, nil for NULL. A string longer than max (0: no cap) is not
// copied: it points into body until cutParams cuts it.
func decodeExecute(body []byte, st *stmt, max int) ([]any, error) {
	n := st.params
	if n == 0 {
		return nil, nil
	}
	const fixed = 4 + 1 + 4 // statement id, flags, iteration count
	nullLen := (n + 7) / 8
	if len(body) < fixed+nullLen+1 {
		return nil, errTruncated
	}
	nulls := body[fixed : fixed+nullLen]
	rest := body[fixed+nullLen:]
	bound := rest[0]
	rest = rest[1:]
	if bound == 1 {
		if len(rest) < 2*n {
			return nil, errTruncated
		}
		st.types = append(st.types[:0], rest[:2*n]...)
		rest = rest[2*n:]
	}
	if len(st.types) != 2*n {
		return nil, errors.New("no parameter types were ever sent for this statement")
	}
	out := make([]any, n)
	for i := range n {
		if nulls[i/8]&(1<<(i%8)) != 0 {
			continue
		}
		if data, ok := st.long[uint16(i)]; ok {
			out[i] = data.value()
			continue
		}
		v, r, err := decodeValue(st.types[2*i], st.types[2*i+1]&unsignedFlag != 0, rest, max)
		if err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i+1, err)
		}
		out[i], rest = v, r
	}
	return out, nil
}

// decodeValue reads one value of type typ.
func decodeValue(typ byte, unsigned bool, b []byte, max int) (any, []byte, error) {
	if size := fixedSize(typ); size > 0 {
		if len(b) < size {
			return nil, nil, errTruncated
		}
		return fixedValue(typ, unsigned, b[:size]), b[size:], nil
	}
	switch typ {
	case typeNull:
		return nil, b, nil
	case typeDate:
		return temporal(b, dateOnly)
	case typeDateTime, typeTimestamp:
		return temporal(b, dateTime)
	case typeTime:
		return temporal(b, timeOfDay)
	}
	s, rest, ok := lenencBytes(b)
	if !ok {
		return nil, nil, errTruncated
	}
	return value(s, max), rest, nil // strings, decimals, blobs, JSON, enums, bits, geometry
}

func fixedSize(typ byte) int {
	switch typ {
	case typeTiny:
		return 1
	case typeShort, typeYear:
		return 2
	case typeLong, typeInt24, typeFloat:
		return 4
	case typeLongLong, typeDouble:
		return 8
	}
	return 0
}

func fixedValue(typ byte, unsigned bool, b []byte) any {
	var u uint64
	var s int64
	switch len(b) {
	case 1:
		u, s = uint64(b[0]), int64(int8(b[0]))
	case 2:
		v := binary.LittleEndian.Uint16(b)
		u, s = uint64(v), int64(int16(v))
	case 4:
		v := binary.LittleEndian.Uint32(b)
		if typ == typeFloat {
			return float(float64(math.Float32frombits(v)), float32(math.Float32frombits(v)))
		}
		u, s = uint64(v), int64(int32(v))
	case 8:
		u = binary.LittleEndian.Uint64(b)
		if typ == typeDouble {
			f := math.Float64frombits(u)
			return float(f, f)
		}
		s = int64(u)
	}
	if unsigned {
		return u
	}
	return s
}

// float is a FLOAT or DOUBLE parameter as recorded: the number itself
// (a FLOAT as float32, which the recording writes with the fewest digits
// that read back as the same float32: 0.1, not 0.10000000149011612), or
// its name as text for NaN and the infinities, which JSON has no number for.
func float(f float64, v any) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return v
}

// value is how a string, decimal or blob parameter is recorded: text, or
// {"base64": …} when it is not UTF-8. Past max bytes (0: no cap), text is
// left in place for cutParams (it may hold a password redaction must see
// first), and bytes are cut at once.
func value(s []byte, max int) any {
	switch {
	case max <= 0 || len(s) <= max:
		return text(s)
	case utf8.Valid(s):
		return unsafe.String(&s[0], len(s))
	}
	return recorder.CutParam(s, max) // base64 of the prefix: nothing of s stays
}

// cutParams cuts, after redaction, the text parameters longer than max
// as recorder.CutParam does, copying their prefixes out of the packet.
func cutParams(params []any, max int) {
	if max <= 0 {
		return
	}
	for i, v := range params {
		if s, ok := v.(string); ok && len(s) > max {
			prefix, cut := recorder.CutSQL(s, max) // CutParam's rule for text
			params[i] = map[string]string{"prefix": strings.Clone(prefix), "bytes": strconv.FormatInt(cut.Bytes, 10), "sha256": cut.SHA256}
		}
	}
}

// text is s as a string when it is UTF-8, else as {"base64": …}.
func text(s []byte) any {
	if utf8.Valid(s) {
		return string(s)
	}
	return map[string]string{"base64": base64.StdEncoding.EncodeToString(s)}
}

type temporalKind int

const (
	dateTime temporalKind = iota
	dateOnly
	timeOfDay
)

// temporal reads a DATE/DATETIME/TIMESTAMP or TIME value: a length byte and
// as many of its fields as are not zero, rendered as MySQL prints them.
func temporal(b []byte, kind temporalKind) (any, []byte, error) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return nil, nil, errTruncated
	}
	n, v := int(b[0]), b[1:1+int(b[0])]
	rest := b[1+n:]
	if kind == timeOfDay {
		return formatTime(v), rest, nil
	}
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
	var buf [32]byte
	out := appendDigits(buf[:0], uint64(y), 4)
	out = appendDigits(append(out, '-'), uint64(mo), 2)
	out = appendDigits(append(out, '-'), uint64(d), 2)
	if kind == dateOnly && n <= 4 {
		return string(out), rest, nil
	}
	out = appendDigits(append(out, ' '), uint64(h), 2)
	out = appendDigits(append(out, ':'), uint64(mi), 2)
	out = appendDigits(append(out, ':'), uint64(s), 2)
	if us > 0 {
		out = appendDigits(append(out, '.'), uint64(us), 6)
	}
	return string(out), rest, nil
}

// appendDigits appends v in decimal, zero-padded to width digits (as
// fmt's %0*d does): fmt was most of the cost of an execute's audit.
func appendDigits(b []byte, v uint64, width int) []byte {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], v, 10)
	for range width - len(d) {
		b = append(b, '0')
	}
	return append(b, d...)
}

func formatTime(v []byte) string {
	if len(v) < 8 {
		return "00:00:00"
	}
	var buf [40]byte
	out := buf[:0]
	if v[0] == 1 {
		out = append(out, '-')
	}
	hours := uint64(binary.LittleEndian.Uint32(v[1:]))*24 + uint64(v[5])
	out = appendDigits(out, hours, 2)
	out = appendDigits(append(out, ':'), uint64(v[6]), 2)
	out = appendDigits(append(out, ':'), uint64(v[7]), 2)
	if len(v) >= 12 {
		if us := binary.LittleEndian.Uint32(v[8:]); us > 0 {
			out = appendDigits(append(out, '.'), uint64(us), 6)
		}
	}
	return string(out)
}

// longData is a parameter sent in chunks (COM_STMT_SEND_LONG_DATA): its
// first max bytes, its size, and its SHA-256 once it is longer (the audit
// does not hold a large value in memory).
type longData struct {
	max  int // 0: no cap
	head []byte
	size int
	sum  hash.Hash // from the chunk that went past max
}

func (l *longData) add(chunk []byte) {
	l.size += len(chunk)
	if l.max <= 0 {
		l.head = append(l.head, chunk...)
		return
	}
	if l.sum == nil && l.size > l.max {
		l.sum = sha256.New()
		l.sum.Write(l.head)
	}
	if l.sum != nil {
		l.sum.Write(chunk)
	}
	if room := l.max - len(l.head); room > 0 {
		l.head = append(l.head, chunk[:min(room, len(chunk))]...)
	}
}

// value is how the parameter is recorded: as value records it, and past
// max in the shape recorder.CutParam gives, from the prefix and hash
// taken on the way.
func (l *longData) value() any {
	if l.sum == nil {
		return text(l.head)
	}
	m := map[string]string{"bytes": strconv.Itoa(l.size), "sha256": hex.EncodeToString(l.sum.Sum(nil))}
	if cut := utf8Prefix(l.head); utf8.Valid(cut) {
		m["prefix"] = string(cut)
	} else {
		m["base64_prefix"] = base64.StdEncoding.EncodeToString(l.head)
	}
	return m
}

// utf8Prefix is b without a UTF-8 character its end cuts in two.
func utf8Prefix(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}
