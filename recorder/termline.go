package recorder

import (
	"slices"
	"unicode/utf8"
)

// The cursor's screen line of a command tracker (commands.go): printable
// text, control characters and the escape sequences a shell's line editor
// uses to move and erase on it, applied as a terminal would.

// text writes printable bytes at the cursor, over what is there.
func (t *cmdTracker) text(run []byte) {
	if t.alt {
		return
	}
	t.hasMaybe = false           // the line editor went on: that newline was no Enter
	if t.cur >= maxCommandLine { // all of it would be dropped
		t.cut = true
		return
	}
	for _, c := range run {
		if c < utf8.RuneSelf {
			t.nutf = 0
			t.put(rune(c))
			continue
		}
		if utf8.RuneStart(c) || t.nutf == len(t.utf) {
			t.nutf = 0
		}
		t.utf[t.nutf] = c
		t.nutf++
		if t.nutf >= seqLen(t.utf[0]) {
			r, _ := utf8.DecodeRune(t.utf[:t.nutf])
			t.put(r)
			t.nutf = 0
		}
	}
}

func (t *cmdTracker) put(r rune) {
	if t.cur >= maxCommandLine {
		t.cut = true
		return
	}
	if t.cur < len(t.line) {
		t.line[t.cur] = r
	} else {
		t.line = append(t.line, r)
	}
	t.cur++
}

func (t *cmdTracker) control(at int64, c byte) {
	if c == 0x1b {
		t.esc.begin()
		return
	}
	if t.alt {
		return
	}
	switch c {
	case '\r':
		t.cur = t.rowStart()
	case '\n':
		t.lineEnd(at)
	case '\b':
		t.moveTo(t.cur - 1)
	case '\t':
		t.moveTo(t.cur + 8 - (t.cur-t.rowStart())%8)
	}
}

// rowStart is where the cursor's screen row starts in line. A cursor just
// past the last column still is on that row, as terminals wait for the
// next character to wrap.
func (t *cmdTracker) rowStart() int {
	if t.cur > 0 && t.cur%t.width == 0 {
		return t.cur - t.width
	}
	return t.cur - t.cur%t.width
}

// moveTo puts the cursor at index i of the line, padding it with blanks.
func (t *cmdTracker) moveTo(i int) {
	i = max(0, min(i, maxCommandLine))
	for len(t.line) < i {
		t.line = append(t.line, ' ')
	}
	t.cur = i
}

// blank writes n blanks from index i on, without moving the cursor.
func (t *cmdTracker) blank(i, n int) {
	for j := i; j < min(i+n, len(t.line)); j++ {
		t.line[j] = ' '
	}
}

// sequence applies a complete CSI sequence.
func (t *cmdTracker) sequence() {
	p := &t.esc
	if p.private == '?' && (p.final == 'h' || p.final == 'l') {
		for i := range min(p.n, len(p.params)) {
			t.mode(p.params[i], p.final == 'h')
		}
		return
	}
	if t.alt || p.private != 0 {
		return
	}
	n, row := p.param(0, 1), t.rowStart()
	switch p.final {
	case 'C':
		t.moveTo(t.cur + n)
	case 'D':
		t.moveTo(max(t.cur-n, row))
	case 'G', '`':
		t.moveTo(row + n - 1)
	case 'A':
		t.moveTo(t.cur - n*t.width)
	case 'B':
		t.moveTo(t.cur + n*t.width)
	case 'K':
		t.eraseInLine(p.param(0, 0), row)
	case 'P':
		end := min(t.cur+n, len(t.line))
		t.line = slices.Delete(t.line, t.cur, end)
	case '@':
		t.line = slices.Insert(t.line, t.cur, slices.Repeat([]rune{' '}, min(n, maxCommandLine))...)
		t.line = t.line[:min(len(t.line), maxCommandLine)]
	case 'X':
		t.blank(t.cur, n)
	case 'H', 'f': // elsewhere on the screen: a line of its own
		t.newLine(t.pos + 1)
		t.moveTo(p.param(1, 1) - 1)
	case 'J':
		if m := p.param(0, 0); m == 2 || m == 3 {
			col := t.cur - row
			t.newLine(t.pos + 1)
			t.moveTo(col)
		} else if m == 0 {
			t.line = t.line[:t.cur]
		}
	}
}

// eraseInLine applies CSI K: to the end of the row (0), from its start (1)
// or all of it (2).
func (t *cmdTracker) eraseInLine(mode, row int) {
	end := row + t.width
	switch mode {
	case 0:
		if end >= len(t.line) {
			t.line = t.line[:t.cur]
		} else {
			t.blank(t.cur, end-t.cur)
		}
	case 1:
		t.blank(row, t.cur-row+1)
	case 2:
		if end >= len(t.line) {
			t.line = t.line[:row]
			t.moveTo(t.cur)
		} else {
			t.blank(row, t.width)
		}
	}
}

// mode applies a DEC private mode set (on) or reset.
func (t *cmdTracker) mode(m int, on bool) {
	switch m {
	case 1049, 1047, 47: // alternate screen: a full-screen program
		if t.alt != on {
			t.alt, t.promptHere, t.cand, t.pending = on, false, false, 0
			t.newLine(t.pos + 1)
		}
	case 2004: // bracketed paste: a line editor starts or stops reading
		if on && !t.reading {
			t.pending = 0 // keys typed before the prompt: see lineEnd
		}
		t.reading = on
		if !on && t.hasMaybe { // right after a newline: the line was submitted
			t.done, t.hasMaybe = append(t.done, t.maybe), false
		} else if !on {
			t.promptHere = false // left without a newline (^C): nothing was submitted
		}
	}
}
