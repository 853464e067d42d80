package recorder

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unsafe"
)

// appendEvent appends ev as one events.jsonl line (without the newline),
// the JSON encoding/json gives an Event, decoded to the same values, but
// written without reflection: a database session records an event per
// statement, and json.Marshal was a tenth of the bastion's CPU per query.
// It falls back to json.Marshal for what it does not know (a parameter of
// an unusual type, a time or number JSON cannot hold), so it fails exactly
// when json.Marshal does.
func appendEvent(dst []byte, ev *Event) ([]byte, error) {
	start := len(dst)
	out, ok := appendEventFast(dst, ev)
	if ok {
		return out, nil
	}
	b, err := marshalEvent(*ev)
	if err != nil {
		return dst[:start], err
	}
	return append(dst[:start], b...), nil
}

// marshalEvent is json.Marshal of a copy of an event: the copy goes to
// the heap on this rare path, where marshalling ev itself would make every
// caller's event escape, an allocation per recorded statement.
func marshalEvent(ev Event) ([]byte, error) { return json.Marshal(&ev) }

// appendEventFast is appendEvent's hand-written path; false sends the
// event to json.Marshal. Fields come in Event's order, empty ones omitted
// as its omitempty tags say.
func appendEventFast(b []byte, ev *Event) ([]byte, bool) {
	y := ev.Time.Year()
	if y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b = ev.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":`...)
	b = appendString(b, ev.Type)
	if ev.Channel != nil {
		b = append(b, `,"channel":`...)
		b = strconv.AppendInt(b, int64(*ev.Channel), 10)
	}
	b = appendStringField(b, `,"command":`, ev.Command)
	b = appendStringField(b, `,"op":`, ev.Op)
	b = appendStringField(b, `,"path":`, ev.Path)
	b = appendStringField(b, `,"to":`, ev.To)
	if ev.Bytes != 0 {
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, ev.Bytes, 10)
	}
	b = appendStringField(b, `,"host":`, ev.Host)
	if ev.Port != 0 {
		b = append(b, `,"port":`...)
		b = strconv.AppendInt(b, int64(ev.Port), 10)
	}
	if ev.SQLCut != nil || ev.Outcomes != nil || ev.Notification != nil { // rare: the reflecting path is fine
		return b, false
	}
	b = appendStringField(b, `,"sql":`, ev.SQL)
	if len(ev.Params) > 0 {
		b = append(b, `,"params":[`...)
		for i, p := range ev.Params {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendValue(b, p); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = appendStringField(b, `,"statement":`, ev.Statement)
	if ev.Redacted {
		b = append(b, `,"redacted":true`...)
	}
	if ev.DurationMS != 0 {
		var ok bool
		b = append(b, `,"duration_ms":`...)
		if b, ok = appendFloat(b, ev.DurationMS, 64); !ok {
			return b, false
		}
	}
	if o := ev.Outcome; o != nil {
		b = append(b, `,"outcome":{`...)
		mark := len(b)
		b = appendStringField(b, `,"sql":`, o.SQL)
		if o.NotExecuted {
			b = append(b, `,"not_executed":true`...)
		}
		b = appendIntField(b, `,"bytes":`, o.Bytes)
		b = appendStringField(b, `,"tag":`, o.Tag)
		if o.Rows != nil {
			b = append(b, `,"rows":`...)
			b = strconv.AppendInt(b, *o.Rows, 10)
		}
		b = appendStringField(b, `,"error_code":`, o.ErrorCode)
		b = appendStringField(b, `,"error":`, o.Error)
		if len(b) > mark { // the first field's comma goes
			b = append(b[:mark], b[mark+1:]...)
		}
		b = append(b, '}')
	}
	b = appendStringField(b, `,"tx":`, ev.Tx)
	b = appendIntField(b, `,"statements":`, ev.Statements)
	b = appendStringField(b, `,"from":`, ev.From)
	if ev.Streams != nil { // exec_end only, once a channel: the reflecting path is fine
		return b, false
	}
	b = appendStringField(b, `,"mode":`, ev.Mode)
	if ev.Size != nil {
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, *ev.Size, 10)
	}
	b = appendStringField(b, `,"direction":`, ev.Direction)
	b = appendStringField(b, `,"sha256":`, ev.SHA256)
	b = appendIntField(b, `,"to_target":`, ev.ToTarget)
	b = appendIntField(b, `,"to_client":`, ev.ToClient)
	b = appendStringField(b, `,"stream":`, ev.Stream)
	b = appendIntField(b, `,"offset":`, ev.Offset)
	b = appendStringField(b, `,"signal":`, ev.Signal)
	b = appendStringField(b, `,"source":`, ev.Source)
	b = appendStringField(b, `,"text":`, ev.Text)
	if ev.ExitStatus != nil {
		b = append(b, `,"exit_status":`...)
		b = strconv.AppendInt(b, int64(*ev.ExitStatus), 10)
	}
	b = appendStringField(b, `,"reason":`, ev.Reason)
	return append(b, '}'), true
}

func appendIntField(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}

func appendStringField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendString appends s as a JSON string (see appendJSONString), which
// only reads the bytes it is given: viewing s as a slice saves a copy.
func appendString(b []byte, s string) []byte {
	return appendJSONString(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// appendValue appends a query parameter as the proxies decode them; false
// for any other type.
func appendValue(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendString(b, v), true
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"'), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int32:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), true
	case uint64:
		return strconv.AppendUint(b, v, 10), true
	case float32:
		return appendFloat(b, float64(v), 32)
	case float64:
		return appendFloat(b, v, 64)
	case map[string]string: // {"base64": ...} for a binary parameter
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(v)) { // encoding/json sorts keys
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendString(b, k), ':')
			b = appendString(b, v[k])
		}
		return append(b, '}'), true
	}
	return b, false
}

// appendFloat formats f as encoding/json does: like ES6, plain digits
// unless the magnitude is tiny or huge. NaN and infinities are no JSON.
func appendFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	n := len(b)
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' { // e-09 becomes e-9
		if k := len(b) - n; k >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b, true
}
