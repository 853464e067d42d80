package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/proxy"
)

// Error numbers and SQLSTATEs of the ERR packets the bastion sends.
const (
	codeAccessDenied   = 1045 // ER_ACCESS_DENIED_ERROR
	stateAccessDenied  = "28000"
	codeHandshake      = 1043 // ER_HANDSHAKE_ERROR
	codeUnknownCommand = 1047 // ER_UNKNOWN_COM_ERROR
	stateConnection    = "08S01"
	codeNotOwner       = 1095 // ER_KILL_DENIED_ERROR
	stateGeneral       = "HY000"
	codeUnknownError   = 1105 // ER_UNKNOWN_ERROR
	codeKilled         = 1927 // ER_CONNECTION_KILLED (MariaDB)
	stateKilled        = "70100"
	codeTooLarge       = 1153 // ER_NET_PACKET_TOO_LARGE
)

// refusal is what a client is told when it is not let in: an ERR packet
// whose message starts "sallyport: ".
type refusal struct {
	code  uint16
	state string
	msg   string
	cause error // logged, never sent
	// audit is the refusal's audit event: a failed login (no credential
	// proven), or a refusal no admission decision recorded. Nil: none.
	audit *iga.Refusal
}

func (r *refusal) Error() string { return r.msg }

func refuse(code uint16, state, format string, args ...any) *refusal {
	return &refusal{code: code, state: state, msg: "sallyport: " + fmt.Sprintf(format, args...)}
}

func (r *refusal) packet() []byte { return errPacket(r.code, r.state, r.msg) }

// admission is an admitted login: who, where, and what the registry said.
type admission struct {
	req      iga.Request
	decision iga.Decision
	target   *Target
}

// route splits the login into identity and target: user IDENTITY with
// database TARGET, or user IDENTITY@TARGET (split at the last '@'; with a
// database that names another target, the whole user is the identity).
func route(l *login) (identity, target string) {
	identity, target = l.user, l.database
	if i := strings.LastIndexByte(l.user, '@'); i >= 0 && (target == "" || target == l.user[i+1:]) {
		identity, target = l.user[:i], l.user[i+1:]
	}
	return identity, target
}

// credentialRefused is what a client hears when the registry does not
// accept its token, whatever the cause (unknown identity, wrong, expired or
// another identity's token): before a credential is proven, the bastion
// says nothing that tells a registered name from an unknown one. The
// detailed reasons go to the audit trail and the log.
const credentialRefused = "sallyport: access denied (" + iga.ReasonCredentialInvalid +
	"): the token was not accepted for this user; check -u IDENTITY and that the token is current"

// askedToken is what a failed login asked for, in its audit event.
const askedToken = "password (token)"

// admit checks the login, takes the token over TLS and asks the registry.
// Every refusal is a *refusal the client will see; a failed login's
// carries the audit event that records it.
func (s *Server) admit(ctx context.Context, c *client) (*admission, error) {
	identity, targetName := route(c.l)
	if r := checkLogin(identity, targetName); r != nil {
		return nil, c.failedLogin(r.refusal, r.reason)
	}
	if !c.tls && !s.AllowPlaintext {
		return nil, refuse(codeAccessDenied, stateAccessDenied,
			"TLS required: connect with --ssl (the password is a bearer token and is only accepted encrypted)")
	}
	token, err := c.token()
	c.l.auth = nil // the token is not kept past admission
	if err != nil {
		return nil, err
	}
	if s.Gate == nil {
		return nil, refuse(codeUnknownError, stateGeneral, "no registry is configured; ask an operator")
	}
	cred := iga.Credential{Token: token}
	if err := s.Gate.Authenticate(ctx, identity, cred); err != nil {
		return nil, c.credentialDenial(err)
	}
	if targetName == "" {
		// Only now: which identities have live sessions is not for
		// clients that proved nothing.
		targetName = s.liveTarget(identity)
	}
	if targetName == "" {
		r := refuse(codeAccessDenied, stateAccessDenied, "no database: connect with -u IDENTITY -D TARGET and a token as password; "+
			"a tool that logs in without a database (mysqlslap --create-schema) needs -u IDENTITY@TARGET")
		r.audit = c.loginRefusal([]iga.Reason{{Code: iga.ReasonUnknownTarget, Message: "the login names no database"}})
		r.audit.Login, r.audit.Action = false, iga.ActionQuery
		return nil, r
	}
	// The session's id is minted before the decision, so its audit event
	// names the session (and recording) it admits.
	req := iga.Request{Identity: identity, Target: targetName, Action: iga.ActionQuery, Source: c.source(), Credential: &cred,
		Session: sessionid.New(s.now())}
	d, err := s.Gate.Decide(ctx, req)
	if err != nil {
		return nil, denial(err, "decide admission")
	}
	if !d.Allow {
		return nil, denial(d.Err(), "")
	}
	t, ok := s.target(targetName)
	if !ok {
		return nil, refuse(codeAccessDenied, stateAccessDenied, "access denied (%s): %s is not a mysql target of this bastion; ask an operator for the target's name",
			iga.ReasonUnknownTarget, targetName)
	}
	req.Credential = nil // the token is not kept past admission
	return &admission{req: req, decision: d, target: t}, nil
}

