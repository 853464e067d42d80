package recorder

// ansiStripper removes terminal control sequences from output so that text
// replay reads like the screen did. It keeps state across calls, because a
// sequence may be split between two reads.
type ansiStripper struct {
	state int
	out   []byte
}

const (
	ansiText = iota
	ansiEsc  // after ESC
	ansiCSI  // in ESC [ ... final
	ansiOSC  // in ESC ] ... BEL or ESC \
	ansiOSCEsc
	ansiCR // after a carriage return
)

// strip returns data without escape sequences and control characters other
// than newline and tab; the result is valid until the next call.
func (a *ansiStripper) strip(data []byte) []byte {
	a.out = a.out[:0]
	for i := 0; i < len(data); i++ {
		a.step(data[i])
	}
	return a.out
}

func (a *ansiStripper) step(c byte) {
	switch a.state {
	case ansiEsc:
		switch c {
		case '[':
			a.state = ansiCSI
		case ']':
			a.state = ansiOSC
		default: // a two-byte sequence, done
			a.state = ansiText
		}
	case ansiCSI:
		if c >= 0x40 && c <= 0x7e {
			a.state = ansiText
		}
	case ansiOSC:
		if c == 0x07 {
			a.state = ansiText
		} else if c == 0x1b {
			a.state = ansiOSCEsc
		}
	case ansiOSCEsc:
		a.state = ansiText
	default:
		a.text(c)
	}
}

func (a *ansiStripper) text(c byte) {
	if a.state == ansiCR && c != '\n' {
		a.out = append(a.out, '\n') // a lone CR starts the line again: show it as a new line
	}
	a.state = ansiText
	switch {
	case c == 0x1b:
		a.state = ansiEsc
	case c == '\r':
		a.state = ansiCR
	case c == '\n' || c == '\t' || c >= 0x20 && c != 0x7f:
		a.out = append(a.out, c)
	}
}
