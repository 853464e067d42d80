package ssh

import (
	"io"
	"sync"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/recorder"
)

// Relay buffer sizes, borrowed only while data flows (see pipe). Both bulk
// directions read several SSH packets at once (stdout eight, stdin four;
// eight cost 0.1x the bare relay's CPU per GB less than four): during a
// bulk transfer x/crypto answers nearly every channel read with a window adjustment to
// the sender, so fewer, larger reads mean fewer of those small packets and
// fewer goroutine wakeups, and each write hands the other leg (and the
// recorder, for terminals) one large piece. stderr rarely carries much.
const (
	stdoutBuffer = 256 << 10
	stdinBuffer  = 128 << 10
	stderrBuffer = 4 << 10
)

// relay copies one admitted session channel between client and target.
type relay struct {
	cc     *clientChannel
	up     gossh.Channel
	upReqs <-chan *gossh.Request
	rec    *recorder.Session
	upSock *relayConn   // the target's socket, under up
	out    func([]byte) // sees what the target sends, before the client does
	errOut func([]byte) // sees the target's stderr; nil: out does
	in     func([]byte) // sees what the client sends, before the target does
	end    func()       // runs when the channel is done

	exit   *int   // the exit status the target sent
	signal string // or the signal that ended the command
}

func newRelay(cc *clientChannel, up gossh.Channel, upReqs <-chan *gossh.Request, action iga.Action, command string, upSock *relayConn) *relay {
	_, rec := cc.c.session()
	r := &relay{cc: cc, up: up, upReqs: upReqs, rec: rec, upSock: upSock}
	id := cc.id
	switch {
	case action == iga.ActionSFTP && command == "": // the sftp subsystem, not legacy scp
		p := newSFTPParser(func(ev recorder.Event) { _ = rec.Event(ev) }, id)
		r.out, r.in, r.end = p.fromServer, p.fromClient, p.flush
	case action == iga.ActionShell || cc.ptyOK:
		r.out = func(p []byte) { _ = rec.Output(id, p) }
		r.in = func(p []byte) { _ = rec.Input(id, p) }
	default: // exec, and legacy scp: the streams as they are
		r.in = func(p []byte) { _ = rec.Data(id, recorder.StreamStdin, p) }
		r.out = func(p []byte) { _ = rec.Data(id, recorder.StreamStdout, p) }
		r.errOut = func(p []byte) { _ = rec.Data(id, recorder.StreamStderr, p) }
		r.end = func() { _ = rec.EndExec(id, r.exit, r.signal) }
	}
	if action == iga.ActionSFTP && command != "" { // legacy scp: also the files it moves
		cmd, _ := parseSCPCommand(command)
		p := newSCPParser(func(ev recorder.Event) { _ = rec.Event(ev) }, id, cmd)
		// Only stdin and stdout carry the protocol; scp -v logs on stderr.
		r.in, r.out, r.end = both(r.in, p.fromClient), both(r.out, p.fromServer), then(p.flush, r.end)
	}
	return r
}

// both taps p into a and b, in that order.
func both(a, b func([]byte)) func([]byte) {
	return func(p []byte) { a(p); b(p) }
}

// then runs a, then b; either may be nil.
func then(a, b func()) func() {
	return func() {
		for _, f := range []func(){a, b} {
			if f != nil {
				f()
			}
		}
	}
}

// run relays until the target closes the channel (or the client does).
// Order matters to clients: all output, then EOF, then exit status, then
// close, so that `ssh host cat` and scp see every byte and the status.
func (r *relay) run() {
	c := r.cc.c
	var out sync.WaitGroup
	out.Add(2)
	toClient := c.st.relay
	go func() { defer out.Done(); c.pipe(r.cc.ch, r.up, stdoutBuffer, r.out, toClient) }()
	errOut := r.errOut
	if errOut == nil {
		errOut = r.out
	}
	go func() { defer out.Done(); c.pipe(r.cc.ch.Stderr(), r.up.Stderr(), stderrBuffer, errOut, nil) }()
	go func() {
		c.pipe(r.up, r.cc.ch, stdinBuffer, r.in, r.upSock)
		_ = r.up.CloseWrite() // the client's EOF reaches the remote command
	}()
	reqsDone := make(chan struct{})
	go r.fromTarget(reqsDone)
	go r.fromClient()
	out.Wait()
	_ = r.cc.ch.CloseWrite()
	<-reqsDone
	_ = r.up.Close()
	if r.end != nil {
		r.end()
	}
}

