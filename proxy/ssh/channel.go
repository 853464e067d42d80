package ssh

import (
	"errors"
	"fmt"
	"strings"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/recorder"
)

const (
	// maxEnv bounds the env requests kept per channel; maxEnvValue a
	// value's length. Both only matter for hostile clients.
	maxEnv      = 32
	maxEnvValue = 1024
)

// clientChannel is one session channel of a client: the requests that set
// it up (env, pty-req) are kept until the shell, exec or subsystem request
// is admitted, then replayed to the target.
type clientChannel struct {
	c    *conn
	ch   gossh.Channel
	reqs <-chan *gossh.Request

	env      [][]byte // allowed env request payloads
	pty      *ptyRequest
	ptyRaw   []byte
	ptyOK    bool // the terminal was admitted (shell is entitled)
	ptyAsked bool // the client asked for a terminal, so lines end in CR LF
	id       int  // recording channel number once relayed
}

// ptyRequest is the payload of "pty-req" (RFC 4254 §6.2).
type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

// windowChange is the payload of "window-change" (RFC 4254 §6.7).
type windowChange struct {
	Cols, Rows    uint32
	Width, Height uint32
}

type envRequest struct{ Name, Value string }

func (s *Server) handleSessionChannel(_ *gliderssh.Server, sc *gossh.ServerConn, nc gossh.NewChannel, ctx gliderssh.Context) {
	c := s.connOf(sc, ctx)
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	cc := &clientChannel{c: c, ch: ch, reqs: reqs}
	for _, line := range c.st.takeLines() {
		cc.stderrLine(line)
	}
	cc.setup()
}

// setup answers requests until the one that starts the channel.
func (cc *clientChannel) setup() {
	defer cc.ch.Close()
	for req := range cc.reqs {
		switch req.Type {
		case "env":
			reply(req, cc.onEnv(req.Payload))
		case "pty-req":
			reply(req, cc.onPty(req.Payload))
		case "window-change":
			cc.onWindowChange(req.Payload)
		case "x11-req":
			cc.refuseRequest(req, "X11 forwarding", "sallyport: access denied (not_offered): X11 forwarding is not allowed through the bastion")
		case "auth-agent-req@openssh.com":
			cc.refuseRequest(req, "agent forwarding",
				"sallyport: access denied (not_offered): agent forwarding is not allowed through the bastion; targets get a certificate for each session instead")
		case "shell", "exec", "subsystem":
			cc.start(req)
			return
		default:
			reply(req, false)
		}
	}
}

// refuseRequest turns down a channel request the bastion never relays,
// with its audit event, recording note and stderr line.
func (cc *clientChannel) refuseRequest(req *gossh.Request, what, line string) {
	cc.c.srv.refuse(cc.c.st, refusal{asked: req.Type + " (" + what + ")", code: iga.ReasonNotOffered, line: line})
	cc.stderrLine(line)
	reply(req, false)
}

func reply(req *gossh.Request, ok bool) {
	if req.WantReply {
		_ = req.Reply(ok, nil)
	}
}

// onEnv keeps LANG, LC_* and TERM; everything else is refused.
func (cc *clientChannel) onEnv(payload []byte) bool {
	var e envRequest
	if err := gossh.Unmarshal(payload, &e); err != nil || len(cc.env) >= maxEnv || len(e.Value) > maxEnvValue {
		return false
	}
	// Values reach the target's environment as they are; no locale or
	// terminal name needs a control character or a line break.
	if strings.IndexFunc(e.Value, notPrintablePath) >= 0 {
		return false
	}
	if e.Name != "LANG" && e.Name != "TERM" && !strings.HasPrefix(e.Name, "LC_") {
		return false
	}
	cc.env = append(cc.env, append([]byte(nil), payload...))
	return true
}

// onPty keeps the terminal request; it is admitted with the start request,
// as a terminal needs the shell action.
func (cc *clientChannel) onPty(payload []byte) bool {
	var p ptyRequest
	if err := gossh.Unmarshal(payload, &p); err != nil || len(p.Term) > maxEnvValue || strings.IndexFunc(p.Term, notPrintablePath) >= 0 {
		return false
	}
	cc.pty, cc.ptyRaw, cc.ptyAsked = &p, append([]byte(nil), payload...), true
	return true
}

func (cc *clientChannel) onWindowChange(payload []byte) {
	var w windowChange
	if cc.pty == nil || gossh.Unmarshal(payload, &w) != nil {
		return
	}
	cc.pty.Cols, cc.pty.Rows, cc.pty.Width, cc.pty.Height = w.Cols, w.Rows, w.Width, w.Height
	cc.ptyRaw = gossh.Marshal(cc.pty)
}

// stderrLine writes one line to the client's stderr; with a terminal the
// line ends in CR LF, as the client's terminal is in raw mode.
func (cc *clientChannel) stderrLine(line string) {
	end := "\n"
	if cc.ptyAsked {
		end = "\r\n"
	}
	_, _ = cc.ch.Stderr().Write([]byte(line + end))
}

// endStatus is the exit status a client sees when the bastion ends its
// session (kill, revocation, timeout, recording failure): the one OpenSSH
// uses for its own failures, not one a remote command would likely return.
const endStatus = 255

// end closes a relayed channel from the bastion's side, saying why.
func (cc *clientChannel) end(line string) {
	cc.stderrLine(line)
	_, _ = cc.ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{endStatus}))
	_ = cc.ch.CloseWrite()
	_ = cc.ch.Close()
}

