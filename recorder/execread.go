package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// execReader reads the stretches of exec streams that data events place,
// with one cursor per stream walking the chain forward on its own: a data
// event may come before the chunk holding its bytes. It holds at most one
// chunk reader and one shown stretch per stream.
type execReader struct {
	ctx   context.Context
	src   Source
	refs  []chunkRef
	execs map[string]*execCursor
	head  []byte // the shown part of the stretch being read
}

func newExecReader(ctx context.Context, src Source) execReader {
	return execReader{ctx: ctx, src: src, execs: map[string]*execCursor{}}
}

// index lists the recording's chunks for the cursors.
func (r *execReader) index() error {
	refs, err := r.src.chunkIndex(r.ctx)
	r.refs = refs
	return err
}

// execCursor reads one exec stream at its data events.
type execCursor struct {
	sc    *streamCursor
	pos   int64 // bytes of the stream read so far
	strip ansiStripper
	carry []byte // the start of a UTF-8 character cut at the end of the last stretch
}

// stretch is one data event's bytes as a reader shows them.
type stretch struct {
	name   string // the stream, as export --stream names it
	text   []byte // printable text, escape sequences removed; valid until the next read
	binary bool
	sum    string // hex SHA-256 of a binary stretch
	more   int64  // bytes of a text stretch past the shown part
}

// stretch reads the bytes data event ev places, showing at most show of
// them: text when printable UTF-8, else their SHA-256.
func (r *execReader) stretch(ev Event, show int64) (stretch, error) {
	st := stretch{name: execStreamName(chanOf(ev), ev.Stream)}
	c, err := r.cursor(st.name, ev.Offset)
	if err != nil {
		return st, err
	}
	fail := func(err error) (stretch, error) {
		return st, fmt.Errorf("data event of %s at offset %d: %w", st.name, ev.Offset, err)
	}
	n := min(ev.Bytes, show)
	r.head = append(append(r.head[:0], c.carry...), make([]byte, n)...)
	carried := len(c.carry)
	c.carry = nil
	if err := c.read(r.head[carried:]); err != nil {
		return fail(err)
	}
	rest := ev.Bytes - n
	if !printable(r.head) {
		sum := sha256.New()
		sum.Write(r.head[carried:])
		if err := c.copyN(sum, rest); err != nil {
			return fail(err)
		}
		st.binary, st.sum = true, hex.EncodeToString(sum.Sum(nil))
		return st, nil
	}
	text := r.head
	if rest == 0 { // hold a cut character back for the stream's next stretch
		cut := incompleteTail(text)
		c.carry = append(c.carry, text[len(text)-cut:]...)
		text = text[:len(text)-cut]
	} else if err := c.copyN(io.Discard, rest); err != nil {
		return fail(err)
	}
	st.text, st.more = c.strip.strip(text), rest
	return st, nil
}

// skip passes over a data event's bytes without showing them.
func (r *execReader) skip(ev Event) error {
	name := execStreamName(chanOf(ev), ev.Stream)
	c, err := r.cursor(name, ev.Offset)
	if err != nil {
		return err
	}
	c.carry = nil
	return c.copyN(io.Discard, ev.Bytes)
}

// printable reports whether b reads as text: valid UTF-8 (a character cut
// at the end allowed) with no control bytes but tab, newlines, backspace,
// bell, form feed and the escape that starts a terminal sequence.
func printable(b []byte) bool {
	for _, c := range b {
		switch {
		case c == 0x7f:
			return false
		case c >= 0x20, c == '\t', c == '\n', c == '\r', c == '\b', c == '\a', c == '\f', c == '\v', c == 0x1b:
		default:
			return false
		}
	}
	return utf8.Valid(b[:len(b)-incompleteTail(b)])
}

// cursor returns the cursor of stream name, at offset: a new one for a
// stream not read yet, or one started afresh should offset lie behind it.
func (r *execReader) cursor(name string, offset int64) (*execCursor, error) {
	c := r.execs[name]
	if c != nil && c.pos > offset {
		c.sc.Close()
		c = nil
	}
	if c == nil {
		c = &execCursor{sc: newStreamCursor(r.ctx, r.src, r.refs, name)}
		r.execs[name] = c
	}
	if err := c.copyN(io.Discard, offset-c.pos); err != nil {
		return nil, fmt.Errorf("data event of %s at offset %d: %w", name, offset, err)
	}
	return c, nil
}

// release lets go of the cursor of stream dir of channel ch, returning the
// cut character its last stretch held back.
func (r *execReader) release(ch int, dir string) []byte {
	name := execStreamName(ch, dir)
	c := r.execs[name]
	if c == nil {
		return nil
	}
	c.sc.Close()
	delete(r.execs, name)
	return c.carry
}

func (r *execReader) closeAll() {
	for name, c := range r.execs {
		c.sc.Close()
		delete(r.execs, name)
	}
}

func (c *execCursor) read(b []byte) error {
	n, err := io.ReadFull(c.sc, b)
	c.pos += int64(n)
	return c.ended(err)
}

func (c *execCursor) copyN(w io.Writer, n int64) error {
	got, err := io.CopyN(w, c.sc, n)
	c.pos += got
	return c.ended(err)
}

// ended explains a stream shorter than its data events say.
func (c *execCursor) ended(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the recording holds only %d bytes of %s; run verify", c.pos, c.sc.stream)
	}
	return err
}
