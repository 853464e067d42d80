package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/sallyport/sallyport/proxy"
)

// pump relays the sessions of every Server in the process on one
// goroutine (see proxy.Pump): a command and its response cost a wakeup
// each way, where two goroutine pumps per session cost Go scheduler
// hand-offs that, on a small machine, exceed a bare relay's whole work.
// TLS on either leg is decrypted and encrypted on the pump's goroutine too
// (proxy.TLSTransport under both handshakes).
var pump proxy.Pump

// pumpSessions turns the pump on; off, every session has goroutine pumps
// (benchmarks compare the two).
var pumpSessions atomic.Bool

func init() { pumpSessions.Store(true) }

// Sides of a session's link.
const (
	sideClient = 0
	sideTarget = 1
)

// errQuit ends the link after COM_QUIT went upstream.
var errQuit = errors.New("client quit")

// startLink hands a session to the pump; nil when the pump cannot take
// it (no epoll, or a connection it cannot relay).
func (ss *session) startLink(ctx context.Context) *proxy.Link {
	if !pumpSessions.Load() || !proxy.Usable(ss.client.conn) || !proxy.Usable(ss.up.conn) {
		return nil
	}
	cmds := &commandScanner{ss: ss, ctx: ctx, max: ss.srv.maxMessage()}
	l, err := pump.Link(ss.client.conn, ss.up.conn, buffered(ss.client.r), buffered(ss.up.r.r), cmds.flow, newTargetScanner(ss).flow)
	if err != nil {
		ss.srv.logger().Warn("mysql session relayed by goroutines", "session", ss.ps.ID, "err", err)
		return nil
	}
	return l
}

// targetScanner is the target side of a linked session: it follows the
// responses through the audit and forwards the bytes unchanged.
type targetScanner struct {
	ss   *session
	scan packetScanner
}

func newTargetScanner(ss *session) *targetScanner {
	t := &targetScanner{ss: ss}
	t.scan.handle = ss.audit.respond
	return t
}

// flow is the target's proxy.Flow.
func (t *targetScanner) flow(l *proxy.Link, p []byte) ([]byte, error) {
	ss := t.ss
	v, n := ss.audit.scan(&t.scan, p)
	if v != "" {
		return nil, errors.New(v)
	}
	if n > 0 {
		n = ss.handOver(n)
	}
	if n >= maxPendingEvents {
		ss.audit.hand.Give(l, sideTarget, n >= 4*maxPendingEvents, func() bool { ss.flushEvents(); return true })
	}
	return p, nil
}

// buffered returns a copy of what r read ahead.
func buffered(r interface {
	Buffered() int
	Peek(int) ([]byte, error)
}) []byte {
	if r.Buffered() == 0 {
		return nil
	}
	b, _ := r.Peek(r.Buffered())
	return slices.Clone(b)
}

// commandScanner is the client side of a linked session: it cuts the
// client's bytes into commands, records them and frames them for the
// target; a command the bastion answers itself pauses the client while a
// goroutine answers it.
type commandScanner struct {
	ss   *session
	ctx  context.Context
	max  int
	link *proxy.Link // while flow runs

	kept []byte // bytes not yet cut into a whole command
	cmd  []byte // a command of several physical packets, joined
	seq  byte   // of the next physical packet of the command
	out  []byte
}

// flow is the client's proxy.Flow.
func (c *commandScanner) flow(l *proxy.Link, p []byte) ([]byte, error) {
	c.link = l
	in := p
	if len(c.kept) > 0 {
		c.kept = append(c.kept, p...)
		in = c.kept
	}
	c.out = c.out[:0]
	rest, err := c.cut(in)
	if len(rest) > 0 {
		c.kept = append(c.kept[:0], rest...) // rest may alias kept: copy is forward
	} else {
		c.kept = c.kept[:0]
	}
	if cap(c.kept) > keepCommandBuffer && len(c.kept) < keepCommandBuffer {
		c.kept = slices.Clone(c.kept)
	}
	if cap(c.out) > keepCommandBuffer {
		out := c.out
		c.out = nil
		return out, err
	}
	return c.out, err
}