// refuse answers a start request with the refusal line and exit status 1.
func (cc *clientChannel) refuse(req *gossh.Request, line string) {
	reply(req, true)
	cc.stderrLine(line)
	_, _ = cc.ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{1}))
	_ = cc.ch.CloseWrite()
}

// start admits the channel's action, opens it on the target and relays it.
func (cc *clientChannel) start(req *gossh.Request) {
	action, command, line, notSCP := classify(req)
	if line != "" {
		cc.refuse(req, line)
		return
	}
	d, t, line := cc.c.admit(action, command)
	if line != "" && notSCP != "" && d.Err() != nil && d.Err().(*iga.Denied).Has(iga.ReasonActionNotEntitled) {
		line += "; the command is not a legacy scp file transfer: " + notSCP
	}
	if line == "" && cc.pty != nil && action != iga.ActionShell {
		// A terminal is the shell action, whatever runs in it.
		_, _, line = cc.c.admit(iga.ActionShell, "pty-req")
	}
	if line != "" {
		cc.refuse(req, line)
		return
	}
	cc.ptyOK = cc.pty != nil
	prof := profile{login: d.Login, pty: cc.ptyOK}
	if action == iga.ActionExec {
		// The target enforces the one entitled command too.
		prof.command = d.ForceCommand
	}
	line, err := cc.c.begin(d, cc.c.channelRequest(action, command), prof, t)
	if err != nil {
		cc.c.srv.logger().Error("begin ssh session", "identity", d.Identity, "err", err)
	}
	if line != "" {
		cc.refuse(req, line)
		return
	}
	// Registered before the target is dialed, so that a kill arriving
	// meanwhile is explained to this channel too.
	id, ok := cc.c.addChannel(cc)
	if !ok {
		cc.refuse(req, "sallyport: session ended")
		return
	}
	defer cc.c.doneChannel(id)
	cc.id = id
	cc.open(req, action, command, prof, t)
}

// classify maps a start request to its action: shell, exec, or sftp for
// the sftp subsystem and a legacy scp transfer. line refuses anything else;
// notSCP says why a command that starts like scp is not a transfer (it is
// then an exec, which an sftp-only identity may not run).
func classify(req *gossh.Request) (action iga.Action, command, line, notSCP string) {
	switch req.Type {
	case "shell":
		return iga.ActionShell, "", "", ""
	case "exec":
		var p struct{ Command string }
		if err := gossh.Unmarshal(req.Payload, &p); err != nil {
			return "", "", "sallyport: malformed exec request", ""
		}
		_, err := parseSCPCommand(p.Command)
		switch {
		case err == nil:
			return iga.ActionSFTP, p.Command, "", ""
		case errors.Is(err, errNotSCP):
			return iga.ActionExec, p.Command, "", ""
		}
		return iga.ActionExec, p.Command, "", err.Error()
	default:
		var p struct{ Name string }
		if err := gossh.Unmarshal(req.Payload, &p); err != nil || p.Name != "sftp" {
			return "", "", fmt.Sprintf("sallyport: subsystem %.64q is not offered; only sftp is", p.Name), ""
		}
		return iga.ActionSFTP, "", "", ""
	}
}

// open opens the channel on the target, replays env and pty, sends the
// start request and relays the channel until it closes.
func (cc *clientChannel) open(req *gossh.Request, action iga.Action, command string, prof profile, t Target) {
	u, err := cc.c.upstreamFor(prof, t)
	if err != nil {
		cc.c.srv.logger().Warn("open ssh session on target", "target", t.Name, "err", err)
		cc.refuse(req, "sallyport: cannot open the session on the target: "+err.Error())
		return
	}
	up, upReqs, err := u.client.OpenChannel("session", nil)
	if err != nil {
		cc.refuse(req, fmt.Sprintf("sallyport: the target %s refused the session: %v", t.Name, err))
		return
	}
	if !cc.replay(up, req) {
		up.Close()
		cc.refuse(req, fmt.Sprintf("sallyport: the target %s refused the %s request", t.Name, req.Type))
		return
	}
	reply(req, true)
	cc.record(action, command)
	newRelay(cc, up, upReqs, action, command, u.sock).run()
}

// replay sends the kept env and pty requests and the start request.
func (cc *clientChannel) replay(up gossh.Channel, req *gossh.Request) bool {
	for _, e := range cc.env {
		_, _ = up.SendRequest("env", false, e)
	}
	if cc.ptyOK {
		if ok, err := up.SendRequest("pty-req", true, cc.ptyRaw); err != nil || !ok {
			cc.stderrLine("sallyport: the target refused a terminal")
		}
	}
	ok, err := up.SendRequest(req.Type, true, req.Payload)
	return err == nil && ok
}

// record writes what the channel is about to do.
func (cc *clientChannel) record(action iga.Action, command string) {
	_, rec := cc.c.session()
	ch := cc.id
	switch {
	case action == iga.ActionShell:
		_ = rec.Event(recorder.Event{Type: recorder.EventShell, Channel: &ch})
	case command != "":
		_ = rec.Event(recorder.Event{Type: recorder.EventExec, Channel: &ch, Command: command})
		_ = rec.Event(recorder.Event{Type: recorder.EventCommand, Channel: &ch, Command: command, Source: "exec"})
	}
	if cc.ptyOK {
		_ = rec.OpenTerminal(ch, int(cc.pty.Cols), int(cc.pty.Rows), cc.pty.Term)
	}
}
