package postgres

import (
	"bufio"
	"errors"
	"io"
	"sync/atomic"

	"github.com/sallyport/sallyport/proxy"
)

// pump relays the sessions of every Server in the process on one
// goroutine (see proxy.Pump): per query it costs a wakeup each way, where
// two goroutine pumps per session cost Go scheduler hand-offs that exceed
// PgBouncer's whole relay on a small machine. TLS on either leg is
// decrypted and encrypted on the pump's goroutine too (proxy.TLSTransport
// under both handshakes).
var pump proxy.Pump

// pumpSessions turns the pump on; off, every session has goroutine pumps
// (benchmarks compare the two).
var pumpSessions atomic.Bool

func init() { pumpSessions.Store(true) }

// maxPendingEvents stops reading the target while that many completed
// statements wait for the recorder: memory stays bounded when the
// recorder is slower than the queries.
const maxPendingEvents = 1024

// Sides of a session's link.
const (
	sideClient = 0
	sideTarget = 1
)

// startLink hands a session to the pump; nil when the pump cannot take
// it (no epoll, or a connection it cannot relay).
func (ss *session) startLink() *proxy.Link {
	if !pumpSessions.Load() || !proxy.Usable(ss.client.conn) || !proxy.Usable(ss.up) {
		return nil
	}
	fromClient := ss.clientScanner()
	fromTarget := &frameScanner{max: ss.srv.maxMessage(), want: serverWants, handle: ss.audit.server}
	clientFlow := func(_ *proxy.Link, p []byte) ([]byte, error) {
		if _, err := ss.audit.scan(fromClient, p); err != nil {
			return nil, err
		}
		return p, nil
	}
	targetFlow := func(l *proxy.Link, p []byte) ([]byte, error) {
		n, err := ss.audit.scan(fromTarget, p)
		if err != nil {
			return nil, err
		}
		if n >= eventBatch {
			ss.audit.hand.Give(l, sideTarget, n >= maxPendingEvents, func() bool {
				if err := ss.audit.flush(); err != nil {
					ss.stop("recording_unavailable: "+err.Error(), codeAdminShutdown)
					return false
				}
				return true
			})
		}
		return p, nil
	}
	l, err := pump.Link(ss.client.conn, ss.up, buffered(ss.client.r), nil, clientFlow, targetFlow)
	if err != nil {
		ss.srv.logger().Warn("postgres session relayed by goroutines", "session", ss.ps.ID, "err", err)
		return nil
	}
	return l
}

// clientScanner follows the client's messages for the audit; a simple
// Query over the message limit is followed as it passes, not refused.
func (ss *session) clientScanner() *frameScanner {
	return &frameScanner{max: ss.srv.maxMessage(), want: clientWants, handle: ss.audit.client,
		long: ss.audit.longPart, longWant: longWants}
}

// buffered returns a copy of what r read ahead.
func buffered(r *bufio.Reader) []byte {
	if r == nil || r.Buffered() == 0 {
		return nil
	}
	b, _ := r.Peek(r.Buffered())
	return append([]byte(nil), b...)
}

// waitLink waits for the link to end, takes the connections back (the
// upstream one closed) and says why it ended.
func (ss *session) waitLink() (reason, code string) {
	c, up, err := ss.link.Wait()
	ss.client.conn, ss.up = c, up
	ss.client.r = nil // what it held went to the link
	up.Close()
	var le *proxy.LinkError
	switch {
	case errors.Is(err, proxy.ErrLinkStopped):
		return "stopped", "" // stop kept its own reason
	case !errors.As(err, &le):
		return "relay failed: " + err.Error(), ""
	case le.Side == sideClient && le.Op == "flow":
		return "protocol violation by the client: " + le.Err.Error(), codeProtocolViolation
	case le.Side == sideTarget && le.Op == "flow":
		return "protocol violation by the target: " + le.Err.Error(), codeProtocolViolation
	case le.Side == sideClient && (le.Err == io.EOF || ss.audit.terminated):
		return "client closed", ""
	case le.Side == sideClient:
		return "client connection lost: " + le.Err.Error(), ""
	case le.Err == io.EOF:
		return "target closed the connection", ""
	}
	return "target connection lost: " + le.Err.Error(), ""
}
