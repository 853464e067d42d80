package recorder

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
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
	execReader
	w     *bufio.Writer
	casts []*castCursor
	strip ansiStripper // the terminals'
	open  string       // whose line is open: "" none, termLine, or an exec tag
	tx    txHold       // the lines of an open database transaction (txmarks.go)
}

// termLine marks an open line of terminal output.
const termLine = "\x00term"

func newTextPlayer(ctx context.Context, src Source, w *bufio.Writer) *textPlayer {
	return &textPlayer{execReader: newExecReader(ctx, src), w: w}
}

// ownStreams tells Replay that the player reads streams other than
// events.jsonl with its own cursors.
func (p *textPlayer) ownStreams() {}

func (p *textPlayer) start(meta SessionMeta) error {
	if err := p.index(); err != nil {
		return err
	}
	refs := p.refs
	seen := map[string]bool{}
	for _, r := range refs {
		if r.stream != eventsStream && !isExecStream(r.stream) && !seen[r.stream] {
			seen[r.stream] = true
			p.casts = append(p.casts, &castCursor{sc: newStreamCursor(p.ctx, p.src, refs, r.stream)})
		}
	}
	_, err := fmt.Fprintf(p.w, "# session %s: %s on %s (%s, login %s) from %s, started %s\n",
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
	p.eventLine(ev, "# "+at.UTC().Format(time.RFC3339Nano)+" "+describe(ev)+"\n")
	return nil
}

func (p *textPlayer) finish() error {
	err := p.terminalUntil(time.Time{}, false)
	p.closeLine()
	if p.tx.ended {
		p.releaseTx("")
	}
	p.releaseTx(" (transaction still open at the end)")
	for _, c := range p.casts {
		c.sc.Close()
	}
	p.closeAll()
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
	lr    *lineReader
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
	if c.lr == nil {
		c.lr = newLineReader(bufio.NewReaderSize(c.sc, readBufferSize))
	}
	for {
		line, err := c.lr.next(nil)
		if errors.Is(err, io.ErrUnexpectedEOF) {
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

// data prints the stretch a data event places: its text, or one line
// naming its length and SHA-256 when it is binary.
func (p *textPlayer) data(ev Event) error {
	st, err := p.stretch(ev, maxTextStretch)
	if err != nil {
		return err
	}
	tag := fmt.Sprintf("[ch%d %s] ", chanOf(ev), ev.Stream)
	if st.binary {
		p.closeLine()
		_, err := fmt.Fprintf(p.w, "%s<binary: %s, sha256 %s>\n", tag, plural(ev.Bytes, "byte"), st.sum)
		return err
	}
	p.execText(tag, st.text)
	if st.more > 0 {
		p.closeLine()
		_, err := fmt.Fprintf(p.w, "%s… (%s; recording export --stream %s has them all)\n", tag, plural(st.more, "more byte"), st.name)
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

// endExec lets go of a finished channel's cursors, printing a character
// its last stretch left cut.
func (p *textPlayer) endExec(ch int) {
	for _, dir := range execStreams {
		if carry := p.release(ch, dir); len(carry) > 0 {
			p.execText(fmt.Sprintf("[ch%d %s] ", ch, dir), append(carry, '\n'))
		}
	}
}
