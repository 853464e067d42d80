package recorder

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
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

// SWAR constants: one byte value repeated in each byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// specialBytes returns a word whose high bit is set in the byte of every
// byte of x that a JSON string cannot hold as is (below 0x20, '"', '\\',
// DEL, and the start of non-ASCII). A borrow may also flag bytes above a
// flagged one, never below: the lowest flag is always exact.
func specialBytes(x uint64) uint64 {
	quote, backslash, del := x^(ones*'"'), x^(ones*'\\'), x^(ones*0x7f)
	return ((x - ones*0x20) | (quote - ones) | (backslash - ones) | (del - ones) | x) & highs
}

// escapes holds, for every ASCII byte, its JSON string form packed
// little-endian into a word, with the form's length: stored as one 8-byte
// write however long the form.
var escapes = func() (t [utf8.RuneSelf]struct {
	word uint64
	n    int
}) {
	for c := range utf8.RuneSelf {
		var b [8]byte
		form := appendEscapedASCII(b[:0], byte(c))
		if safeASCII[c] {
			form = append(b[:0], byte(c))
		}
		t[c].word, t[c].n = binary.LittleEndian.Uint64(b[:]), len(form)
	}
	return t
}()

// replacementWord is the JSON form of U+FFFD, for a byte that is not UTF-8.
var replacementWord = binary.LittleEndian.Uint64([]byte(`\ufffd\x00\x00`))

// grow returns b with room for n more bytes, at least doubling its
// capacity when it must reallocate: append grows large slices by a quarter
// at a time, which copies a multi-megabyte buffer many times over as it fills.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	return append(make([]byte, 0, max(2*cap(b), len(b)+n)), b...)
}

// maxEscapedLen bounds the JSON string form of n bytes: six bytes each
// (\u001b), the quotes, and the slack of the last 8-byte write.
func maxEscapedLen(n int) int { return 6*n + 2 + 8 }

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as asciicast players expect valid UTF-8. It is the hot path of
// terminal recording: plain ASCII is checked and copied eight bytes at a
// time, and each escape is one table lookup and one store.
func appendJSONString(dst, s []byte) []byte {
	n := len(dst)
	out := grow(dst, maxEscapedLen(len(s)))[:n+maxEscapedLen(len(s))]
	out[n] = '"'
	n++
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			// Copy the word whole; only the bytes before the first special
			// one count, the rest is overwritten.
			w := binary.LittleEndian.Uint64(s[i:])
			binary.LittleEndian.PutUint64(out[n:], w)
			m := specialBytes(w)
			if m == 0 {
				i, n = i+8, n+8
				continue
			}
			k := bits.TrailingZeros64(m) / 8
			i, n = i+k, n+k
		} else if safeASCII[s[i]] {
			out[n] = s[i]
			i, n = i+1, n+1
			continue
		}
		var size int
		size, n = escapeAt(out, n, s[i:])
		i += size
	}
	out[n] = '"'
	return out[:n+1]
}

// escapeAt writes the JSON form of the byte or character at the start of
// s, which is not plain ASCII, to out at n; it returns the input bytes
// taken and the new n. out has 8 bytes of slack.
func escapeAt(out []byte, n int, s []byte) (int, int) {
	c := s[0]
	if c < utf8.RuneSelf {
		e := &escapes[c]
		binary.LittleEndian.PutUint64(out[n:], e.word)
		return 1, n + e.n
	}
	size := 1
	if c >= 0xc2 && c <= 0xf4 { // could start a valid sequence
		_, size = utf8.DecodeRune(s)
	}
	if size == 1 {
		binary.LittleEndian.PutUint64(out[n:], replacementWord)
		return 1, n + 6
	}
	return size, n + copy(out[n:], s[:size])
}

// appendEscapedASCII appends the JSON string form of an ASCII byte that
// cannot appear as is.
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
