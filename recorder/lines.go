package recorder

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"
)

// Lines of events.jsonl have no length limit a session could exceed: a
// statement kept whole (recordings.max_statement_bytes 0) may make one
// line of hundreds of megabytes. Readers hold a line whole up to
// maxWholeLine; past it they stream the line: the JSON replay copies it
// through as it is, and what decodes it gets it shrunk, every string
// longer than maxShownString cut to its start and a note of its length.
const (
	// maxWholeLine is the longest line readers hold whole.
	maxWholeLine = 1 << 20
	// maxShownString is how much of one string of a longer line its
	// shrunk form keeps: what the text replay and the console show.
	maxShownString = 64 << 10
	// maxShrunkLine bounds a shrunk line: past it, strings keep only
	// their first minShownString bytes (a query with thousands of long
	// parameters).
	maxShrunkLine  = 4 << 20
	minShownString = 256
)

// lineReader reads '\n'-terminated lines of any length in bounded memory.
type lineReader struct {
	br   *bufio.Reader
	buf  []byte
	shr  shrinker
	long bool // the last line was longer than maxWholeLine
}

func newLineReader(br *bufio.Reader) *lineReader { return &lineReader{br: br} }

// next reads one line, with its '\n'. A line up to maxWholeLine comes
// whole; a longer one is copied as it is to raw (when not nil) while it is
// read, and comes shrunk (long is then true). At the end of the input it
// returns io.ErrUnexpectedEOF and no line; a last line without '\n' is
// dropped, as a chunk never ends inside a record.
func (l *lineReader) next(raw io.Writer) ([]byte, error) {
	l.buf, l.long = l.buf[:0], false
	for {
		frag, err := l.br.ReadSlice('\n')
		if !l.long && len(l.buf)+len(frag) > maxWholeLine {
			l.long = true
			l.shr.reset()
			if err := l.stream(raw, l.buf); err != nil {
				return nil, err
			}
			l.buf = l.buf[:0]
		}
		if l.long {
			if werr := l.stream(raw, frag); werr != nil {
				return nil, werr
			}
		} else {
			l.buf = append(l.buf, frag...)
		}
		switch {
		case err == nil && l.long:
			return l.shr.out, nil
		case err == nil:
			return l.buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// stream hands a piece of a long line to raw and the shrinker.
func (l *lineReader) stream(raw io.Writer, p []byte) error {
	if raw != nil {
		if _, err := raw.Write(p); err != nil {
			return err
		}
	}
	l.shr.write(p)
	return nil
}

// shrinker copies JSON text, cutting each string longer than
// maxShownString (fewer once the copy is past maxShrunkLine) to its start
// and a note of its decoded length: "start… (N bytes, first M shown)".
// It never cuts inside an escape sequence or a UTF-8 character, so the
// copy is JSON when the input is.
type shrinker struct {
	out    []byte
	inStr  bool
	esc    bool   // the last byte was an escaping '\'
	hex    []byte // a \u escape so far, from its 'u'
	shown  int    // source bytes of the current string copied
	n      int64  // decoded bytes of the current string
	shownN int64  // decoded bytes of the current string copied
	cut    bool   // the rest of the current string is left out
}

func (s *shrinker) reset() { *s = shrinker{out: s.out[:0], hex: s.hex[:0]} }

func (s *shrinker) write(p []byte) {
	for _, c := range p {
		s.byte(c)
	}
}

func (s *shrinker) byte(c byte) {
	if !s.inStr {
		s.out = append(s.out, c)
		if c == '"' {
			s.inStr, s.shown, s.n, s.shownN, s.cut = true, 0, 0, 0, false
		}
		return
	}
	atChar := !s.esc && len(s.hex) == 0 // c starts a character or an escape
	if atChar && c == '"' {
		if s.cut {
			s.out = append(s.out, cutNote(s.n, s.shownN)...)
		}
		s.out = append(s.out, c)
		s.inStr = false
		return
	}
	s.count(c)
	if !s.cut && atChar && utf8.RuneStart(c) && s.shown >= s.limit() {
		s.cut = true
	}
	if s.cut {
		return
	}
	s.out = append(s.out, c)
	s.shown++
	if !s.esc && len(s.hex) == 0 {
		s.shownN = s.n
	}
}

// limit is how many source bytes of a string the copy keeps.
func (s *shrinker) limit() int {
	if len(s.out) > maxShrunkLine {
		return minShownString
	}
	return maxShownString
}

// count adds c to the string's decoded length, following escapes.
func (s *shrinker) count(c byte) {
	switch {
	case len(s.hex) > 0: // a digit of \uXXXX
		s.countHex(c)
	case s.esc: // the character after '\'
		s.esc = false
		if c == 'u' {
			s.hex = append(s.hex[:0], c)
			return
		}
		s.n++
	case c == '\\':
		s.esc = true
	default:
		s.n++
	}
}

// countHex takes a digit of a \uXXXX escape and, at the last one, adds
// the character's UTF-8 length (a surrogate pair's four at its first half).
func (s *shrinker) countHex(c byte) {
	s.hex = append(s.hex, c)
	if len(s.hex) < 5 {
		return
	}
	r, err := strconv.ParseUint(string(s.hex[1:]), 16, 32)
	s.hex = s.hex[:0]
	switch {
	case err != nil:
	case r >= 0xd800 && r < 0xdc00:
		s.n += 4
	case r >= 0xdc00 && r < 0xe000:
	default:
		s.n += int64(utf8.RuneLen(rune(r)))
	}
}

// cutNote is what a cut string ends with.
func cutNote(total, shown int64) string {
	return "… (" + strconv.FormatInt(total, 10) + " bytes, first " + sizeText(shown) + " shown)"
}

// sizeText is n bytes for people: "64 KiB" when a whole number of KiB or
// MiB, else "N bytes".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return plural(n, "byte")
}

// LineReader reads JSON lines (events.jsonl, a JSON replay) of any length
// in bounded memory: a line up to 1 MiB comes whole; a longer one comes
// with every string past 64 KiB cut to its start and a note of its length,
// "start… (N bytes, first 64 KiB shown)". The JSON replay has such lines
// whole.
type LineReader struct{ l *lineReader }

// NewLineReader reads lines from r.
func NewLineReader(r io.Reader) *LineReader {
	return &LineReader{l: newLineReader(bufio.NewReaderSize(r, readBufferSize))}
}

// Next returns the next line, valid until the following call; io.EOF at
// the end.
func (r *LineReader) Next() ([]byte, error) {
	line, err := r.l.next(nil)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, io.EOF
	}
	return line, err
}
