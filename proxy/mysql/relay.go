package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

const (
	// relayBuffer is the server direction's read buffer: one read takes
	// what the kernel has (a burst of rows) and one write forwards it.
	relayBuffer = 32 << 10
	// farewellTimeout bounds telling a client why its session was ended.
	farewellTimeout = time.Second
	// keepCommandBuffer is the command buffer a session keeps between
	// commands; one that grew larger for a big command is released.
	keepCommandBuffer = 1 << 20
	// eventFlushEvery is how often a goroutine-pumped session's completed
	// statements go to the recorder (a pump session's go as they complete,
	// and those the recorder had no room for wait this long): the
	// recorder's own flush interval (1 s by default) bounds what a crash
	// loses anyway.
	eventFlushEvery = 25 * time.Millisecond
	// maxPendingEvents makes the server pump hand events over itself when a
	// burst of statements outpaces the flusher: memory stays bounded.
	maxPendingEvents = 1024
)

// run relays until either side closes or the session must end, and
// returns why it ended.
func (ss *session) run() string {
	ctx := ss.ps.Context()
	if ss.srv.MaxSession > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, ss.srv.MaxSession, proxy.ErrMaxSession)
		defer cancel()
	}
	ss.link = ss.startLink(ctx) // before stop can be called
	var stopRecording func()
	if ss.link != nil {
		stopRecording = ss.startInline()
		ss.link.Start()
	} else {
		stopRecording = ss.recordEvents()
	}
	unwatch := context.AfterFunc(ctx, func() { ss.stop(proxy.EndReason(context.Cause(ctx)), codeKilled) })
	defer unwatch()
	done := make(chan struct{})
	defer close(done)
	go ss.watchRecording(done)
	defer func() { // every event is handed over before the teardown
		ss.audit.sessionEnded(ss.reason)
		stopRecording()
	}()
	if ss.link != nil {
		ss.stop(ss.waitLink())
	} else {
		fromServer := make(chan struct{})
		go func() {
			defer close(fromServer)
			ss.stop(ss.pumpServer())
		}()
		ss.stop(ss.pumpClient(ctx))
		<-fromServer
	}
	if ss.code != 0 {
		var seq byte
		if ss.audit.inFlight() {
			seq = 1
		}
		_ = ss.client.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
		_, _ = ss.client.conn.Write(appendPacket(nil, &seq, errPacket(ss.code, stateKilled, "sallyport: session ended: "+ss.reason)))
		drainBeforeClose(ss.client.conn)
	}
	return ss.reason
}

// drainDiscardLimit bounds what drainBeforeClose reads from a client.
const drainDiscardLimit = 64 << 20

// drainBeforeClose half-closes conn and reads away what the client is still
// sending (for at most farewellTimeout): closing a socket with unread input
// resets it, and the reset can destroy the farewell error before the client
// reads it — e.g. after an oversized command was refused mid-upload.
func drainBeforeClose(conn net.Conn) {
	if hc, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(farewellTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, drainDiscardLimit))
}

// stop ends the relay once, keeping the first reason: stopping the link,
// or, for goroutine pumps, closing upstream ends the server pump and a past
// read deadline the client pump.
func (ss *session) stop(reason string, code uint16) {
	ss.stopOnce.Do(func() {
		ss.reason, ss.code = reason, code
		ss.audit.stop()
		if ss.link != nil {
			ss.link.Stop() // waitLink closes upstream
			return
		}
		ss.up.conn.Close()
		_ = ss.client.conn.SetReadDeadline(time.Unix(1, 0))
	})
}

// recordEvents hands a goroutine-pumped session's completed statements
// to the recorder every eventFlushEvery, and once more when the returned
// stop is called (which waits for it).
func (ss *session) recordEvents() (stop func()) {
	quit, recorded := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(recorded)
		tick := time.NewTicker(eventFlushEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				ss.flushEvents()
			case <-quit:
				ss.flushEvents()
				return
			}
		}
	}()
	return func() { close(quit); <-recorded }
}

// flushEvents hands the completed statements to the recorder, in order;
// a recording that fails ends the session (fail closed).
func (ss *session) flushEvents() {
	ss.flushMu.Lock()
	defer ss.flushMu.Unlock()
	evs := ss.audit.take(ss.spare)
	var err error
	for _, ev := range evs {
		if err = ss.rec.Event(ev); err != nil {
			break
		}
	}
	ss.spare = evs
	if err != nil {
		ss.stop("recording_unavailable: "+err.Error(), codeKilled)
	}
}

