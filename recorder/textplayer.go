package recorder

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// maxTextStretch is how much of one stretch of an exec stream the text
// replay prints; the rest is counted, and recording export has it.
const maxTextStretch = 64 << 10

// textPlayer prints a recording as a person reads it, in time order:
// terminal output as the screen showed it (escape sequences removed),
// exec channels' stdin, stdout and stderr as "[ch0 stdout] …" lines where
// their data events place them, and every other event as one "# time …"
// line. Replay gives it events.jsonl in chain order; it reads the
// terminals and exec streams with cursors of their own (cursor.go), so a
// terminal's last output still comes before the end event.
type textPlayer struct {
	ctx   context.Context
	src   Source
	w     *bufio.Writer
	refs  []chunkRef
	casts []*castCursor
	execs map[string]*execCursor
	strip ansiStripper // the terminals'
	open  string       // whose line is open: "" none, termLine, or an exec tag
	head  []byte       // the shown part of an exec stretch
}

// termLine marks an open line of terminal output.
const termLine = "\x00term"

func newTextPlayer(ctx context.Context, src Source, w *bufio.Writer) *textPlayer {
	return &textPlayer{ctx: ctx, src: src, w: w, execs: map[string]*execCursor{}}
}

// ownStreams tells Replay that the player reads streams other than
// events.jsonl with its own cursors.
func (p *textPlayer) ownStreams() {}

func (p *textPlayer) start(meta SessionMeta) error {
	refs, err := p.src.chunkIndex(p.ctx)
	if err != nil {
		return err
	}
	p.refs = refs
	seen := map[string]bool{}
	for _, r := range refs {
		if r.stream != eventsStream && !isExecStream(r.stream) && !seen[r.stream] {
			seen[r.stream] = true
			p.casts = append(p.casts, &castCursor{sc: newStreamCursor(p.ctx, p.src, refs, r.stream)})
		}
	}
	_, err = fmt.Fprintf(p.w, "# session %s: %s on %s (%s, login %s) from %s, started %s\n",
		meta.ID, meta.Identity, meta.Target, meta.Protocol, meta.Login, meta.Source, meta.StartedAt.Format(time.RFC3339))
	return err
}

// cast is not used: the terminals are read by castCursors.
func (p *textPlayer) cast(string, time.Time, string, []byte) error { return nil }

func (p *textPlayer) event(at time.Time, ev Event, _ []byte) error {
	if err := p.terminalUntil(at, true); err != nil {
		return err
	}
	if ev.Type == EventData {
		return p.data(ev)
	}
	if ev.Type == EventExecEnd {
		p.endExec(chanOf(ev))
	}
	p.closeLine()
	_, err := fmt.Fprintf(p.w, "# %s %s\n", at.UTC().Format(time.RFC3339Nano), describe(ev))
	return err
}

func (p *textPlayer) finish() error {
	err := p.terminalUntil(time.Time{}, false)
	p.closeLine()
	for _, c := range p.casts {
		c.sc.Close()
	}
	for name := range p.execs {
		p.execs[name].sc.Close()
	}
	return err
}

// closeLine ends a line left open by output without a newline, so the
// next stretch or event starts on a line of its own.
func (p *textPlayer) closeLine() {
	if p.open != "" {
		p.w.WriteByte('\n')
		p.open = ""
	}
}

// terminalUntil prints the terminals' output up to at (all of it when
// bounded is false), merging several terminals by time.
func (p *textPlayer) terminalUntil(at time.Time, bounded bool) error {
	for {
		var next *castCursor
		for _, c := range p.casts {
			ok, err := c.peek()
			if err != nil {
				return err
			}
			if ok && (!bounded || !c.at.After(at)) && (next == nil || c.at.Before(next.at)) {
				next = c
			}
		}
		if next == nil {
			return nil
		}
		if next.ev.code == "o" {
			p.terminal(next.ev.data)
		}
		next.have = false
	}
}

func (p *textPlayer) terminal(data []byte) {
	out := p.strip.strip(data)
	if len(out) == 0 {
		return
	}
	if p.open != "" && p.open != termLine {
		p.closeLine()
	}
	p.w.Write(out)
	p.open = ""
	if out[len(out)-1] != '\n' {
		p.open = termLine
	}
}

// castCursor reads one terminal's asciicast records in order.
type castCursor struct {
	sc    *streamCursor
	br    *bufio.Reader
	start time.Time
	ev    castEvent
	at    time.Time
	have  bool // ev holds the next record, not yet printed
	done  bool
}

// peek reads the next record unless one is waiting; false at the end.
func (c *castCursor) peek() (bool, error) {
	if c.have || c.done {
		return c.have, nil
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(c.sc, readBufferSize)
	}
	for {
		line, err := readLine(c.br, maxRecordLine)
		if errors.Is(err, io.ErrUnexpectedEOF) && len(line) == 0 {
			c.done = true
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", c.sc.stream, err)
		}
		if c.start.IsZero() {
			c.start = c.sc.header.First
		}
		if len(line) > 0 && line[0] == '{' { // the asciicast header
			continue
		}
		if err := parseCastEvent(line, &c.ev); err != nil {
			return false, fmt.Errorf("%s: %w", c.sc.stream, err)
		}
		c.at = c.start.Add(time.Duration(c.ev.t * float64(time.Second)))
		c.have = true
		return true, nil
	}
}

