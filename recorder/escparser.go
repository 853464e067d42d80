package recorder

// escParser follows one escape sequence, begun with ESC, byte by byte.
type escParser struct {
	state   byte
	private byte   // a CSI's parameter prefix: '?' for DEC private modes
	params  [4]int // a CSI's first parameters
	n       int    // how many parameters the CSI has
	final   byte   // a complete CSI's final byte
}

const (
	escNone      = iota
	escStart     // after ESC
	escCSI       // ESC [ parameters, up to a final byte
	escString    // OSC, DCS, APC, PM, SOS: up to BEL or ESC \
	escStringEsc // ESC in a string
	escOneMore   // ESC ( B and the like: one more byte
)

func (p *escParser) begin() { p.state = escStart }

// step takes the next byte of the sequence and reports whether it
// completed a CSI sequence (in final, private and params).
func (p *escParser) step(c byte) bool {
	switch p.state {
	case escStart:
		switch {
		case c == '[':
			*p = escParser{state: escCSI}
		case c == ']' || c == 'P' || c == '_' || c == '^' || c == 'X':
			p.state = escString
		case c >= 0x20 && c <= 0x2f || c == 'O': // charset designation, SS3
			p.state = escOneMore
		default:
			p.state = escNone
		}
	case escCSI:
		return p.csi(c)
	case escString:
		if c == 0x07 {
			p.state = escNone
		} else if c == 0x1b {
			p.state = escStringEsc
		}
	case escStringEsc:
		if c == '\\' {
			p.state = escNone
			break
		}
		p.state = escStart // ESC cancels the string and starts a sequence
		return p.step(c)
	case escOneMore:
		p.state = escNone
	}
	return false
}

func (p *escParser) csi(c byte) bool {
	switch {
	case c >= '0' && c <= '9':
		if p.n == 0 {
			p.n = 1
		}
		if p.n <= len(p.params) && p.params[p.n-1] < 1e6 {
			p.params[p.n-1] = p.params[p.n-1]*10 + int(c-'0')
		}
	case c == ';':
		p.n = max(p.n, 1) + 1
	case c >= '<' && c <= '?':
		p.private = c
	case c >= 0x40 && c <= 0x7e:
		p.state, p.final = escNone, c
		return true
	case c == 0x1b:
		p.state = escStart
	}
	return false
}

// param is parameter i of a CSI; def when absent or 0.
func (p *escParser) param(i, def int) int {
	if i < min(p.n, len(p.params)) && p.params[i] > 0 {
		return p.params[i]
	}
	return def
}
