package ssh

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/sallyport/sallyport/recorder"
)

// SFTP packet types (draft-ietf-secsh-filexfer-02, as OpenSSH speaks it).
const (
	sftpOpen     = 3
	sftpClose    = 4
	sftpRead     = 5
	sftpWrite    = 6
	sftpLstat    = 7
	sftpSetstat  = 9
	sftpFsetstat = 10
	sftpOpendir  = 11
	sftpRemove   = 13
	sftpMkdir    = 14
	sftpRmdir    = 15
	sftpRealpath = 16
	sftpStat     = 17
	sftpRename   = 18
	sftpSymlink  = 20
	sftpStatus   = 101
	sftpHandle   = 102
	sftpData     = 103
	sftpExtended = 200
)

// sftpEOF is the status a read past the end of a file gets.
const sftpEOF = 1

// sftpStatusNames are the status codes of version 3, as recorded in
// outcome.error_code.
var sftpStatusNames = []string{"ok", "eof", "no_such_file", "permission_denied", "failure",
	"bad_message", "no_connection", "connection_lost", "op_unsupported"}

// sftpCapture is how much of a packet the parser keeps: enough for two
// paths of PATH_MAX; the data of reads and writes is only counted and
// hashed as it passes.
const sftpCapture = 9 << 10

// maxSFTPPending bounds the requests awaiting an answer that the parser
// tracks, and the open handles; maxSFTPPendingBytes the paths they hold. A
// client flooding requests gets the excess recorded without its outcome
// (and its files without a hash), not an unbounded map.
const (
	maxSFTPPending      = 4096
	maxSFTPPendingBytes = 1 << 20
)

// sftpParser follows an sftp subsystem in both directions and records file
// operations with the server's answer: opens, read and written byte counts
// and hashes per file, removes, renames, mkdir, rmdir, setstat, symlinks,
// and stat, lstat and realpath of paths that fail.
type sftpParser struct {
	emit func(recorder.Event)
	ch   int

	mu      sync.Mutex
	pending map[uint32]sftpPending
	held    int // bytes of paths and handles in pending
	handles map[string]*sftpFile
	cli     packetReader
	srv     packetReader
}

// sftpPending is a request awaiting its answer.
type sftpPending struct {
	op       string // open, opendir, read, write, remove, rename, stat, ...
	path, to string
	mode     string
	handle   string
	offset   uint64 // of a read
}

func (pd sftpPending) size() int { return len(pd.path) + len(pd.to) + len(pd.handle) }

// sftpFile is an open handle: what was read and written through it.
type sftpFile struct {
	path          string
	read, written int64
	rsum, wsum    sftpSum
	eof           bool   // a read at the end of what was read in order got EOF
	rerr, werr    string // the first failed read or write, as "code: message"
}

// sftpSum hashes the data of one direction of a handle while it comes in
// order from offset 0.
type sftpSum struct {
	next   uint64
	h      hash.Hash
	owed   uint64 // bytes of the last piece still to come
	broken bool
}

func newSFTPParser(emit func(recorder.Event), ch int) *sftpParser {
	p := &sftpParser{emit: emit, ch: ch, pending: map[uint32]sftpPending{}, handles: map[string]*sftpFile{}}
	p.cli.handle, p.srv.handle = p.request, p.response
	return p
}

func (p *sftpParser) fromClient(b []byte) { p.mu.Lock(); p.cli.feed(b); p.mu.Unlock() }
func (p *sftpParser) fromServer(b []byte) { p.mu.Lock(); p.srv.feed(b); p.mu.Unlock() }

// flush records the requests never answered, without an outcome, and the
// files never closed.
func (p *sftpParser) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(p.pending)) {
		if pd := p.pending[id]; pd.recorded() {
			p.event(recorder.Event{Op: pd.op, Path: pd.path, To: pd.to, Mode: pd.mode})
		}
	}
	clear(p.pending)
	p.held = 0
	files := slices.Collect(maps.Keys(p.handles))
	slices.SortFunc(files, func(a, b string) int { return cmp.Compare(p.handles[a].path, p.handles[b].path) })
	for _, h := range files {
		p.closeHandle(h)
	}
}

// recorded reports whether the request is recorded whatever its answer;
// reads and writes are summed up per file, stats only recorded when they fail.
func (pd sftpPending) recorded() bool {
	switch pd.op {
	case "read", "write", "stat", "lstat", "realpath":
		return false
	}
	return true
}

func (p *sftpParser) event(ev recorder.Event) {
	ch := p.ch
	ev.Type, ev.Channel = recorder.EventSFTP, &ch
	p.emit(ev)
}

// sftpOutcome is the outcome a STATUS answer gives.
func sftpOutcome(code uint32, msg string) *recorder.Outcome {
	if code == 0 {
		return &recorder.Outcome{}
	}
	name := fmt.Sprintf("status_%d", code)
	if int(code) < len(sftpStatusNames) {
		name = sftpStatusNames[code]
	}
	return &recorder.Outcome{ErrorCode: name, Error: msg}
}

