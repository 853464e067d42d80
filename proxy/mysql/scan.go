package mysql

// Bounds of what the server-side scanner keeps of a packet.
const (
	// keepWhole: packets up to this size whose first byte may start an OK,
	// ERR or EOF are handed over whole (those are far smaller).
	keepWhole = 4 << 10
	// keepPrefix: of other packets (rows, column counts and definitions)
	// only this much is kept: enough for a column count, and to tell a row
	// from an end-of-rows packet.
	keepPrefix = 16
)

// packetScanner follows packet boundaries in the target-to-client stream.
// It sees the bytes as they are read, before they are forwarded unchanged,
// and hands each logical packet (continuations joined) to handle with its
// size and its bytes, or only their first keepPrefix when it is large.
type packetScanner struct {
	handle func(size int, b []byte)

	hdr    [4]byte
	nhdr   int
	remain int  // bytes left of the current physical packet
	full   bool // the current physical packet is 16 MB: the logical one goes on
	whole  bool // the current logical packet is kept whole
	size   int  // logical size so far
	body   []byte
}

// feed scans p. A packet that lies whole in p is handed over in place; of
// one that spans reads, it copies what it keeps.
func (f *packetScanner) feed(p []byte) {
	for len(p) > 0 {
		if f.remain == 0 && f.nhdr == 0 && f.size == 0 && len(p) >= 4 {
			n := int(p[0]) | int(p[1])<<8 | int(p[2])<<16
			if n < maxPacketPayload && len(p) >= 4+n {
				f.handle(n, p[4:4+keep(p[4:4+n])])
				p = p[4+n:]
				continue
			}
		}
		if f.remain == 0 {
			k := copy(f.hdr[f.nhdr:], p)
			p, f.nhdr = p[k:], f.nhdr+k
			if f.nhdr < len(f.hdr) {
				return
			}
			f.nhdr = 0
			f.remain = int(f.hdr[0]) | int(f.hdr[1])<<8 | int(f.hdr[2])<<16
			f.full = f.remain == maxPacketPayload
			if f.remain == 0 {
				f.end()
				continue
			}
		}
		take := min(len(p), f.remain)
		if f.size == 0 && take > 0 {
			f.whole = !f.full && f.remain <= keepWhole && mayEndResult(p[0])
		}
		if room := f.limit() - len(f.body); room > 0 {
			f.body = append(f.body, p[:min(take, room)]...)
		}
		p, f.remain, f.size = p[take:], f.remain-take, f.size+take
		if f.remain == 0 {
			f.end()
		}
	}
}

// keep is how much of a whole packet b is handed over: as limit says.
func keep(b []byte) int {
	if len(b) > 0 && len(b) <= keepWhole && mayEndResult(b[0]) {
		return len(b)
	}
	return min(len(b), keepPrefix)
}

// limit is how much of the current packet is kept.
func (f *packetScanner) limit() int {
	if f.whole {
		return keepWhole
	}
	return keepPrefix
}

// mayEndResult reports whether a packet starting with b may be an OK (or a
// prepare answer, or a binary row), an EOF, an ERR or a LOCAL INFILE request.
func mayEndResult(b byte) bool {
	return b == hdrOK || b == hdrEOF || b == hdrErr || b == hdrLocalInfile
}

// end closes a physical packet: the logical one is complete unless this
// one was 16 MB.
func (f *packetScanner) end() {
	if f.full {
		return
	}
	f.handle(f.size, f.body)
	f.size, f.body = 0, f.body[:0]
}
