package ssh

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"

	"github.com/sallyport/sallyport/recorder"
)

// Bounds of what the scp parser keeps. A control line or message is a name
// of NAME_MAX and some digits, or one error line; the real scp reads 2 KiB
// of either. A path deeper than maxSCPPath could not be created anyway.
const (
	maxSCPLine = 4 << 10
	maxSCPPath = 16 << 10
)

// scpState is what the parser expects next.
type scpState int

const (
	scpStart  scpState = iota // the sink's first answer: ready or not
	scpCtrl                   // a control line (or error message) from the source
	scpAck                    // the sink's answer to the last control line or file
	scpData                   // file data from the source
	scpStatus                 // the source's status byte after the data
	scpDead                   // not followed any more
)

// scpParser follows a legacy scp (rcp protocol) transfer in both
// directions and records each file and directory it moves. The source (the
// client for `scp -t`, the target for `scp -f`) sends control lines and
// file data; the sink answers each with \0, or \1 or \2 and a message.
// Each side waits for the other, so the two streams take strict turns;
// anything else stops the parser with one note. File data is hashed as it
// passes and never kept.
type scpParser struct {
	emit func(recorder.Event)
	ch   int
	cmd  scpCommand
	op   string // upload or download

	mu     sync.Mutex
	state  scpState
	after  byte      // what the awaited answer is for: 'C', 'D', 'E', 'T' or 'F' (a file's end)
	line   []byte    // the control line or message being read
	lineAt int64     // where it starts in its stream
	msg    bool      // line is the source's error message after a file's data
	dirs   []string  // directories entered, as full paths
	file   *scpFile  // the file being carried
	name   string    // the name of the last C or D line
	mode   string    // and its mode
	seen   [2]int64  // bytes taken from the source and from the sink
	sum    hash.Hash // of the file being carried
}

// scpFile is the file a C line announced.
type scpFile struct {
	path    string
	mode    string
	size    int64
	bytes   int64
	crossed bool // all size bytes went by
}

// The two streams, for seen and for notes.
const (
	scpSource = 0
	scpSink   = 1
)

func newSCPParser(emit func(recorder.Event), ch int, cmd scpCommand) *scpParser {
	op := "download"
	if cmd.Upload {
		op = "upload"
	}
	return &scpParser{emit: emit, ch: ch, cmd: cmd, op: op}
}

// fromClient takes the bytes the client sends towards the target.
func (p *scpParser) fromClient(b []byte) {
	if p.cmd.Upload {
		p.feed(scpSource, b)
	} else {
		p.feed(scpSink, b)
	}
}

// fromServer takes what the target's scp writes to its stdout.
func (p *scpParser) fromServer(b []byte) {
	if p.cmd.Upload {
		p.feed(scpSink, b)
	} else {
		p.feed(scpSource, b)
	}
}

// flush runs at the channel's end: a file or exchange left in the middle
// is recorded as cut.
func (p *scpParser) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.state == scpDead:
	case p.file != nil:
		p.stop(scpSource, p.seen[scpSource], "the channel ended during "+p.file.path)
	case p.state == scpAck, len(p.line) > 0:
		p.stop(scpSink, p.seen[scpSink], "the channel ended in the middle of an exchange")
	}
}

func (p *scpParser) feed(side int, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(b) > 0 && p.state != scpDead {
		n := p.step(side, b)
		p.seen[side] += int64(n)
		b = b[n:]
	}
}

// step consumes what it can of b, which came from side, and returns how
// much; 0 only after stopping.
func (p *scpParser) step(side int, b []byte) int {
	want := scpSource
	if p.state == scpStart || p.state == scpAck {
		want = scpSink
	}
	if side != want {
		p.stop(side, p.seen[side], "it sent out of turn")
		return 0
	}
	switch p.state {
	case scpData:
		f := p.file
		n := int(min(int64(len(b)), f.size-f.bytes))
		p.sum.Write(b[:n])
		f.bytes += int64(n)
		if f.bytes == f.size {
			p.state, f.crossed = scpStatus, true
		}
		return n
	case scpStatus:
		switch b[0] {
		case 0:
			p.state, p.after = scpAck, 'F'
		case 1, 2: // the source could not read its file: a message follows
			p.state, p.msg = scpCtrl, true
		default:
			p.stop(side, p.seen[side], fmt.Sprintf("%s carries more than the %d bytes announced", p.file.path, p.file.size))
			return 0
		}
		return 1
	}
	return p.lineByte(side, b)
}