// track keeps a request until its answer; past the bounds, a recorded
// request is recorded now, without its outcome.
func (p *sftpParser) track(id uint32, pd sftpPending) bool {
	if _, dup := p.pending[id]; !dup && len(p.pending) < maxSFTPPending && p.held+pd.size() <= maxSFTPPendingBytes {
		p.pending[id] = pd
		p.held += pd.size()
		return true
	}
	if pd.recorded() {
		p.event(recorder.Event{Op: pd.op, Path: pd.path, To: pd.to, Mode: pd.mode})
	}
	return false
}

// answer takes the request that id answers off the pending list.
func (p *sftpParser) answer(id uint32) (sftpPending, bool) {
	pd, ok := p.pending[id]
	if ok {
		delete(p.pending, id)
		p.held -= pd.size()
	}
	return pd, ok
}

// sftpOps names the requests recorded by path, with their answer.
var sftpOps = map[byte]string{sftpOpen: "open", sftpOpendir: "opendir", sftpRemove: "remove", sftpMkdir: "mkdir",
	sftpRmdir: "rmdir", sftpSetstat: "setstat", sftpRename: "rename", sftpSymlink: "symlink",
	sftpStat: "stat", sftpLstat: "lstat", sftpRealpath: "realpath"}

// request handles one client packet: body is its captured prefix, and rest
// the bytes of it still to come, which go where the returned func says.
func (p *sftpParser) request(body []byte, rest uint32) func([]byte) {
	d := sftpDecoder{b: body}
	typ, id := d.byte(), d.uint32()
	switch typ {
	case sftpOpen, sftpMkdir, sftpSetstat:
		path := d.string()
		if typ == sftpOpen {
			d.uint32() // pflags
		}
		p.track(id, sftpPending{op: sftpOps[typ], path: path, mode: d.mode()})
	case sftpOpendir, sftpRemove, sftpRmdir, sftpStat, sftpLstat, sftpRealpath:
		p.track(id, sftpPending{op: sftpOps[typ], path: d.string()})
	case sftpRename, sftpSymlink:
		from, to := d.string(), d.string()
		p.track(id, sftpPending{op: sftpOps[typ], path: from, to: to})
	case sftpExtended:
		if d.string() == "posix-rename@openssh.com" {
			from, to := d.string(), d.string()
			p.track(id, sftpPending{op: "rename", path: from, to: to})
		}
	case sftpFsetstat:
		if f := p.handles[d.string()]; f != nil {
			p.track(id, sftpPending{op: "setstat", path: f.path, mode: d.mode()})
		}
	case sftpRead:
		h := d.string()
		if f := p.handles[h]; f != nil && !p.track(id, sftpPending{op: "read", handle: h, offset: d.uint64()}) {
			f.rsum.broken = true // its data will not be matched to an offset
		}
	case sftpWrite:
		return p.write(id, &d, rest)
	case sftpClose:
		p.closeHandle(d.string())
	}
	return nil
}

// write counts and hashes a write's data; the data beyond the captured
// prefix is hashed by the returned func as it passes.
func (p *sftpParser) write(id uint32, d *sftpDecoder, rest uint32) func([]byte) {
	h := d.string()
	off, n := d.uint64(), d.uint32()
	f := p.handles[h]
	if f == nil || !d.ok() {
		return nil
	}
	f.written += int64(n)
	p.track(id, sftpPending{op: "write", handle: h})
	return f.wsum.at(off, d.b, n, rest)
}

// response handles one server packet, as request does.
func (p *sftpParser) response(body []byte, rest uint32) func([]byte) {
	d := sftpDecoder{b: body}
	typ, id := d.byte(), d.uint32()
	pd, ok := p.answer(id)
	if !ok {
		return nil
	}
	switch typ {
	case sftpHandle:
		h := d.string()
		if (pd.op == "open" || pd.op == "opendir") && d.ok() {
			if len(p.handles) < maxSFTPPending && p.handles[h] == nil {
				p.handles[h] = &sftpFile{path: pd.path}
			}
			p.event(recorder.Event{Op: pd.op, Path: pd.path, Mode: pd.mode, Outcome: &recorder.Outcome{}})
		}
	case sftpData:
		if f := p.handles[pd.handle]; f != nil && pd.op == "read" {
			n := d.uint32()
			f.read += int64(n)
			f.eof = false
			if !d.ok() {
				f.rsum.broken = true
				return nil
			}
			return f.rsum.at(pd.offset, d.b, n, rest)
		}
	case sftpStatus:
		code := d.uint32()
		p.status(pd, sftpOutcome(code, d.string()), code)
	default:
		if pd.recorded() { // an answer that is no answer to it
			p.event(recorder.Event{Op: pd.op, Path: pd.path, To: pd.to, Mode: pd.mode})
		}
	}
	return nil
}

