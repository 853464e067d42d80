package ssh

import (
	"encoding/binary"
	"sync"

	"github.com/sallyport/sallyport/recorder"
)

// SFTP packet types (draft-ietf-secsh-filexfer-02, as OpenSSH speaks it).
const (
	sftpOpen     = 3
	sftpClose    = 4
	sftpRead     = 5
	sftpWrite    = 6
	sftpSetstat  = 9
	sftpOpendir  = 11
	sftpRemove   = 13
	sftpMkdir    = 14
	sftpRmdir    = 15
	sftpRename   = 18
	sftpSymlink  = 20
	sftpStatus   = 101
	sftpHandle   = 102
	sftpData     = 103
	sftpExtended = 200
)

// sftpCapture is how much of a packet the parser keeps: enough for two
// paths of PATH_MAX; the data of reads and writes is only counted.
const sftpCapture = 9 << 10

// maxSFTPPending bounds the requests awaiting an answer that the parser
// tracks; a client flooding requests gets the excess unrecorded, not an
// unbounded map.
const maxSFTPPending = 4096

// sftpParser follows an sftp subsystem in both directions and records file
// operations: opens with their outcome, read and written byte counts per
// file, removes, renames, mkdir, rmdir, setstat and symlinks.
type sftpParser struct {
	emit func(recorder.Event)
	ch   int

	mu      sync.Mutex
	pending map[uint32]sftpPending
	handles map[string]*sftpFile
	cli     packetReader
	srv     packetReader
}

type sftpPending struct {
	op     string // open, opendir, read
	path   string
	handle string
}

type sftpFile struct {
	path          string
	read, written int64
}

func newSFTPParser(emit func(recorder.Event), ch int) *sftpParser {
	p := &sftpParser{emit: emit, ch: ch, pending: map[uint32]sftpPending{}, handles: map[string]*sftpFile{}}
	p.cli.handle, p.srv.handle = p.request, p.response
	return p
}

func (p *sftpParser) fromClient(b []byte) { p.mu.Lock(); p.cli.feed(b); p.mu.Unlock() }
func (p *sftpParser) fromServer(b []byte) { p.mu.Lock(); p.srv.feed(b); p.mu.Unlock() }

// flush records the byte counts of files never closed.
func (p *sftpParser) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for h := range p.handles {
		p.closeHandle(h)
	}
}

func (p *sftpParser) event(op, path, to string, bytes int64, outcome *recorder.Outcome) {
	ch := p.ch
	p.emit(recorder.Event{Type: recorder.EventSFTP, Channel: &ch, Op: op, Path: path, To: to, Bytes: bytes, Outcome: outcome})
}

// request handles one client packet (body is its captured prefix).
func (p *sftpParser) request(body []byte) {
	d := sftpDecoder{b: body}
	typ, id := d.byte(), d.uint32()
	switch typ {
	case sftpOpen, sftpOpendir:
		op := map[byte]string{sftpOpen: "open", sftpOpendir: "opendir"}[typ]
		p.track(id, sftpPending{op: op, path: d.string()})
	case sftpRead:
		p.track(id, sftpPending{op: "read", handle: d.string()})
	case sftpWrite:
		h := d.string()
		d.uint64()
		if f := p.handles[h]; f != nil && d.ok() {
			f.written += int64(d.uint32())
		}
	case sftpClose:
		p.closeHandle(d.string())
	case sftpRemove, sftpMkdir, sftpRmdir, sftpSetstat:
		p.event(map[byte]string{sftpRemove: "remove", sftpMkdir: "mkdir", sftpRmdir: "rmdir", sftpSetstat: "setstat"}[typ], d.string(), "", 0, nil)
	case sftpRename, sftpSymlink:
		from, to := d.string(), d.string()
		p.event(map[byte]string{sftpRename: "rename", sftpSymlink: "symlink"}[typ], from, to, 0, nil)
	case sftpExtended:
		if name := d.string(); name == "posix-rename@openssh.com" {
			from, to := d.string(), d.string()
			p.event("rename", from, to, 0, nil)
		}
	}
}

func (p *sftpParser) track(id uint32, pd sftpPending) {
	if len(p.pending) < maxSFTPPending {
		p.pending[id] = pd
	}
}

// response handles one server packet.
func (p *sftpParser) response(body []byte) {
	d := sftpDecoder{b: body}
	typ, id := d.byte(), d.uint32()
	pd, ok := p.pending[id]
	if !ok {
		return
	}
	delete(p.pending, id)
	switch typ {
	case sftpHandle:
		h := d.string()
		if (pd.op == "open" || pd.op == "opendir") && d.ok() && len(p.handles) < maxSFTPPending {
			p.handles[h] = &sftpFile{path: pd.path}
			p.event(pd.op, pd.path, "", 0, nil)
		}
	case sftpData:
		if f := p.handles[pd.handle]; f != nil && pd.op == "read" {
			f.read += int64(d.uint32())
		}
	case sftpStatus:
		if pd.op == "open" || pd.op == "opendir" {
			d.uint32() // status code
			p.event(pd.op, pd.path, "", 0, &recorder.Outcome{Error: d.string()})
		}
	}
}

func (p *sftpParser) closeHandle(h string) {
	f := p.handles[h]
	if f == nil {
		return
	}
	delete(p.handles, h)
	if f.read > 0 {
		p.event("read", f.path, "", f.read, nil)
	}
	if f.written > 0 {
		p.event("write", f.path, "", f.written, nil)
	}
}

// packetReader splits a byte stream into length-prefixed packets, keeping
// at most sftpCapture bytes of each.
type packetReader struct {
	hdr    [4]byte
	hdrN   int
	length uint32
	got    uint32
	body   []byte
	handle func(body []byte)
}

func (r *packetReader) feed(p []byte) {
	for len(p) > 0 {
		if r.hdrN < 4 {
			n := copy(r.hdr[r.hdrN:], p)
			r.hdrN += n
			p = p[n:]
			if r.hdrN == 4 {
				r.length, r.got, r.body = binary.BigEndian.Uint32(r.hdr[:]), 0, r.body[:0]
				r.done()
			}
			continue
		}
		n := uint32(min(uint64(len(p)), uint64(r.length-r.got)))
		if room := sftpCapture - len(r.body); room > 0 {
			r.body = append(r.body, p[:min(int(n), room)]...)
		}
		r.got += n
		p = p[n:]
		r.done()
	}
}

// done hands over a complete packet and waits for the next header.
func (r *packetReader) done() {
	if r.hdrN == 4 && r.got == r.length {
		if r.length > 0 {
			r.handle(r.body)
		}
		r.hdrN = 0
	}
}

// sftpDecoder reads SFTP fields; after a short read every field is zero.
type sftpDecoder struct {
	b   []byte
	bad bool
}

func (d *sftpDecoder) ok() bool { return !d.bad }

func (d *sftpDecoder) take(n int) []byte {
	if d.bad || n < 0 || len(d.b) < n {
		d.bad = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *sftpDecoder) byte() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *sftpDecoder) uint32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *sftpDecoder) uint64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *sftpDecoder) string() string {
	n := d.uint32()
	if n > sftpCapture {
		d.bad = true
		return ""
	}
	return string(d.take(int(n)))
}