// lineByte reads a control line, a message or an answer up to its newline;
// a \0 answer is one byte.
func (p *scpParser) lineByte(side int, b []byte) int {
	if len(p.line) == 0 && p.state != scpCtrl && b[0] == 0 {
		p.answered("")
		return 1
	}
	if len(p.line) == 0 {
		p.lineAt = p.seen[side]
	}
	i := bytes.IndexByte(b, '\n')
	take := b
	if i >= 0 {
		take = b[:i]
	}
	if len(p.line)+len(take) > maxSCPLine {
		p.stop(side, p.lineAt, fmt.Sprintf("a line is longer than %d bytes", maxSCPLine))
		return 0
	}
	p.line = append(p.line, take...)
	if i < 0 {
		return len(b)
	}
	line := string(p.line)
	p.line = p.line[:0]
	if p.state == scpCtrl {
		p.control(side, line)
	} else {
		// As scp's response(): \1 or \2 and a message is an error, and
		// so is any other text (a shell's complaint before scp ran).
		p.answered(strings.TrimLeft(line, "\x01\x02"))
	}
	return i + 1
}

// answered handles the sink's answer; msg is empty for \0 (done).
func (p *scpParser) answered(msg string) {
	ok := msg == ""
	outcome := &recorder.Outcome{Error: msg}
	prev := p.state
	p.state = scpCtrl
	switch {
	case prev == scpStart:
		if !ok { // the sink cannot write there at all (scp -d into no directory)
			p.event(recorder.Event{Op: p.op, Path: p.cmd.Path, Outcome: outcome})
		}
	case p.after == 'C' && ok:
		p.state = scpData
		if p.file.size == 0 {
			p.state, p.file.crossed = scpStatus, true
		}
	case p.after == 'C', p.after == 'F':
		if p.file != nil {
			p.fileEvent(outcome)
		}
	case p.after == 'D':
		path := p.pathOf(p.name)
		p.event(recorder.Event{Op: "mkdir", Path: path, Mode: p.mode, Outcome: outcome})
		if ok {
			p.dirs = append(p.dirs, path)
		}
	case p.after == 'E' && len(p.dirs) > 0:
		p.dirs = p.dirs[:len(p.dirs)-1]
	}
}

// control handles one line from the source (without its newline).
func (p *scpParser) control(side int, line string) {
	if p.msg || line != "" && (line[0] == 1 || line[0] == 2) {
		msg := strings.TrimLeft(line, "\x01\x02")
		if p.msg { // after a file's data: the source's read failed, what crossed is not its content
			p.msg, p.file.crossed = false, false
			p.fileEvent(&recorder.Outcome{Error: msg})
			p.state, p.after = scpAck, 'F'
			return
		}
		// In place of a file: scp -f cannot send what the path names.
		p.event(recorder.Event{Op: p.op, Path: p.pathOf(""), Outcome: &recorder.Outcome{Error: msg}})
		return
	}
	if line == "" {
		p.stop(side, p.lineAt, "an empty control line")
		return
	}
	p.state, p.after = scpAck, line[0]
	switch line[0] {
	case 'E', 'T':
		return
	case 'C', 'D':
		if why := p.entry(line); why != "" {
			p.stop(side, p.lineAt, why)
		}
		return
	}
	p.stop(side, p.lineAt, fmt.Sprintf("%.32q is not a control line", line))
}

