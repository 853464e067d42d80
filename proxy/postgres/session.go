package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	capg "github.com/sallyport/sallyport/ca/postgres"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// session is one admitted client relayed to its target.
type session struct {
	srv    *Server
	ps     *proxy.Session
	client *client
	adm    *admission
	rec    *recorder.Session
	role   string
	up     net.Conn
	key    uint32
	audit  *audit
	link   *proxy.Link // relays the session (plain or TLS); nil: goroutine pumps

	stopOnce sync.Once
	reason   string
	code     string // SQLSTATE of the FATAL the client gets; empty: none
}

// handle serves one client connection from its first byte to its end.
func (s *Server) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(s.startupTimeout()))
	n, err := s.negotiate(conn)
	if err != nil {
		s.logger().Info("postgres client refused at startup", "source", conn.RemoteAddr().String(), "err", err)
		if errors.Is(err, errFirstPacket) && n != nil {
			c := &client{conn: n.conn}
			_ = c.send(fatal(codeProtocolViolation, "sallyport: "+err.Error()))
		}
		return
	}
	if n.cancel != nil {
		s.forwardCancel(ctx, n.cancel, addrPort(n.conn))
		return
	}
	c := &client{conn: n.conn, r: n.r, tls: n.tls, st: n.st}
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
	reason := ss.run()
	c.conn.Close() // before the teardown: the client need not wait for the role drop
	ss.teardown(reason)
}

// refuseLogin tells the client why it was refused and logs it.
func (s *Server) refuseLogin(c *client, err error) {
	var r *refusal
	if !errors.As(err, &r) {
		r = refuse(codeCannotConnect, "cannot start the session; ask an operator to check the bastion's log")
		r.cause = err
	}
	s.logger().Info("postgres login refused", "identity", c.st.params["user"], "target", c.st.params["database"],
		"source", c.conn.RemoteAddr().String(), "reason", r.msg, "err", r.cause)
	_ = c.send(fatal(r.code, r.msg))
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
		return nil, refuse(codeInvalidAuthorization, "the entitlement of %s on %s names no database role; ask its owner %s to set its login",
			a.req.Identity, a.req.Target, a.decision.Owner)
	}
	now := s.now()
	ss := &session{srv: s, client: c, adm: a, audit: newAudit(s.now)}
	ss.ps = s.liveTable().Begin(ctx, "postgres", a.req, a.decision, now)
	if err := ss.setup(now); err != nil {
		if cause := context.Cause(ss.ps.Context()); cause != nil {
			return ss, &refusal{code: codeAdminShutdown, msg: "sallyport: session ended: " + proxy.EndReason(cause), cause: err}
		}
		return ss, err
	}
	return ss, nil
}

// setup records the session, mints its role, logs in upstream and
// completes the client's startup.
func (ss *session) setup(now time.Time) error {
	ctx, cancel := context.WithTimeout(ss.ps.Context(), setupTimeout)
	defer cancel()
	// The recording opens (spool files, fsync) while the role is minted and
	// the bastion logs in; the client hears nothing before both are done.
	recorded := make(chan error, 1)
	go func() { recorded <- ss.openRecording(ctx, now) }()
	up, err := ss.loginUpstream(ctx, now)
	if rerr := <-recorded; rerr != nil {
		if up != nil {
			up.conn.Close()
		}
		return rerr
	}
	if err != nil {
		return err
	}
	ss.up = up.conn
	secretLen := secretLen30
	if ss.client.st.minor >= 2 {
		secretLen = secretLen32
	}
	if up.txStatus != 0 {
		ss.audit.tx.state = up.txStatus
	}
	key := ss.srv.keys.add(secretLen, up, ss.audit)
	ss.key = key.ProcessID
	msgs := []pgproto3.BackendMessage{&pgproto3.AuthenticationOk{}}
	for name, value := range up.params {
		msgs = append(msgs, &pgproto3.ParameterStatus{Name: name, Value: value})
	}
	msgs = append(msgs, key, &pgproto3.ReadyForQuery{TxStatus: up.txStatus})
	return ss.client.send(msgs...)
}

// loginUpstream mints the session's role and logs in to the target as it.
func (ss *session) loginUpstream(ctx context.Context, now time.Time) (*upstream, error) {
	validUntil := now.Add(defaultRoleValidity)
	if ss.srv.MaxSession > 0 {
		validUntil = now.Add(ss.srv.MaxSession)
	}
	t := ss.adm.target
	role, err := t.Roles.Create(ctx, ss.ps.ID, ss.adm.decision.Login, validUntil)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", ss.ps.ID, err)
	}
	ss.role = role.Name
	up, err := ss.srv.connect(ctx, t, role, ss.client.st.params)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", ss.ps.ID, err)
	}
	return up, nil
}

func (ss *session) openRecording(ctx context.Context, now time.Time) error {
	unavailable := refuse(codeInvalidAuthorization, "access denied (%s): the session cannot be recorded; try again later or ask an operator",
		iga.ReasonRecordingUnavailable)
	if ss.srv.Recorder == nil {
		return unavailable
	}
	d := ss.adm.decision
	rec, err := ss.srv.Recorder.Open(ctx, recorder.SessionMeta{ID: ss.ps.ID, Identity: d.Identity, Owner: d.Owner,
		Target: d.Target, Protocol: "postgres", Login: d.Login, Source: addrPort(ss.client.conn),
		CertSerial: capg.RoleName(ss.ps.ID), Decision: d, BreakglassGrant: d.Grant, StartedAt: now})
	if err != nil {
		unavailable.cause = err
		return unavailable
	}
	ss.rec = rec
	ss.audit.start(rec)
	return nil
}

// teardown ends the session once the client is gone: the upstream
// connection, the role, the recording, the live entry.
func (ss *session) teardown(reason string) {
	if ss.up != nil {
		ss.up.Close()
	}
	if ss.key != 0 {
		ss.srv.keys.remove(ss.key)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ss.ps.Context()), teardownTimeout)
	defer cancel()
	log := ss.srv.logger().With("session", ss.ps.ID, "identity", ss.adm.req.Identity, "target", ss.adm.req.Target)
	if ss.role != "" {
		if err := ss.adm.target.Roles.Drop(ctx, ss.role); err != nil {
			log.Warn("drop postgres session role", "err", err)
		}
	}
	if ss.rec != nil {
		ss.audit.abandon()
		_ = ss.audit.flush() // a failed recording was reported when it failed
		if err := ss.rec.Close(ctx, recorder.End{Reason: reason}); err != nil {
			log.Warn("close postgres session recording", "err", err)
		}
	}
	ss.srv.liveTable().End(ss.ps)
	log.Info("postgres session ended", "reason", reason)
}
