package ssh

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// conn is one authenticated client connection. Its first admitted channel
// begins the proxied session (live table entry and recording); every later
// channel is admitted on its own and joins it.
type conn struct {
	srv *Server
	st  *connState
	sc  *gossh.ServerConn
	ctx context.Context // ends when the client connection closes

	mu       sync.Mutex
	sess     *proxy.Session
	rec      *recorder.Session
	failed   string // set when the session could not begin; later channels get it too
	ups      map[profile]*upstream
	channels map[int]*clientChannel
	nextCh   int
	exit     *int
	ended    bool

	work       sync.WaitGroup // channel relays in flight
	lastActive atomic.Int64   // unix nanos of the last relayed byte
}

// connOf returns the connection's conn, creating it with the first channel.
func (s *Server) connOf(sc *gossh.ServerConn, ctx gliderssh.Context) *conn {
	st := stateOf(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.channels = true
	if st.conn == nil {
		st.conn = &conn{srv: s, st: st, sc: sc, ctx: ctx, ups: map[profile]*upstream{}, channels: map[int]*clientChannel{}}
	}
	return st.conn
}

func (c *conn) request(action iga.Action) iga.Request {
	return c.st.request(action, c.sc.Permissions)
}

// channelRequest is the registry request for a channel: an exec names its
// command line, which the registry matches against the entitlement's
// commands (a legacy scp transfer is sftp, admitted by its own grammar).
func (c *conn) channelRequest(action iga.Action, command string) iga.Request {
	req := c.request(action)
	if action == iga.ActionExec {
		req.Command = command
	}
	return req
}

// admit asks the registry whether action is allowed and finds the target;
// asked is the client's own words (an exec's command line, which the
// registry also matches, or a scp command or forward destination), for the
// audit trail of a refusal. On refusal it returns the one line the client
// must see: the refusal made at login, when there was one.
func (c *conn) admit(action iga.Action, asked string) (iga.Decision, Target, string) {
	s := c.srv
	if s.Gate == nil {
		return iga.Decision{}, Target{}, "sallyport: no registry is configured; ask an operator"
	}
	if line := c.st.refusedAtLogin(); line != "" {
		return iga.Decision{}, Target{}, line
	}
	req := c.channelRequest(action, asked)
	req.Asked = asked
	ctx, cancel := context.WithTimeout(c.ctx, decideTimeout)
	defer cancel()
	d, err := s.Gate.Decide(ctx, req)
	if err != nil {
		s.logger().Error("admit ssh channel", "identity", req.Identity, "target", req.Target, "action", action, "err", err)
		return d, Target{}, "sallyport: cannot check access right now; try again later"
	}
	if !d.Allow {
		return d, Target{}, "sallyport: " + d.Err().Error()
	}
	t, ok := Target{}, false
	if s.Targets != nil {
		t, ok = s.Targets(req.Target)
	}
	if !ok {
		return d, t, fmt.Sprintf("sallyport: access denied (unknown_target): no ssh target named %q is configured; check the target name", req.Target)
	}
	return d, t, ""
}

// begin starts the proxied session with the first admitted channel: the
// live table entry, the first certificate and the recording. It returns
// the refusal line when the session cannot be recorded.
func (c *conn) begin(d iga.Decision, req iga.Request, prof profile, t Target) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != "" {
		return c.failed, nil
	}
	if c.ended {
		return "sallyport: session ended", nil
	}
	if c.sess != nil {
		return "", nil
	}
	s := c.srv
	if s.CA == nil {
		c.failed = "sallyport: the bastion has no SSH certificate authority; ask an operator"
		return c.failed, nil
	}
	sess := s.live().Begin(c.ctx, "ssh", req, d, s.now())
	cert, err := c.issue(sess.ID, prof)
	if err != nil {
		s.live().End(sess)
		c.failed = "sallyport: cannot issue a session certificate; ask an operator"
		return c.failed, err
	}
	rec, line := c.openRecording(sess, d, t, cert.Cert.Serial)
	if rec == nil {
		s.live().End(sess)
		c.failed = line
		return line, nil
	}
	c.sess, c.rec = sess, rec
	c.ups[prof] = &upstream{cert: cert}
	s.logger().Info("ssh session started", "session", sess.ID, "identity", d.Identity, "target", t.Name,
		"login", d.Login, "action", d.Action, "source", c.sc.RemoteAddr().String(), "cert_serial", cert.Cert.Serial,
		"breakglass_grant", d.Grant)
	c.touch()
	go c.supervise()
	go c.writeNotes()
	return "", nil
}

func (c *conn) openRecording(sess *proxy.Session, d iga.Decision, t Target, serial uint64) (*recorder.Session, string) {
	const refused = "sallyport: access denied (recording_unavailable): the session cannot be recorded, so it is not allowed; try again later or ask an operator to check the recording store"
	if c.srv.Recorder == nil {
		return nil, refused
	}
	meta := recorder.SessionMeta{
		ID: sess.ID, Identity: d.Identity, Owner: d.Owner, Target: t.Name, Protocol: "ssh",
		Login: d.Login, Source: c.sc.RemoteAddr().String(), CertSerial: strconv.FormatUint(serial, 10),
		Decision: d, BreakglassGrant: d.Grant, StartedAt: sess.Started,
	}
	rec, err := c.srv.Recorder.Open(c.ctx, meta)
	if err != nil {
		c.srv.logger().Error("open ssh session recording", "session", sess.ID, "err", err)
		return nil, refused
	}
	return rec, ""
}

