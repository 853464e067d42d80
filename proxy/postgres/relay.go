package postgres

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sallyport/sallyport/proxy"
)

const (
	// relayBuffer is each direction's read buffer: one read takes what the
	// kernel has (a whole result set burst, a pipeline) and one write
	// forwards it, so a message costs no syscall of its own.
	relayBuffer = 32 << 10
	// farewellTimeout bounds telling a client why its session was ended.
	farewellTimeout = time.Second
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
	ss.link = ss.startLink() // before stop can be called
	if ss.link != nil {
		ss.audit.inline = true
		ss.link.Start()
	}
	unwatch := context.AfterFunc(ctx, func() { ss.stop(proxy.EndReason(context.Cause(ctx)), codeAdminShutdown) })
	defer unwatch()
	done := make(chan struct{})
	defer close(done)
	go ss.watchRecording(done)
	if ss.link != nil {
		ss.stop(ss.waitLink())
	} else {
		fromServer := make(chan struct{})
		go func() {
			defer close(fromServer)
			ss.stop(ss.pumpServer())
		}()
		ss.stop(ss.pumpClient())
		<-fromServer
	}
	if ss.code != "" {
		_ = ss.client.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
		_ = ss.client.send(fatal(ss.code, "sallyport: session ended: "+ss.reason))
	}
	return ss.reason
}

// stop ends the relay once, keeping the first reason: stopping the link,
// or, for goroutine pumps, closing upstream ends the server pump and a past
// read deadline the client pump.
func (ss *session) stop(reason, code string) {
	ss.stopOnce.Do(func() {
		ss.reason, ss.code = reason, code
		if ss.link != nil {
			ss.link.Stop() // waitLink closes upstream
			return
		}
		ss.up.Close()
		_ = ss.client.conn.SetReadDeadline(time.Unix(1, 0))
	})
}

// watchRecording ends the session when its recording fails (fail closed).
func (ss *session) watchRecording(done <-chan struct{}) {
	select {
	case <-ss.rec.Failed():
		ss.stop(fmt.Sprintf("%s: %v", "recording_unavailable", ss.rec.Err()), codeAdminShutdown)
	case <-done:
	}
}

// pumpClient forwards client bytes upstream, auditing the messages.
func (ss *session) pumpClient() (reason, code string) {
	buf := make([]byte, relayBuffer)
	scan := ss.clientScanner()
	for {
		n, err := ss.client.r.Read(buf)
		if n > 0 {
			if _, ferr := ss.audit.scan(scan, buf[:n]); ferr != nil {
				return "protocol violation by the client: " + ferr.Error(), codeProtocolViolation
			}
			if _, werr := ss.up.Write(buf[:n]); werr != nil {
				return "target connection lost: " + werr.Error(), ""
			}
		}
		if err != nil {
			if err == io.EOF || ss.audit.terminated {
				return "client closed", ""
			}
			return "client connection lost: " + err.Error(), ""
		}
	}
}

// pumpServer forwards target bytes to the client as they come, reading
// only the headers and the outcome messages; events go to the recorder in
// batches, after the bytes went on, off the client's critical path.
func (ss *session) pumpServer() (reason, code string) {
	buf := make([]byte, relayBuffer)
	scan := &frameScanner{max: ss.srv.maxMessage(), want: serverWants, handle: ss.audit.server}
	for {
		n, err := ss.up.Read(buf)
		if n > 0 {
			pending, ferr := ss.audit.scan(scan, buf[:n])
			if ferr != nil {
				return "protocol violation by the target: " + ferr.Error(), codeProtocolViolation
			}
			if _, werr := ss.client.conn.Write(buf[:n]); werr != nil {
				return "client connection lost: " + werr.Error(), ""
			}
			if pending >= eventBatch {
				if rerr := ss.audit.flush(); rerr != nil {
					return "recording_unavailable: " + rerr.Error(), codeAdminShutdown
				}
			}
		}
		if err != nil {
			if err == io.EOF {
				return "target closed the connection", ""
			}
			return "target connection lost: " + err.Error(), ""
		}
	}
}