// watchRecording ends the session when its recording fails (fail closed).
func (ss *session) watchRecording(done <-chan struct{}) {
	select {
	case <-ss.rec.Failed():
		ss.stop(fmt.Sprintf("%s: %v", "recording_unavailable", ss.rec.Err()), codeKilled)
	case <-done:
	}
}

// pumpClient reads the client's commands one logical packet at a time,
// records them and sends them on, or answers them itself (refused
// commands, KILL of a bastion connection id).
func (ss *session) pumpClient(ctx context.Context) (reason string, code uint16) {
	var buf, out []byte
	for {
		var seq byte
		p, err := readPacketInto(ss.client.r, &seq, ss.srv.maxMessage(), buf[:0])
		if err != nil {
			return ss.clientReadError(err)
		}
		buf = p
		if cap(buf) > keepCommandBuffer {
			buf = nil // p stays valid for this command
		}
		if answered, err := ss.answerLocally(ctx, p); err != nil {
			return "client connection lost: " + err.Error(), 0
		} else if answered {
			continue
		}
		if err := ss.audit.client(p); err != nil {
			return "protocol violation by the client: " + err.Error(), codeHandshake
		}
		seq = 0
		out = appendPacket(out[:0], &seq, p)
		_, err = ss.up.conn.Write(out)
		if cap(out) > keepCommandBuffer {
			out = nil
		}
		if err != nil {
			return "target connection lost: " + err.Error(), 0
		}
		if p[0] == comQuit {
			return "client closed", 0
		}
	}
}

func (ss *session) clientReadError(err error) (string, uint16) {
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "client closed", 0
	case errors.Is(err, errPacketTooLarge):
		return "protocol violation by the client: " + err.Error(), codeTooLarge
	case errors.Is(err, errSequence):
		return "protocol violation by the client: " + err.Error(), codeHandshake
	}
	return "client connection lost: " + err.Error(), 0
}

// answerLocally answers the commands the bastion does not relay.
func (ss *session) answerLocally(ctx context.Context, p []byte) (bool, error) {
	if len(p) == 0 {
		return true, ss.reply(errPacket(codeUnknownCommand, stateConnection, "sallyport: empty command"))
	}
	if !relayed[p[0]] {
		msg := fmt.Sprintf("sallyport: command %#02x is not relayed: a session is one user running queries", p[0])
		ss.audit.local(fmt.Sprintf("-- command %#02x", p[0]), &recorder.Outcome{ErrorCode: "1047", Error: msg})
		return true, ss.reply(errPacket(codeUnknownCommand, stateConnection, msg))
	}
	k, ok := parseKill(p)
	if !ok {
		return false, nil
	}
	other, ok := ss.srv.byID.Load(k.id)
	if !ok {
		return false, nil // a target thread id: the target decides
	}
	o := other.(*session)
	answer := ss.kill(ctx, k, o)
	o.armFlush() // the events it recorded in o wait for o's timer or next read
	return true, ss.reply(answer)
}

// reply sends a packet the bastion made once no response is in flight.
func (ss *session) reply(packet []byte) error {
	if !ss.audit.waitIdle() {
		return errors.New("session ended")
	}
	var seq byte = 1
	b := appendPacket(nil, &seq, packet)
	if ss.link != nil {
		ss.link.Send(sideClient, b) // after the response the pump forwarded last
		return nil
	}
	ss.writeMu.Lock()
	_, err := ss.client.conn.Write(b)
	ss.writeMu.Unlock()
	return err
}

// pumpServer forwards target bytes to the client as they come, scanning
// packet boundaries and reading only the packets that end results; events
// go to the recorder from recordEvents, off the client's path.
func (ss *session) pumpServer() (reason string, code uint16) {
	buf := make([]byte, relayBuffer)
	scan := &packetScanner{handle: ss.audit.respond}
	r := ss.up.r.r // bytes the login read ahead are in its buffer
	for {
		n, err := r.Read(buf)
		if n > 0 {
			v, pending := ss.audit.scan(scan, buf[:n])
			if v != "" {
				return "protocol violation by the target: " + v, codeKilled
			}
			ss.writeMu.Lock()
			_, werr := ss.client.conn.Write(buf[:n])
			ss.writeMu.Unlock()
			if werr != nil {
				return "client connection lost: " + werr.Error(), 0
			}
			if pending >= maxPendingEvents {
				ss.flushEvents()
			}
		}
		if err != nil {
			if err == io.EOF {
				return "target closed the connection", 0
			}
			return "target connection lost: " + err.Error(), 0
		}
	}
}