// execCursor reads one exec stream at its data events.
type execCursor struct {
	sc    *streamCursor
	pos   int64 // bytes of the stream read so far
	strip ansiStripper
	carry []byte // the start of a UTF-8 character cut at the end of the last stretch
}

// data prints the stretch a data event places: its text, or one line
// naming its length and SHA-256 when it is binary.
func (p *textPlayer) data(ev Event) error {
	name := execStreamName(chanOf(ev), ev.Stream)
	c, err := p.execCursor(name, ev.Offset)
	if err != nil {
		return err
	}
	tag := fmt.Sprintf("[ch%d %s] ", chanOf(ev), ev.Stream)
	n := min(ev.Bytes, maxTextStretch)
	p.head = append(p.head[:0], c.carry...)
	carried := len(c.carry)
	c.carry = nil
	p.head = append(p.head, make([]byte, n)...)
	if err := c.read(p.head[carried:]); err != nil {
		return fmt.Errorf("data event of %s at offset %d: %w", name, ev.Offset, err)
	}
	rest := ev.Bytes - n
	if !printable(p.head) {
		sum := sha256.New()
		sum.Write(p.head[carried:])
		if err := c.copyN(sum, rest); err != nil {
			return fmt.Errorf("data event of %s at offset %d: %w", name, ev.Offset, err)
		}
		p.closeLine()
		_, err := fmt.Fprintf(p.w, "%s<binary: %s, sha256 %s>\n", tag, plural(ev.Bytes, "byte"), hex.EncodeToString(sum.Sum(nil)))
		return err
	}
	text := p.head
	if rest == 0 {
		cut := incompleteTail(text)
		c.carry = append(c.carry, text[len(text)-cut:]...)
		text = text[:len(text)-cut]
	}
	p.execText(tag, c.strip.strip(text))
	if rest > 0 {
		if err := c.copyN(io.Discard, rest); err != nil {
			return fmt.Errorf("data event of %s at offset %d: %w", name, ev.Offset, err)
		}
		p.closeLine()
		_, err := fmt.Fprintf(p.w, "%s… (%s; recording export --stream %s has them all)\n", tag, plural(rest, "more byte"), name)
		return err
	}
	return nil
}

// execText prints text with tag in front of every line.
func (p *textPlayer) execText(tag string, text []byte) {
	for len(text) > 0 {
		if p.open != tag {
			p.closeLine()
			p.w.WriteString(tag)
		}
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line = text[:i+1]
		}
		p.w.Write(line)
		text = text[len(line):]
		p.open = tag
		if line[len(line)-1] == '\n' {
			p.open = ""
		}
	}
}

// printable reports whether b reads as text: valid UTF-8 (a character cut
// at the end allowed) with no control bytes but tab, newlines, backspace,
// bell, form feed and the escape that starts a terminal sequence.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\b' && c != '\a' && c != '\f' && c != '\v' && c != 0x1b || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(b[:len(b)-incompleteTail(b)])
}

// execCursor returns the cursor of stream name, at offset: a new one for a
// stream not read yet, or one started afresh should offset lie behind it.
func (p *textPlayer) execCursor(name string, offset int64) (*execCursor, error) {
	c := p.execs[name]
	if c != nil && c.pos > offset {
		c.sc.Close()
		c = nil
	}
	if c == nil {
		c = &execCursor{sc: newStreamCursor(p.ctx, p.src, p.refs, name)}
		p.execs[name] = c
	}
	if err := c.copyN(io.Discard, offset-c.pos); err != nil {
		return nil, fmt.Errorf("data event of %s at offset %d: %w", name, offset, err)
	}
	return c, nil
}

func (c *execCursor) read(b []byte) error {
	n, err := io.ReadFull(c.sc, b)
	c.pos += int64(n)
	return streamEnd(c, err)
}

func (c *execCursor) copyN(w io.Writer, n int64) error {
	got, err := io.CopyN(w, c.sc, n)
	c.pos += got
	return streamEnd(c, err)
}

func streamEnd(c *execCursor, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the recording holds only %d bytes of %s; run verify", c.pos, c.sc.stream)
	}
	return err
}

// endExec lets go of a finished channel's cursors, printing a character
// its last stretch left cut.
func (p *textPlayer) endExec(ch int) {
	for _, dir := range execStreams {
		name := execStreamName(ch, dir)
		if c := p.execs[name]; c != nil {
			if len(c.carry) > 0 {
				p.execText(fmt.Sprintf("[ch%d %s] ", ch, dir), append(c.carry, '\n'))
			}
			c.sc.Close()
			delete(p.execs, name)
		}
	}
}
