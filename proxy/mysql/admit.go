package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sallyport/sallyport/iga"
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

// admit checks the login, takes the token over TLS and asks the registry.
// Every refusal is a *refusal the client will see.
func (s *Server) admit(ctx context.Context, c *client) (*admission, error) {
	identity, targetName := route(c.l)
	if targetName == "" {
		targetName = s.liveTarget(identity)
	}
	switch {
	case identity == "":
		return nil, refuse(codeAccessDenied, stateAccessDenied, "no user: connect with -u IDENTITY -D TARGET and a token as password")
	case targetName == "":
		return nil, refuse(codeAccessDenied, stateAccessDenied, "no database: connect with -u IDENTITY -D TARGET (or -u IDENTITY@TARGET) and a token as password")
	case !c.tls && !s.AllowPlaintext:
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
		return nil, denial(err, "check the token")
	}
	req := iga.Request{Identity: identity, Target: targetName, Action: iga.ActionQuery, Source: c.source(), Credential: &cred}
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
