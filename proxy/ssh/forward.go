package ssh

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/recorder"
)

// forwardBuffer is the copy buffer of each direction of a forward.
const forwardBuffer = 32 << 10

// directTCPIP is the payload of a "direct-tcpip" channel open (RFC 4254 §7.2).
type directTCPIP struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// handleForwardChannel relays `ssh -L`: admitted for the forward action,
// and only to the target host itself.
func (s *Server) handleForwardChannel(_ *gliderssh.Server, sc *gossh.ServerConn, nc gossh.NewChannel, ctx gliderssh.Context) {
	c := s.connOf(sc, ctx)
	var p directTCPIP
	if err := gossh.Unmarshal(nc.ExtraData(), &p); err != nil {
		_ = nc.Reject(gossh.ConnectionFailed, "sallyport: malformed direct-tcpip request")
		return
	}
	dest := net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port)))
	if line := s.forwardElsewhere(c, p.Host); line != "" {
		s.refuse(c.st, refusal{action: iga.ActionForward, asked: "direct-tcpip " + dest, code: iga.ReasonActionNotEntitled,
			line: line, host: p.Host, port: int(p.Port)})
		_ = nc.Reject(gossh.Prohibited, line)
		return
	}
	d, t, line := c.admit(iga.ActionForward, "direct-tcpip "+dest)
	if line == "" {
		line, _ = c.begin(d, c.request(iga.ActionForward), profile{login: d.Login, forward: true}, t)
	}
	if line != "" {
		_ = nc.Reject(gossh.Prohibited, line)
		return
	}
	c.forward(nc, p, profile{login: d.Login, forward: true}, t)
}

// forwardElsewhere is the refusal line of a forward to anything but the
// target machine, decided before admission: the forward entitlement never
// covers another host, so such a request is refused as not entitled.
func (s *Server) forwardElsewhere(c *conn, host string) string {
	c.st.mu.Lock()
	name := c.st.target
	c.st.mu.Unlock()
	t, ok := Target{Name: name}, false
	if s.Targets != nil {
		t, ok = s.Targets(name)
	}
	if !ok || toTargetItself(host, t) {
		return "" // an unknown target is refused by admission, with its own reason
	}
	return fmt.Sprintf("sallyport: access denied (%s): forwarding goes only to the target itself (localhost on %s), not to %.64q",
		iga.ReasonActionNotEntitled, t.Name, host)
}

// toTargetItself reports whether host names the target machine: loopback
// as the target's sshd resolves it, or the target's own configured host.
func toTargetItself(host string, t Target) bool {
	h := strings.ToLower(strings.Trim(host, "[]"))
	if h == "localhost" || h == strings.ToLower(t.Name) {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	th, _, err := net.SplitHostPort(t.Address)
	return err == nil && strings.EqualFold(h, th)
}

// forward relays one admitted direct-tcpip channel through the target and
// records it: an open event, then a close event with the bytes each way,
// how long it lasted, and whether the target could reach the destination.
func (c *conn) forward(nc gossh.NewChannel, p directTCPIP, prof profile, t Target) {
	id, ok := c.addChannel(nil)
	if !ok {
		_ = nc.Reject(gossh.ConnectionFailed, "sallyport: session ended")
		return
	}
	defer c.doneChannel(id)
	_, rec := c.session()
	ev := recorder.Event{Type: recorder.EventForward, Channel: &id, Host: p.Host, Port: int(p.Port)}
	ev.Op = "open"
	_ = rec.Event(ev)
	start := time.Now()
	ev.ToTarget, ev.ToClient, ev.Outcome = c.forwardVia(nc, prof, t)
	ev.Op, ev.DurationMS = "close", float64(time.Since(start).Microseconds())/1000
	_ = rec.Event(ev)
}

// forwardVia opens the forward on the target and splices it to the
// client's channel until both are done. When the target cannot open it,
// the client gets the target's own answer (OpenSSH says "open failed:
// connect failed: Connection refused"), as it would without the bastion.
func (c *conn) forwardVia(nc gossh.NewChannel, prof profile, t Target) (toTarget, toClient int64, out *recorder.Outcome) {
	u, err := c.upstreamFor(prof, t)
	if err != nil {
		msg := "sallyport: cannot reach the target: " + err.Error()
		_ = nc.Reject(gossh.ConnectionFailed, msg)
		return 0, 0, &recorder.Outcome{ErrorCode: "connect_failed", Error: msg}
	}
	up, upReqs, err := u.client.OpenChannel("direct-tcpip", nc.ExtraData())
	if err != nil {
		reason, msg := gossh.ConnectionFailed, fmt.Sprintf("sallyport: the target refused the forward: %v", err)
		if oe, ok := errors.AsType[*gossh.OpenChannelError](err); ok {
			reason, msg = oe.Reason, oe.Message
		}
		_ = nc.Reject(reason, msg)
		return 0, 0, &recorder.Outcome{ErrorCode: rejectionCode(reason), Error: msg}
	}
	go gossh.DiscardRequests(upReqs)
	ch, reqs, err := nc.Accept()
	if err != nil {
		up.Close()
		return 0, 0, &recorder.Outcome{ErrorCode: "client_gone", Error: err.Error()}
	}
	go gossh.DiscardRequests(reqs)
	toTarget, toClient = c.splice(ch, up)
	return toTarget, toClient, &recorder.Outcome{}
}

// rejectionCode names a channel open failure (RFC 4254 §5.1) for
// outcome.error_code.
func rejectionCode(r gossh.RejectionReason) string {
	switch r {
	case gossh.Prohibited:
		return "prohibited"
	case gossh.ConnectionFailed:
		return "connect_failed"
	case gossh.UnknownChannelType:
		return "unknown_channel_type"
	case gossh.ResourceShortage:
		return "resource_shortage"
	}
	return fmt.Sprintf("reason_%d", uint32(r))
}

// splice copies between the client's channel and the target's until both
// directions are done, passing each EOF on, and returns the bytes moved
// each way.
func (c *conn) splice(client, target gossh.Channel) (toTarget, toClient int64) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		toClient = c.pipe(client, target, forwardBuffer, nil, nil)
		_ = client.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		toTarget = c.pipe(target, client, forwardBuffer, nil, nil)
		_ = target.CloseWrite()
	}()
	wg.Wait()
	client.Close()
	target.Close()
	return toTarget, toClient
}