// cut takes the whole commands off in and returns what is left.
func (c *commandScanner) cut(in []byte) ([]byte, error) {
	for len(in) >= 4 {
		n := int(in[0]) | int(in[1])<<8 | int(in[2])<<16
		if in[3] != c.seq {
			return nil, fmt.Errorf("%w: got sequence id %d, want %d", errSequence, in[3], c.seq)
		}
		if len(c.cmd)+n > c.max {
			return nil, fmt.Errorf("%w: over %d bytes", errPacketTooLarge, c.max)
		}
		if len(in) < 4+n {
			return in, nil
		}
		payload := in[4 : 4+n]
		in = in[4+n:]
		c.seq++
		if n == maxPacketPayload || len(c.cmd) > 0 {
			c.cmd = append(c.cmd, payload...)
			if n == maxPacketPayload {
				continue
			}
			payload = c.cmd
		}
		c.seq = 0
		done, err := c.command(payload)
		c.cmd = c.cmd[:0]
		if cap(c.cmd) > keepCommandBuffer {
			c.cmd = nil
		}
		if err != nil || done {
			return in, err
		}
	}
	return in, nil
}

// command relays or hands over one whole command; done stops cutting:
// the client is paused until the bastion has answered.
func (c *commandScanner) command(p []byte) (done bool, err error) {
	ss := c.ss
	if ss.answersLocally(p) {
		l := c.link
		l.Pause(sideClient)
		p = slices.Clone(p)
		go c.answer(l, p)
		return true, nil
	}
	if err := ss.audit.client(p); err != nil {
		return true, fmt.Errorf("%w: %v", errClientCommand, err)
	}
	var seq byte
	c.out = appendPacket(c.out, &seq, p)
	if p[0] == comQuit {
		return true, errQuit
	}
	return false, nil
}

// errClientCommand marks a command the audit could not read.
var errClientCommand = errors.New("unreadable command")

// answersLocally tells the commands answerLocally answers.
func (ss *session) answersLocally(p []byte) bool {
	if len(p) == 0 || !relayed[p[0]] {
		return true
	}
	k, ok := parseKill(p)
	if !ok {
		return false
	}
	_, ok = ss.srv.byID.Load(k.id)
	return ok
}

// answer answers p off the pump's goroutine, then reads the client again.
func (c *commandScanner) answer(l *proxy.Link, p []byte) {
	ss := c.ss
	answered, err := ss.answerLocally(c.ctx, p)
	ss.armFlush() // what it recorded waits for the timer or the next read
	if err != nil {
		ss.stop("client connection lost: "+err.Error(), 0)
		return
	}
	if !answered { // the other session ended meanwhile: the target decides
		if err := ss.audit.client(p); err != nil {
			ss.stop("protocol violation by the client: "+err.Error(), codeHandshake)
			return
		}
		var seq byte
		l.Send(sideTarget, appendPacket(nil, &seq, p))
	}
	l.Resume(sideClient)
}

// waitLink waits for the link to end, takes the connections back (the
// upstream one closed) and says why it ended.
func (ss *session) waitLink() (reason string, code uint16) {
	c, up, err := ss.link.Wait()
	ss.client.conn, ss.up.conn = c, up
	up.Close()
	var le *proxy.LinkError
	switch {
	case errors.Is(err, proxy.ErrLinkStopped):
		return "stopped", 0 // stop kept its own reason
	case !errors.As(err, &le):
		return "relay failed: " + err.Error(), 0
	case le.Side == sideClient && le.Op == "flow":
		return ss.clientFlowError(le.Err)
	case le.Side == sideTarget && le.Op == "flow":
		return "protocol violation by the target: " + le.Err.Error(), codeKilled
	case le.Side == sideClient && le.Err == io.EOF:
		return "client closed", 0
	case le.Side == sideClient:
		return "client connection lost: " + le.Err.Error(), 0
	case le.Err == io.EOF:
		return "target closed the connection", 0
	}
	return "target connection lost: " + le.Err.Error(), 0
}

func (ss *session) clientFlowError(err error) (string, uint16) {
	switch {
	case errors.Is(err, errQuit):
		return "client closed", 0
	case errors.Is(err, errPacketTooLarge):
		return "protocol violation by the client: " + err.Error(), codeTooLarge
	}
	return "protocol violation by the client: " + err.Error(), codeHandshake
}