// entry reads "C0644 size name" or "D0755 0 name" as scp's sink does.
func (p *scpParser) entry(line string) string {
	mode, rest, ok := strings.Cut(line[1:], " ")
	if !ok || len(mode) != 4 || strings.Trim(mode, "01234567") != "" {
		return "a control line has no mode of four octal digits"
	}
	sz, name, ok := strings.Cut(rest, " ")
	size, err := strconv.ParseInt(sz, 10, 64)
	if !ok || err != nil || strings.Trim(sz, "0123456789") != "" {
		return fmt.Sprintf("a control line has no size scp accepts (%.24q)", sz)
	}
	if name == "" || name == ".." || strings.Contains(name, "/") {
		return fmt.Sprintf("a control line names %.64q, which is no file name", name)
	}
	if len(p.pathOf(name)) > maxSCPPath {
		return fmt.Sprintf("a path is longer than %d bytes", maxSCPPath)
	}
	p.name, p.mode = name, mode
	if line[0] == 'C' {
		p.file = &scpFile{path: p.pathOf(name), mode: mode, size: size}
		if p.sum == nil {
			p.sum = sha256.New()
		}
		p.sum.Reset()
	}
	return ""
}

// pathOf is where name lands on the target, or comes from (the rule is in
// docs/recordings.md): inside a directory entered, that directory and
// name; at the top of a download, the path asked for, since scp -f sends
// the file or directory the path names; at the top of an upload into a
// directory — -d (several files), -r, or a path that can only be one
// ("dir/", ".", "~") — the path and name; otherwise the path itself, where
// scp -t writes a single file unless a directory of that name exists,
// which the bastion cannot see. name "" asks for the current directory.
func (p *scpParser) pathOf(name string) string {
	var dir string
	switch {
	case len(p.dirs) > 0:
		dir = p.dirs[len(p.dirs)-1]
	case name != "" && p.cmd.Upload && p.intoDir():
		dir = p.cmd.Path
	default:
		return p.cmd.Path
	}
	if name == "" {
		return dir
	}
	if d := strings.TrimRight(dir, "/"); d != "" {
		return d + "/" + name
	}
	return "/" + name
}

// intoDir reports whether an upload's path is taken as a directory.
func (p *scpParser) intoDir() bool {
	path := p.cmd.Path
	last := path[strings.LastIndexByte(path, '/')+1:]
	return p.cmd.Dir || p.cmd.Recursive || last == "" || last == "." || last == ".." ||
		strings.HasPrefix(path, "~") && !strings.Contains(path, "/")
}

// fileEvent records the file being carried and forgets it. Its SHA-256 is
// there when all of it crossed.
func (p *scpParser) fileEvent(outcome *recorder.Outcome) {
	f := p.file
	p.file = nil
	size := f.size
	ev := recorder.Event{Op: p.op, Path: f.path, Mode: f.mode, Size: &size, Bytes: f.bytes, Outcome: outcome}
	if f.crossed {
		ev.SHA256 = hex.EncodeToString(p.sum.Sum(nil))
	}
	p.event(ev)
}

func (p *scpParser) event(ev recorder.Event) {
	ch := p.ch
	ev.Type, ev.Channel, ev.Direction = recorder.EventSCP, &ch, p.op
	p.emit(ev)
}

// stop gives up following the stream: the file in flight is recorded as
// far as it came, and one note says where the stream was lost.
func (p *scpParser) stop(side int, at int64, why string) {
	if f := p.file; f != nil {
		out := fmt.Sprintf("incomplete: %d of %d bytes", f.bytes, f.size)
		if f.crossed {
			out = fmt.Sprintf("incomplete: all %d bytes crossed but %s did not confirm them", f.size, p.who(scpSink))
		}
		p.fileEvent(&recorder.Outcome{Error: out})
	}
	ch := p.ch
	p.emit(recorder.Event{Type: recorder.EventNote, Channel: &ch,
		Text: fmt.Sprintf("scp %s of %s: the stream could not be followed from byte %d of what %s sent: %s",
			p.op, p.cmd.Path, at, p.who(side), why)})
	p.state, p.file, p.line, p.dirs = scpDead, nil, nil, nil
}

// who names the party on side.
func (p *scpParser) who(side int) string {
	if (side == scpSource) == p.cmd.Upload {
		return "the client"
	}
	return "the target"
}
