package mysql

// Bounds of what the server-side scanner keeps of a packet.
const (
	// keepWhole: packets up to this size are handed over whole (OK, ERR,
	// EOF, column counts, prepare answers are all far smaller).
	keepWhole = 4 << 10
	// keepPrefix: of larger packets (rows) only this much is kept: enough
	// to tell a row from an end-of-rows packet.
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
	size   int  // logical size so far
	body   []byte
}

// feed scans p; it copies what it keeps.
func (f *packetScanner) feed(p []byte) {
	for len(p) > 0 {
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
		if room := f.limit() - len(f.body); room > 0 {
			f.body = append(f.body, p[:min(take, room)]...)
		}
		p, f.remain, f.size = p[take:], f.remain-take, f.size+take
		if f.remain == 0 {
			f.end()
		}
	}
}

// limit is how much of the current packet is kept.
func (f *packetScanner) limit() int {
	if f.full || f.size > 0 && f.size+f.remain > keepWhole {
		return keepPrefix
	}
	if f.size == 0 && f.remain > keepWhole {
		return keepPrefix
	}
	return keepWhole
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