// loginRefusal is a login the bastion refuses before any credential: what
// the client hears, and the reason the audit trail gets.
type loginRefusal struct {
	*refusal
	reason iga.Reason
}

// checkLogin refuses logins that name no identity, or name the identity or
// target in a way no registry entry can match. A login without a target
// is checked after the token: it may go where the identity's live session
// is.
func checkLogin(identity, target string) *loginRefusal {
	switch {
	case identity == "":
		return &loginRefusal{refuse(codeAccessDenied, stateAccessDenied, "no user: connect with -u IDENTITY -D TARGET and a token as password"),
			iga.Reason{Code: iga.ReasonUnknownIdentity, Message: "the login names no user"}}
	case !proxy.PlausibleName(identity):
		return &loginRefusal{refuse(codeAccessDenied, stateAccessDenied, "invalid user: an identity name is at most %d printable characters; connect with -u IDENTITY -D TARGET and a token as password", proxy.MaxLoginName),
			iga.Reason{Code: iga.ReasonUnknownIdentity, Message: "the user name is too long or not printable text"}}
	case target != "" && !proxy.PlausibleName(target):
		return &loginRefusal{refuse(codeAccessDenied, stateAccessDenied, "invalid database: a target name is at most %d printable characters; connect with -u IDENTITY -D TARGET and a token as password", proxy.MaxLoginName),
			iga.Reason{Code: iga.ReasonUnknownTarget, Message: "the database name is too long or not printable text"}}
	}
	return nil
}

// failedLogin is r, refused before a credential was read, with its audit
// event.
func (c *client) failedLogin(r *refusal, reason iga.Reason) *refusal {
	r.audit = c.loginRefusal([]iga.Reason{reason})
	return r
}

// credentialDenial is what the client hears when Authenticate refuses:
// credentialRefused whatever the reasons, which only the audit event and
// the log get; or a note that the registry could not be asked.
func (c *client) credentialDenial(err error) error {
	var d *iga.Denied
	if !errors.As(err, &d) {
		return denial(err, "check the token")
	}
	f := c.loginRefusal(d.Reasons)
	f.Asked = askedToken
	return &refusal{code: codeAccessDenied, state: stateAccessDenied, msg: credentialRefused, audit: f, cause: d}
}

// loginRefusal is the audit event of a failed login from c.
func (c *client) loginRefusal(reasons []iga.Reason) *iga.Refusal {
	identity, target := route(c.l)
	return &iga.Refusal{Login: true, Protocol: "mysql", Identity: proxy.AuditName(identity), Target: proxy.AuditName(target),
		Source: c.source(), Reasons: reasons}
}

// denial turns a registry answer into what the client sees: the one line
// of an *iga.Denied, or a note that the registry could not be asked.
func denial(err error, doing string) error {
	var d *iga.Denied
	if errors.As(err, &d) {
		return &refusal{code: codeAccessDenied, state: stateAccessDenied, msg: "sallyport: " + d.Error()}
	}
	r := refuse(codeUnknownError, stateGeneral, "cannot %s now (registry unavailable); try again", doing)
	r.cause = err
	return r
}

// liveTarget is the target of the identity's live sessions on this
// bastion when they all go to one: the mysql client's Ctrl-C connects
// without a database to send KILL QUERY, and that login goes where the
// query runs. Empty when there is none or the choice is not clear.
func (s *Server) liveTarget(identity string) string {
	var target string
	clear := true
	s.byID.Range(func(_, v any) bool {
		ss := v.(*session)
		if ss.adm.req.Identity != identity {
			return true
		}
		if target != "" && target != ss.adm.req.Target {
			clear = false
			return false
		}
		target = ss.adm.req.Target
		return true
	})
	if !clear {
		return ""
	}
	return target
}

func (s *Server) target(name string) (*Target, bool) {
	if s.Targets == nil {
		return nil, false
	}
	return s.Targets(name)
}
