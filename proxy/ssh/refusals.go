package ssh

import (
	"fmt"
	"net"
	"strconv"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// Every request the bastion turns down on its own — not by an admission
// decision — leaves the same three traces: an audit event naming what was
// asked (iga.Refusal through proxy.RecordRefusal), a note in the session's
// recording when there is or will be one, and the "sallyport:" line on the
// stderr of the client's session channel, now or when it opens one.

// refusal is one request turned down.
type refusal struct {
	action iga.Action
	asked  string // in the client's words: "tcpip-forward 0.0.0.0:8080"
	code   string // reason code
	line   string // what the client reads, starting "sallyport: "
	host   string // a forward's destination, for the recording
	port   int
}

// refuse audits r and notes it in the recording; the client's line is
// written by the caller (on a channel) or kept for the next session channel
// (global requests have no stderr).
func (s *Server) refuse(st *connState, r refusal) {
	st.mu.Lock()
	f := iga.Refusal{Protocol: "ssh", Identity: st.identity, Target: st.target, Action: r.action, Source: st.source,
		Asked: r.asked, Reasons: []iga.Reason{{Code: r.code, Message: r.line}}, Session: st.session}
	st.notes = append(st.notes, recorder.Event{Type: recorder.EventNote,
		Text: fmt.Sprintf("refused %s (%s): %s", r.asked, r.code, r.line), Host: r.host, Port: r.port})
	c := st.conn
	st.mu.Unlock()
	go proxy.RecordRefusal(s.Gate, s.logger(), f)
	if c != nil {
		c.writeNotes()
	}
}

// keepLine keeps a line for the stderr of the next session channel.
func (st *connState) keepLine(line string) {
	st.mu.Lock()
	st.lines = append(st.lines, line)
	st.mu.Unlock()
}

// takeLines returns the lines kept for a session channel, once.
func (st *connState) takeLines() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	lines := st.lines
	st.lines = nil
	return lines
}

// writeNotes writes the refusal notes kept so far to the session's
// recording once it has begun; until then they wait (begin calls it too).
func (c *conn) writeNotes() {
	_, rec := c.session()
	if rec == nil {
		return
	}
	c.st.mu.Lock()
	notes := c.st.notes
	c.st.notes = nil
	c.st.mu.Unlock()
	for _, ev := range notes {
		_ = rec.Event(ev)
	}
}

// Global requests a client may send that mean nothing worth auditing when
// refused: OpenSSH's keepalives and its no-more-sessions hint.
var quietGlobalRequests = map[string]bool{
	"keepalive@openssh.com":                  true,
	"no-more-sessions@openssh.com":           true,
	"cancel-tcpip-forward":                   true,
	"cancel-streamlocal-forward@openssh.com": true,
}

// onGlobalRequest answers every global request "no". Remote forwarding
// (`ssh -R`) would open a listener on the target reaching back through the
// bastion to the client's network: it is never relayed, and asking for it
// is audited.
func (s *Server) onGlobalRequest(ctx gliderssh.Context, _ *gliderssh.Server, req *gossh.Request) (bool, []byte) {
	st := stateOf(ctx)
	if st == nil || quietGlobalRequests[req.Type] {
		return false, nil
	}
	asked := req.Type
	if req.Type == "tcpip-forward" {
		var p struct {
			Addr string
			Port uint32
		}
		if gossh.Unmarshal(req.Payload, &p) == nil {
			asked += " " + net.JoinHostPort(p.Addr, strconv.Itoa(int(p.Port)))
		}
	}
	line := fmt.Sprintf("sallyport: access denied (%s): %.200s is not offered through the bastion; remote forwarding (ssh -R) never is", iga.ReasonNotOffered, asked)
	if req.Type != "tcpip-forward" && req.Type != "streamlocal-forward@openssh.com" {
		line = fmt.Sprintf("sallyport: access denied (%s): the global request %.64q is not offered through the bastion", iga.ReasonNotOffered, req.Type)
	}
	s.refuse(st, refusal{action: iga.ActionForward, asked: asked, code: iga.ReasonNotOffered, line: line})
	st.keepLine(line)
	return false, nil
}

// onOtherChannel rejects channel types the bastion does not relay (X11,
// agent, Unix-socket forwards, tunnels) and audits the attempt.
func (s *Server) onOtherChannel(_ *gliderssh.Server, _ *gossh.ServerConn, nc gossh.NewChannel, ctx gliderssh.Context) {
	line := fmt.Sprintf("sallyport: access denied (%s): channels of type %.64q are not offered through the bastion; only sessions and forwards to the target are",
		iga.ReasonNotOffered, nc.ChannelType())
	if st := stateOf(ctx); st != nil {
		s.refuse(st, refusal{asked: "channel " + nc.ChannelType(), code: iga.ReasonNotOffered, line: line})
	}
	_ = nc.Reject(gossh.UnknownChannelType, line)
}
