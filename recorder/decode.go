package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// castEvent is one decoded asciicast event line.
type castEvent struct {
	t    float64
	code string
	data []byte
}

// parseCastEvent decodes an asciicast v2 event line [t, "code", "data"]
// into ev, reusing ev.data. Lines in the shape the recorder writes take a
// fast path; anything else goes through encoding/json.
func parseCastEvent(line []byte, ev *castEvent) error {
	if fastCastEvent(line, ev) {
		return nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(line, &parts); err != nil || len(parts) != 3 {
		return fmt.Errorf("asciicast event %.40q is not [time, code, data]", line)
	}
	t, err := strconv.ParseFloat(string(parts[0]), 64)
	if err != nil {
		return fmt.Errorf("asciicast event time: %w", err)
	}
	var code, data string
	if err := json.Unmarshal(parts[1], &code); err != nil {
		return fmt.Errorf("asciicast event code: %w", err)
	}
	if err := json.Unmarshal(parts[2], &data); err != nil {
		return fmt.Errorf("asciicast event data: %w", err)
	}
	ev.t, ev.code, ev.data = t, code, append(ev.data[:0], data...)
	return nil
}

// fastCastEvent parses exactly `[<number>, "<c>", "<string>"]` + newline.
func fastCastEvent(line []byte, ev *castEvent) bool {
	line = bytes.TrimRight(line, "\n")
	if len(line) < 12 || line[0] != '[' || !bytes.HasSuffix(line, []byte(`"]`)) {
		return false
	}
	comma := bytes.IndexByte(line, ',')
	// [t, "c", "data"]: the data starts at comma+8 and ends before the
	// closing `"]`, so the line is at least comma+10 long.
	if comma < 0 || len(line) < comma+10 || string(line[comma:comma+3]) != `, "` ||
		string(line[comma+4:comma+8]) != `", "` {
		return false
	}
	t, err := strconv.ParseFloat(string(line[1:comma]), 64)
	if err != nil {
		return false
	}
	data, err := unquoteJSON(ev.data[:0], line[comma+8:len(line)-2])
	if err != nil {
		return false
	}
	ev.t, ev.code, ev.data = t, string(line[comma+3:comma+4]), data
	return true
}

var errBadString = errors.New("malformed JSON string")

// unquoteJSON appends the decoded contents of a JSON string body (without
// its quotes) to dst.
func unquoteJSON(dst, s []byte) ([]byte, error) {
	for len(s) > 0 {
		i := bytes.IndexAny(s, "\\\"")
		if i < 0 {
			return append(dst, s...), nil
		}
		if s[i] == '"' {
			return nil, errBadString
		}
		dst = append(dst, s[:i]...)
		var n int
		var err error
		if dst, n, err = unescape(dst, s[i:]); err != nil {
			return nil, err
		}
		s = s[i+n:]
	}
	return dst, nil
}

// unescape decodes the escape at the start of s, returning its length.
func unescape(dst, s []byte) ([]byte, int, error) {
	if len(s) < 2 {
		return nil, 0, errBadString
	}
	if c := simpleEscape(s[1]); c != 0 {
		return append(dst, c), 2, nil
	}
	r, ok := hex4(s)
	if !ok {
		return nil, 0, errBadString
	}
	if utf16.IsSurrogate(r) {
		if r2, ok2 := hex4(s[6:]); ok2 {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				return utf8.AppendRune(dst, dec), 12, nil
			}
		}
		return utf8.AppendRune(dst, utf8.RuneError), 6, nil
	}
	return utf8.AppendRune(dst, r), 6, nil
}

// hex4 parses `\uXXXX` at the start of s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s[2:6]), 16, 32)
	return rune(v), err == nil
}

// simpleEscape maps the letter of a one-letter JSON escape to its byte.
func simpleEscape(c byte) byte {
	switch c {
	case '"', '\\', '/':
		return c
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return 0
}
