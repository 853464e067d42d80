package mysql

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// firstConnID is where connection ids start: far above the thread ids of
// the targets, so that a KILL of a target thread id is never mistaken for
// one of the bastion's.
const firstConnID = 1 << 30

// session is one admitted client relayed to its target.
type session struct {
	srv    *Server
	ps     *proxy.Session
	client *client
	adm    *admission
	rec    *recorder.Session
	user   *camysql.User
	up     *upstream
	audit  *audit
	link   *proxy.Link // relays the session (plain or TLS); nil: goroutine pumps

	writeMu  sync.Mutex // client writes: server pump and local replies
	flushMu  sync.Mutex // hands events to the recorder in order
	spare    []recorder.Event
	inline   inlineFlush // pump sessions: statements handed over on the pump
	stopOnce sync.Once
	reason   string
	code     uint16 // of the ERR the client gets at the end; 0: none
}

// handle serves one client connection from its first byte to its end.
func (s *Server) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(s.startupTimeout()))
	id := s.connID()
	c, err := s.greet(conn, id)
	if err != nil {
		s.logger().Info("mysql client refused at handshake", "source", conn.RemoteAddr().String(), "err", err)
		if c != nil && !errors.Is(err, errSequence) {
			_ = c.write(refuse(codeHandshake, stateConnection, "bad handshake: %v", err).packet())
		}
		return
	}
	ss, err := s.login(ctx, c)
	if err != nil {
		s.refuseLogin(c, err)
		c.conn.Close()
		if ss != nil {
			ss.teardown("setup failed")
		}
		return
	}
	_ = c.conn.SetDeadline(time.Time{})
	s.byID.Store(id, ss)
	reason := ss.run()
	s.byID.Delete(id)
	c.conn.Close() // before the teardown: the client need not wait for the user drop
	ss.teardown(reason)
}

// connID hands out the connection id of the next client.
func (s *Server) connID() uint32 {
	s.nextID.CompareAndSwap(0, firstConnID+rand.Uint32N(firstConnID/2))
	return s.nextID.Add(1)
}

// refuseLogin tells the client why it was refused and logs it.
func (s *Server) refuseLogin(c *client, err error) {
	var r *refusal
	if !errors.As(err, &r) {
		r = refuse(codeUnknownError, stateGeneral, "cannot start the session; ask an operator to check the bastion's log")
		r.cause = err
	}
	identity, target := route(c.l)
	s.logger().Info("mysql login refused", "identity", identity, "target", target,
		"source", c.conn.RemoteAddr().String(), "reason", r.msg, "err", r.cause)
	_ = c.write(r.packet())
	if r.audit != nil { // after the answer: the client does not wait for the audit write
		proxy.RecordRefusal(s.Gate, s.logger(), *r.audit)
	}
}

// login admits the client and opens its session on the target. A session
// that failed half-way is returned with the error, to be torn down.
func (s *Server) login(ctx context.Context, c *client) (*session, error) {
	a, err := s.admit(ctx, c)
	if err != nil {
		return nil, err
	}
	if a.decision.Login == "" {
		return nil, refuse(codeAccessDenied, stateAccessDenied, "the entitlement of %s on %s names no database role; ask its owner %s to set its login",
			a.req.Identity, a.req.Target, a.decision.Owner)
	}
	now := s.now()
	ss := &session{srv: s, client: c, adm: a}
	ss.ps = s.liveTable().Begin(ctx, "mysql", a.req, a.decision, now)
	if err := ss.setup(now); err != nil {
		if cause := context.Cause(ss.ps.Context()); cause != nil {
			return ss, &refusal{code: codeKilled, state: stateKilled, msg: "sallyport: session ended: " + proxy.EndReason(cause), cause: err}
		}
		return ss, err
	}
	return ss, nil
}

// setup records the session, mints its user, logs in upstream and
// completes the client's login.
func (ss *session) setup(now time.Time) error {
	ctx, cancel := context.WithTimeout(ss.ps.Context(), setupTimeout)
	defer cancel()
	if err := ss.openRecording(ctx, now); err != nil {
		return err
	}
	t := ss.adm.target
	user, err := t.Users.Create(ctx, ss.ps.ID, ss.adm.decision.Login)
	if err != nil {
		return fmt.Errorf("session %s: %w", ss.ps.ID, err)
	}
	ss.user = user
	up, err := ss.srv.connect(ctx, t, user, ss.adm.decision.Login, ss.client.l)
	if err != nil {
		return fmt.Errorf("session %s: %w", ss.ps.ID, err)
	}
	ss.up = up
	ss.audit = newAudit(ss.srv.now, up.caps&capDeprecateEOF != 0)
	ss.audit.configure(ss.rec.MaxStatementBytes(), up.caps&capMultiStatements != 0, up.status)
	return ss.client.write(okPacket(up.status))
}

func (ss *session) openRecording(ctx context.Context, now time.Time) error {
	unavailable := refuse(codeAccessDenied, stateAccessDenied, "access denied (%s): the session cannot be recorded; try again later or ask an operator",
		iga.ReasonRecordingUnavailable)
	if ss.srv.Recorder == nil {
		return unavailable
	}
	d := ss.adm.decision
	rec, err := ss.srv.Recorder.Open(ctx, recorder.SessionMeta{ID: ss.ps.ID, Identity: d.Identity, Owner: d.Owner,
		Target: d.Target, Protocol: "mysql", Login: d.Login, Source: ss.adm.req.Source.String(),
		CertSerial: camysql.UserName(ss.ps.ID), Decision: d, BreakglassGrant: d.Grant, StartedAt: now})
	if err != nil {
		unavailable.cause = err
		return unavailable
	}
	ss.rec = rec
	return nil
}

// teardown ends the session once the client is gone: the upstream
// connection, the user, the recording, the live entry.
func (ss *session) teardown(reason string) {
	if ss.up != nil {
		ss.up.conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ss.ps.Context()), teardownTimeout)
	defer cancel()
	log := ss.srv.logger().With("session", ss.ps.ID, "identity", ss.adm.req.Identity, "target", ss.adm.req.Target)
	if ss.user != nil {
		if err := ss.adm.target.Users.Drop(ctx, ss.user); err != nil {
			log.Warn("drop mysql session user", "err", err)
		}
	}
	if ss.rec != nil {
		if err := ss.rec.Close(ctx, recorder.End{Reason: reason}); err != nil {
			log.Warn("close mysql session recording", "err", err)
		}
	}
	ss.srv.liveTable().End(ss.ps)
	log.Info("mysql session ended", "reason", reason)
}