// fromTarget passes exit-status, exit-signal and the rest back to the client.
func (r *relay) fromTarget(done chan<- struct{}) {
	defer close(done)
	for req := range r.upReqs {
		switch req.Type {
		case "exit-status":
			r.recordExit(req.Payload)
		case "exit-signal":
			r.recordSignal(req.Payload)
		}
		ok, _ := r.cc.ch.SendRequest(req.Type, req.WantReply, req.Payload)
		reply(req, ok)
	}
}

func (r *relay) recordExit(payload []byte) {
	var p struct{ Status uint32 }
	if gossh.Unmarshal(payload, &p) != nil {
		return
	}
	status, ch := int(p.Status), r.cc.id
	r.exit = &status
	r.cc.c.setExit(status)
	_ = r.rec.Event(recorder.Event{Type: recorder.EventNote, Channel: &ch, Text: "exit status", ExitStatus: &status})
}

// recordSignal notes the signal that ended the remote command (RFC 4254
// §6.10), which exec_end carries too.
func (r *relay) recordSignal(payload []byte) {
	var p struct {
		Signal     string
		CoreDumped bool
		Message    string
		Lang       string
	}
	if gossh.Unmarshal(payload, &p) != nil {
		return
	}
	r.signal = p.Signal
	ch := r.cc.id
	text := "exit signal " + p.Signal
	if p.CoreDumped {
		text += " (core dumped)"
	}
	_ = r.rec.Event(recorder.Event{Type: recorder.EventNote, Channel: &ch, Text: text, Signal: p.Signal})
}

// fromClient passes window changes, signals and breaks to the target; when
// the client closes the channel, the target's side is closed too.
func (r *relay) fromClient() {
	defer r.up.Close()
	for req := range r.cc.reqs {
		switch req.Type {
		case "window-change":
			r.resize(req.Payload)
		case "x11-req", "auth-agent-req@openssh.com", "env", "pty-req", "shell", "exec", "subsystem":
			reply(req, false) // a started channel takes no new setup
			continue
		}
		ok, err := r.up.SendRequest(req.Type, req.WantReply, req.Payload)
		reply(req, ok && err == nil)
	}
}

// resize records a window change when the size really changed, so a flood
// of identical changes costs the recording nothing.
func (r *relay) resize(payload []byte) {
	var w windowChange
	cc := r.cc
	if cc.pty == nil || gossh.Unmarshal(payload, &w) != nil {
		return
	}
	if w.Cols == cc.pty.Cols && w.Rows == cc.pty.Rows {
		return
	}
	cc.pty.Cols, cc.pty.Rows = w.Cols, w.Rows
	_ = r.rec.Resize(cc.id, int(w.Cols), int(w.Rows))
}

// pipe copies src to dst through tap, marking activity. It never buffers
// more than one read: a client that stops reading stops the target. It
// reads into a small buffer while the stream trickles and borrows a large
// one while it flows, so idle sessions hold almost nothing. A write that
// x/crypto sends as several packets goes out corked on the socket under
// dst (when given): in one socket write.
func (c *conn) pipe(dst io.Writer, src io.Reader, size int, tap func([]byte), sock *relayConn) int64 {
	var small [smallBuffer]byte
	buf, big := small[:], (*[]byte)(nil)
	defer func() {
		if big != nil {
			bigBuffers.Put(big)
		}
	}()
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			c.touch()
			if tap != nil {
				tap(buf[:k])
			}
			corked := sock != nil && k > corkAbove
			if corked {
				sock.cork()
			}
			_, werr := dst.Write(buf[:k])
			if corked {
				sock.uncork()
			}
			if werr != nil {
				return n
			}
			n += int64(k)
		}
		if err != nil {
			return n
		}
		switch {
		case big == nil && k == len(buf): // flowing: borrow a big buffer
			big = bigBuffers.Get().(*[]byte)
			buf = (*big)[:size]
		case big != nil && k < smallBuffer: // trickling again: give it back
			bigBuffers.Put(big)
			big, buf = nil, small[:]
		}
	}
}

// corkAbove is the size above which a relay write is corked: one SSH
// packet's worth of data goes out as it is.
const corkAbove = 32 << 10

// smallBuffer is what a pipe reads into while little flows: keystrokes,
// echoes, a prompt. An idle session holds three, so every byte counts
// three times per session; a read that fills one borrows a big buffer.
const smallBuffer = 256

// bigBuffers lends pipes their flowing-stream buffers.
var bigBuffers = sync.Pool{New: func() any { b := make([]byte, maxBuffer); return &b }}

// maxBuffer is the largest relay buffer size.
const maxBuffer = max(stdoutBuffer, stdinBuffer)