// touch marks activity for the idle timeout.
func (c *conn) touch() { c.lastActive.Store(time.Now().UnixNano()) }

// session returns the live session and its recording once begun.
func (c *conn) session() (*proxy.Session, *recorder.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess, c.rec
}

// addChannel registers a relayed channel: its recording number, and the
// work group the end of the session waits for. ok is false once the session
// has ended.
func (c *conn) addChannel(cc *clientChannel) (id int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return 0, false
	}
	id = c.nextCh
	c.nextCh++
	if cc != nil {
		c.channels[id] = cc
	}
	c.work.Add(1)
	return id, true
}

func (c *conn) doneChannel(id int) {
	c.mu.Lock()
	delete(c.channels, id)
	c.mu.Unlock()
	c.work.Done()
}

func (c *conn) setExit(status int) {
	c.mu.Lock()
	c.exit = &status
	c.mu.Unlock()
}

// supervise ends the session when the client leaves, an operator kills it,
// the registry stops admitting it, the recording fails, or a timeout hits;
// then it seals the recording.
func (c *conn) supervise() {
	reason, code := c.waitEnd()
	c.mu.Lock()
	c.ended = true
	chans := make([]*clientChannel, 0, len(c.channels))
	for _, cc := range c.channels {
		chans = append(chans, cc)
	}
	c.mu.Unlock()
	if code != "" {
		c.srv.logger().Warn("ssh session ended", "session", c.sess.ID, "identity", c.sess.Request.Identity, "reason", reason)
		notify(chans, "sallyport: session ended ("+code+"): "+reason)
		c.leaveOrClose(len(chans) > 0)
	}
	c.closeUpstreams()
	waitTimeout(&c.work, drainTimeout)
	c.seal(reason)
}

// waitEnd blocks until the session must end; code is empty when the client
// simply left.
func (c *conn) waitEnd() (reason, code string) {
	var maxC <-chan time.Time
	if d := c.srv.MaxSession; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		maxC = t.C
	}
	idle := c.idleTicker()
	defer idle.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return "client closed the connection", ""
		case <-c.sess.Context().Done():
			return context.Cause(c.sess.Context()).Error(), killCode(c.sess.Context())
		case <-c.rec.Failed():
			return fmt.Sprintf("the session can no longer be recorded: %v", c.rec.Err()), iga.ReasonRecordingUnavailable
		case <-maxC:
			return fmt.Sprintf("the maximum session duration of %s was reached", c.srv.MaxSession), "max_session"
		case <-idle.C:
			if c.idleFor() >= c.srv.IdleTimeout && c.srv.IdleTimeout > 0 {
				return fmt.Sprintf("no activity for %s", c.srv.IdleTimeout), "idle_timeout"
			}
		}
	}
}

// killCode names why a session context ended.
func killCode(ctx context.Context) string {
	if errors.Is(context.Cause(ctx), proxy.ErrKilled) {
		return "killed"
	}
	return "ended"
}

func (c *conn) idleTicker() *time.Ticker {
	every := time.Hour
	if d := c.srv.IdleTimeout; d > 0 {
		every = min(d/4, time.Second)
		if every <= 0 {
			every = time.Millisecond
		}
	}
	return time.NewTicker(every)
}

func (c *conn) idleFor() time.Duration {
	return time.Since(time.Unix(0, c.lastActive.Load()))
}

func (c *conn) closeUpstreams() {
	c.mu.Lock()
	ups := c.ups
	c.ups = map[profile]*upstream{}
	c.mu.Unlock()
	for _, u := range ups {
		u.close()
	}
}

// seal closes the recording and removes the session from the live table.
func (c *conn) seal(reason string) {
	c.mu.Lock()
	exit := c.exit
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), recordingCloseTimeout)
	defer cancel()
	if err := c.rec.Close(ctx, recorder.End{ExitStatus: exit, Reason: reason}); err != nil {
		c.srv.logger().Error("seal ssh session recording", "session", c.sess.ID, "err", err)
	}
	c.srv.logger().Info("ssh session ended", "session", c.sess.ID, "identity", c.sess.Request.Identity, "reason", reason)
	c.srv.live().End(c.sess)
}

// leaveOrClose gives a client whose channels were just closed a moment to
// disconnect by itself (closing at once could reset the connection before
// the client read why), then closes the connection.
func (c *conn) leaveOrClose(grace bool) {
	if grace {
		t := time.NewTimer(leaveGrace)
		defer t.Stop()
		select {
		case <-c.ctx.Done():
		case <-t.C:
		}
	}
	_ = c.sc.Close()
}

// notify ends every open session channel with line on its stderr, giving
// up after noticeTimeout on a client that does not read.
func notify(chans []*clientChannel, line string) {
	var wg sync.WaitGroup
	for _, cc := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc.end(line)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(noticeTimeout):
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
