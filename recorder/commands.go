package recorder

import (
	"bytes"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Typed commands. A shell echoes every line a person types, so a pty
// channel's output holds the commands typed in it whether or not
// keystrokes are recorded. The encoder feeds each pty channel's records to
// a cmdTracker, which follows the cursor's screen line as a terminal
// would, well enough for a shell's line editor, and writes each line
// submitted at a prompt as a command event with Source "terminal": a
// reconstruction, best effort.
//
// The shell is waiting for a line at a prompt when
//   - it turned bracketed paste on (CSI ?2004h: bash 5.1 and later, zsh,
//     fish), until it turns it off; or
//   - its output paused (promptPause) on a line ending in "$ ", "# ", "% "
//     or "> " once colours are removed, or beginning with the prompt seen
//     last. The text before the cursor at such a pause is the prompt, learnt
//     anew at each one.
//
// Such a line is submitted when it ends (LF) and, for a line editor using
// bracketed paste, it turns bracketed paste off right after: its newlines
// for a completion listing or a multi-line paste are not submissions. With
// input recorded, a line counts only when the user pressed Enter (CR or LF
// typed outside a bracketed paste), and the event takes the time of that
// keystroke. The command is the text after the prompt, or, when the line
// does not start with the prompt learnt, after its first "$ ", "# ", "% "
// or "> " (typed-ahead lines, PS2). Empty lines and lines ending in ^C are
// not commands.
//
// Nothing is reported while the alternate screen is on (full-screen
// programs: vim, less, top), and text never comes from the keystrokes:
// a password typed at a prompt that does not echo never becomes an event.

// maxCommandLine bounds the characters of the screen line a tracker keeps;
// a longer command is cut there and its event says so.
const maxCommandLine = 4096

// promptPause is how long a shell's output must stay quiet on a prompt
// before the tracker believes it waits for a line: people take longer to
// react, while output streaming past pauses much less between two reads
// (a read boundary right after "# " in a listing is not a prompt).
const promptPause = 50 * time.Millisecond

// maxPendingEnter bounds the Enter keystrokes waiting for their line's echo.
const maxPendingEnter = 16

// promptEnds are the endings of a shell prompt.
var promptEnds = [...][2]rune{{'$', ' '}, {'#', ' '}, {'%', ' '}, {'>', ' '}}

// typedCommand is a line submitted at a prompt.
type typedCommand struct {
	at, offset int64 // when it was submitted; where its line starts in the output
	text       string
	cut        bool // the line was longer than maxCommandLine
}

// cmdTracker follows one pty channel's terminal line and finds the
// commands submitted on it. It keeps state across records, as sequences
// and lines span reads.
type cmdTracker struct {
	width int // columns: where a long line wraps
	esc   escParser
	utf   [utf8.UTFMax]byte // an incomplete UTF-8 character
	nutf  int

	line    []rune // the cursor's line, from its start; wrapped rows follow each other
	cur     int    // the cursor's index in line; line is padded up to it
	cut     bool   // text past maxCommandLine was dropped
	lineOff int64  // output offset where line starts
	out     int64  // output bytes seen before the current record
	pos     int64  // output offset of the byte being handled

	alt        bool   // the alternate screen is on
	reading    bool   // bracketed paste is on: a line editor reads a line
	promptHere bool   // the line held a prompt when output paused
	prompt     []rune // the last prompt learnt
	cand       bool   // output stopped with the cursor on a line of text at candAt
	candAt     int64

	input     bool // keystrokes are recorded: Enter decides what was submitted
	keyEsc    escParser
	paste     bool // in a bracketed paste: Enter keys are text
	lastKey   byte
	pending   int   // Enter keystrokes whose line has not ended yet
	pendingAt int64 // time of the first of them

	maybe    typedCommand // a line ended while a line editor read: submitted if it stops reading next
	hasMaybe bool

	done []typedCommand
}

func newCmdTracker() *cmdTracker { return &cmdTracker{width: 80} }

// resize sets the width lines wrap at.
func (t *cmdTracker) resize(cols int) {
	if cols > 0 {
		t.width = cols
	}
}

// armed reports whether the current line could hold a command, or an
// Enter waits for its line: then every byte of output counts.
func (t *cmdTracker) armed() bool { return t.reading || t.promptHere || t.pending > 0 || t.hasMaybe }

// output follows terminal output data, recorded at time at. Whole lines
// that cannot hold a command are skipped at memory speed; only the line a
// prompt is on, and the rest of a read after its last newline, are
// followed character by character.
func (t *cmdTracker) output(at int64, data []byte) {
	t.confirm(at)
	hit := -1 // the next "ESC [ ?" at or after i, len(data) when none: modes
	// (alternate screen, bracketed paste) are all that matters in skipped lines
	for i := 0; i < len(data); {
		if t.esc.state == escNone && (t.alt || !t.armed()) {
			if hit < i {
				hit = i + indexPrivateCSI(data[i:], len(data)-i)
			}
			if n := t.skippable(data[i:hit], hit == len(data)); n > 0 {
				i += n
				if !t.alt {
					t.newLine(t.out + int64(i))
				}
				continue
			}
		}
		end := min(len(data), i+256)
		t.feed(at, data[i:end], t.out+int64(i))
		i = end
	}
	t.out += int64(len(data))
	t.cand = !t.alt && !t.promptHere && t.esc.state == escNone && t.cur > 0
	t.candAt = at
}

// indexPrivateCSI is the index of the first "ESC [ ?" in s, or none. It
// looks for the '?', rare in output, where ESC is not (colours).
func indexPrivateCSI(s []byte, none int) int {
	for i := 0; ; {
		j := bytes.IndexByte(s[i:], '?')
		if j < 0 {
			return none
		}
		if k := i + j; k >= 2 && s[k-2] == 0x1b && s[k-1] == '[' {
			return k - 2
		}
		i += j + 1
	}
}

// skippable is how many bytes at the start of region nothing depends on:
// on the alternate screen all of it (but an escape sequence cut at the end
// of the record), else up to its last newline.
func (t *cmdTracker) skippable(region []byte, atEnd bool) int {
	if !t.alt {
		return bytes.LastIndexByte(region, '\n') + 1
	}
	n := len(region)
	if atEnd && n > 0 && region[n-1] == 0x1b {
		n--
	} else if atEnd && n > 1 && region[n-2] == 0x1b && region[n-1] == '[' {
		n -= 2
	}
	return n
}

// feed follows p character by character; off is its first byte's offset.
func (t *cmdTracker) feed(at int64, p []byte, off int64) {
	for i := 0; i < len(p); {
		c := p[i]
		t.pos = off + int64(i)
		if t.esc.state != escNone {
			if t.esc.step(c) {
				t.sequence()
			}
			i++
			continue
		}
		if c >= 0x20 && c != 0x7f {
			j := i + 1
			for j < len(p) && p[j] >= 0x20 && p[j] != 0x7f {
				j++
			}
			t.text(p[i:j])
			i = j
			continue
		}
		t.control(at, c)
		i++
	}
}

// newLine starts an empty line at output offset off.
func (t *cmdTracker) newLine(off int64) {
	t.line, t.cur, t.cut, t.lineOff, t.nutf = t.line[:0], 0, false, off, 0
}

// lineEnd handles a newline: the line is submitted if a prompt was on it
// and Enter was pressed since. Where keystrokes are not recorded, or came
// before the prompt (typed ahead), a line editor's newline counts once it
// stops reading right after it, as bash does when it runs a line (its
// newlines when it lists completions or shows a multi-line paste do not);
// a newline after a prompt found by a pause counts without keystrokes.
func (t *cmdTracker) lineEnd(at int64) {
	t.hasMaybe = false
	entered := t.pending > 0
	if entered {
		t.pending--
		at = t.pendingAt
	}
	if t.reading || t.promptHere {
		if cmd, ok := t.command(); ok {
			c := typedCommand{at: at, offset: t.lineOff, text: cmd, cut: t.cut}
			switch {
			case entered || !t.input && !t.reading:
				t.done = append(t.done, c)
			case t.reading:
				t.maybe, t.hasMaybe = c, true
			}
		}
	}
	t.promptHere = false
	t.newLine(t.pos + 1)
}

// command is the text after the prompt on the line, if any. Only a line
// editor's line may begin with another prompt than the one learnt.
func (t *cmdTracker) command() (string, bool) {
	var rest []rune
	switch {
	case len(t.prompt) > 0 && hasPrefix(t.line, t.prompt):
		rest = t.line[len(t.prompt):]
	case !t.reading:
		return "", false
	default:
		i := promptEnd(t.line)
		if i < 0 {
			return "", false
		}
		t.prompt = append(t.prompt[:0], t.line[:i]...)
		rest = t.line[i:]
	}
	rest = trimBlanks(rest)
	if len(rest) == 0 || hasSuffix(rest, interrupted) {
		return "", false
	}
	return string(rest), true
}

// interrupted ends a line the user gave up with Ctrl-C: the terminal
// echoes ^C and the shell starts a new line without running it.
var interrupted = []rune("^C")

// endsPrompt reports whether s ends like a prompt.
func endsPrompt(s []rune) bool {
	n := len(s)
	return n >= 2 && s[n-1] == ' ' && slices.ContainsFunc(promptEnds[:], func(end [2]rune) bool { return s[n-2] == end[0] })
}

// promptEnd is the index after the first prompt ending in line, or -1.
func promptEnd(line []rune) int {
	for i := 1; i < len(line); i++ {
		if line[i] != ' ' {
			continue
		}
		for _, end := range promptEnds {
			if line[i-1] == end[0] {
				return i + 1
			}
		}
	}
	return -1
}

// confirm is called with the time of each record: when the previous
// output record ended with the cursor on a line of text and nothing came
// for promptPause, a shell may be waiting there.
func (t *cmdTracker) confirm(at int64) {
	if !t.cand {
		return
	}
	t.cand = false
	if at-t.candAt < int64(promptPause) || len(trimBlanks(t.line[t.cur:])) > 0 {
		return
	}
	switch {
	case len(t.prompt) > 0 && hasPrefix(t.line, t.prompt):
		t.promptHere, t.pending = true, 0
	case t.reading || endsPrompt(t.line[:t.cur]):
		t.prompt = append(t.prompt[:0], t.line[:t.cur]...)
		t.promptHere, t.pending = true, 0
	}
}

// keys follows keystrokes (recorded input) for Enter.
func (t *cmdTracker) keys(at int64, data []byte) {
	t.confirm(at)
	t.input = true
	for _, c := range data {
		prev := t.lastKey
		t.lastKey = c
		if t.keyEsc.state != escNone {
			if t.keyEsc.step(c) && t.keyEsc.final == '~' {
				switch t.keyEsc.param(0, 0) {
				case 200:
					t.paste = true
				case 201:
					t.paste = false
				}
			}
			continue
		}
		switch {
		case c == 0x1b:
			t.keyEsc.begin()
		case c == '\n' && prev == '\r': // one Enter sent as CR LF
		case (c == '\r' || c == '\n') && !t.paste && !t.alt && t.pending < maxPendingEnter:
			if t.pending == 0 {
				t.pendingAt = at
			}
			t.pending++
		}
	}
}

// trackCommands feeds a pty channel's record to the channel's tracker and
// writes the commands it completes to events.jsonl.
func (e *encoder) trackCommands(st *stream, r record, data []byte) {
	if st.cmds == nil {
		st.cmds = newCmdTracker()
	}
	t := st.cmds
	switch r.kind {
	case kindHeader, kindResize:
		t.resize(r.cols)
	case kindOutput:
		t.output(r.at, data)
	case kindInput:
		t.keys(r.at, data)
	}
	for _, c := range t.done {
		ch := r.ch
		ev := Event{Time: time.Unix(0, c.at).UTC(), Type: EventCommand, Channel: &ch, Command: c.text,
			Offset: c.offset, Source: "terminal"}
		if c.cut {
			ev.Text = fmt.Sprintf("command line cut at %d characters", maxCommandLine)
		}
		if line, err := appendEvent(nil, &ev); err == nil {
			e.addEventLine(c.at, line)
		}
	}
	t.done = t.done[:0]
}

func hasPrefix(s, prefix []rune) bool {
	return len(s) >= len(prefix) && slices.Equal(s[:len(prefix)], prefix)
}

func hasSuffix(s, suffix []rune) bool {
	return len(s) >= len(suffix) && slices.Equal(s[len(s)-len(suffix):], suffix)
}

func trimBlanks(s []rune) []rune {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
