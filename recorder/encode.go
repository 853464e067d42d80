package recorder

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// safeASCII marks bytes that go into a JSON string unescaped.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && c != 0x7f
	}
	return t
}()

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as asciicast players expect valid UTF-8. It is the hot path of
// terminal recording, so it copies runs of plain ASCII at once.
func appendJSONString(dst, s []byte) []byte {
	dst = slices.Grow(dst, len(s)+2)
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if safeASCII[c] {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		if c < utf8.RuneSelf {
			dst = appendEscapedASCII(dst, c)
			i++
		} else {
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
		}
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendEscapedASCII(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// incompleteTail is how many bytes at the end of p start a UTF-8 sequence
// that the next write will complete; they are held back so a character
// split across two reads is not recorded as two U+FFFD.
func incompleteTail(p []byte) int {
	for n := 1; n <= 3 && n <= len(p); n++ {
		c := p[len(p)-n]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a leading byte: is its sequence longer than what we have?
			if need := seqLen(c); need > n {
				return n
			}
			return 0
		}
	}
	return 0
}

func seqLen(c byte) int {
	switch {
	case c >= 0xF0:
		return 4
	case c >= 0xE0:
		return 3
	case c >= 0xC0:
		return 2
	}
	return 1
}

// appendCastEvent appends one asciicast v2 event line: [t, "code", "data"].
func appendCastEvent(dst []byte, t time.Duration, code byte, data []byte) []byte {
	dst = append(dst, '[')
	dst = strconv.AppendFloat(dst, t.Seconds(), 'f', 6, 64)
	dst = append(dst, ',', ' ', '"', code, '"', ',', ' ')
	dst = appendJSONString(dst, data)
	return append(dst, ']', '\n')
}

// castHeader is the first line of an asciicast v2 file.
type castHeader struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
}

func appendCastHeader(dst []byte, cols, rows int, start time.Time, term string) []byte {
	h := castHeader{Version: 2, Width: cols, Height: rows, Timestamp: start.Unix()}
	if term != "" {
		h.Env = map[string]string{"TERM": term}
	}
	b, _ := json.Marshal(h) // cannot fail: plain fields
	return append(append(dst, b...), '\n')
}
