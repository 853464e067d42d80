package ssh

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

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

func (c *conn) forward(nc gossh.NewChannel, p directTCPIP, prof profile, t Target) {
	u, err := c.upstreamFor(prof, t)
	if err != nil {
		_ = nc.Reject(gossh.ConnectionFailed, "sallyport: cannot reach the target: "+err.Error())
		return
	}
	up, upReqs, err := u.client.OpenChannel("direct-tcpip", nc.ExtraData())
	if err != nil {
		_ = nc.Reject(gossh.ConnectionFailed, fmt.Sprintf("sallyport: the target refused the forward: %v", err))
		return
	}
	go gossh.DiscardRequests(upReqs)
	ch, reqs, err := nc.Accept()
	if err != nil {
		up.Close()
		return
	}
	go gossh.DiscardRequests(reqs)
	id, ok := c.addChannel(nil)
	if !ok {
		ch.Close()
		up.Close()
		return
	}
	defer c.doneChannel(id)
	bytes := c.splice(ch, up)
	_, rec := c.session()
	_ = rec.Event(recorder.Event{Type: recorder.EventForward, Channel: &id, Host: p.Host, Port: int(p.Port), Bytes: bytes})
}

// splice copies both ways until both are done, passing each EOF on, and
// returns the bytes moved.
func (c *conn) splice(a, b gossh.Channel) int64 {
	var total atomic.Int64
	var wg sync.WaitGroup
	half := func(dst, src gossh.Channel) {
		defer wg.Done()
		total.Add(c.pipe(dst, src, forwardBuffer, nil, nil))
		_ = dst.CloseWrite()
	}
	wg.Add(2)
	go half(a, b)
	go half(b, a)
	wg.Wait()
	a.Close()
	b.Close()
	return total.Load()
}