// status records a request's STATUS answer.
func (p *sftpParser) status(pd sftpPending, out *recorder.Outcome, code uint32) {
	switch pd.op {
	case "read", "write":
		f := p.handles[pd.handle]
		switch {
		case f == nil || code == 0:
		case pd.op == "read" && code == sftpEOF:
			f.eof = f.eof || pd.offset == f.rsum.next
		case pd.op == "read" && f.rerr == "":
			f.rerr = out.ErrorCode + ": " + out.Error
		case pd.op == "write" && f.werr == "":
			f.werr = out.ErrorCode + ": " + out.Error
		}
	case "stat", "lstat", "realpath":
		if code != 0 {
			p.event(recorder.Event{Op: pd.op, Path: pd.path, Outcome: out})
		}
	default:
		p.event(recorder.Event{Op: pd.op, Path: pd.path, To: pd.to, Mode: pd.mode, Outcome: out})
	}
}

// closeHandle records what was read and written through a handle: bytes,
// the SHA-256 when the whole file crossed in order from offset 0 (to its
// end for a read), and the first error.
func (p *sftpParser) closeHandle(h string) {
	f := p.handles[h]
	if f == nil {
		return
	}
	delete(p.handles, h)
	if f.read > 0 || f.eof {
		ev := recorder.Event{Op: "read", Path: f.path, Bytes: f.read, Direction: "download", Outcome: fileOutcome(f.rerr)}
		if f.eof && f.rerr == "" {
			ev.SHA256 = f.rsum.sum()
		}
		p.event(ev)
	}
	if f.written > 0 {
		ev := recorder.Event{Op: "write", Path: f.path, Bytes: f.written, Direction: "upload", Outcome: fileOutcome(f.werr)}
		if f.werr == "" {
			ev.SHA256 = f.wsum.sum()
		}
		p.event(ev)
	}
}

func fileOutcome(err string) *recorder.Outcome {
	if err == "" {
		return &recorder.Outcome{}
	}
	code, msg, _ := strings.Cut(err, ": ")
	return &recorder.Outcome{ErrorCode: code, Error: msg}
}

// at takes a piece of n bytes at offset off, of which head is here and the
// rest follows through the returned func; a piece out of order, or whose
// length does not add up, ends the hash.
func (s *sftpSum) at(off uint64, head []byte, n, rest uint32) func([]byte) {
	if s.broken || s.owed > 0 || off != s.next || uint64(len(head))+uint64(rest) != uint64(n) {
		s.broken = true
		return nil
	}
	if s.h == nil {
		s.h = sha256.New()
	}
	s.h.Write(head)
	s.next += uint64(n)
	if rest == 0 {
		return nil
	}
	s.owed = uint64(rest)
	h := s.h
	return func(b []byte) {
		h.Write(b)
		s.owed -= uint64(len(b))
	}
}

// sum is the hex SHA-256 of all the pieces, or "" when they were not
// whole and in order.
func (s *sftpSum) sum() string {
	if s.broken || s.owed > 0 || s.h == nil {
		return ""
	}
	return hex.EncodeToString(s.h.Sum(nil))
}

// packetReader splits a byte stream into length-prefixed packets. It keeps
// at most sftpCapture bytes of each and hands them to handle; the bytes of
// a longer packet beyond those go to the func handle returned.
type packetReader struct {
	hdr    [4]byte
	hdrN   int
	length uint32
	got    uint32
	body   []byte
	headed bool         // handle has seen the packet's captured prefix
	spill  func([]byte) // where the rest goes; nil drops it
	handle func(body []byte, rest uint32) func([]byte)
}

func (r *packetReader) feed(p []byte) {
	for len(p) > 0 {
		if r.hdrN < 4 {
			n := copy(r.hdr[r.hdrN:], p)
			r.hdrN += n
			p = p[n:]
			if r.hdrN == 4 {
				r.length, r.got, r.body = binary.BigEndian.Uint32(r.hdr[:]), 0, r.body[:0]
				r.headed, r.spill = false, nil
				r.done()
			}
			continue
		}
		n := uint32(min(uint64(len(p)), uint64(r.length-r.got)))
		piece := p[:n]
		if !r.headed {
			k := min(len(piece), sftpCapture-len(r.body))
			r.body = append(r.body, piece[:k]...)
			r.got += uint32(k)
			piece = piece[k:]
			if r.got < r.length && len(r.body) == sftpCapture {
				r.headed = true
				r.spill = r.handle(r.body, r.length-r.got)
			}
		}
		if len(piece) > 0 {
			if r.spill != nil {
				r.spill(piece)
			}
			r.got += uint32(len(piece))
		}
		p = p[n:]
		r.done()
	}
}

// done hands over a complete packet and waits for the next header.
func (r *packetReader) done() {
	if r.hdrN == 4 && r.got == r.length {
		if r.length > 0 && !r.headed {
			r.handle(r.body, 0)
		}
		r.hdrN, r.spill = 0, nil
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

// mode reads ATTRS and returns its permission bits in octal ("0644"), or
// "" when it carries none.
func (d *sftpDecoder) mode() string {
	flags := d.uint32()
	if flags&0x1 != 0 { // size
		d.uint64()
	}
	if flags&0x2 != 0 { // uid, gid
		d.uint64()
	}
	perm := d.uint32()
	if flags&0x4 == 0 || !d.ok() {
		return ""
	}
	return fmt.Sprintf("%04o", perm&0o7777)
}
