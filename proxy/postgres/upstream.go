package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	capg "github.com/sallyport/sallyport/ca/postgres"
)

// clientCheckInterval is the target's client_connection_check_interval for
// session logins: if the bastion dies mid-query, PostgreSQL notices the
// closed socket within this long and ends the backend, instead of running
// the query to its end (the role can then be dropped by the janitor).
const clientCheckInterval = "1s"

// Roles mints and drops per-session roles on a target; *capg.Issuer has it.
type Roles interface {
	// Create makes the login role of a session, member of grant, valid for
	// logging in until validUntil.
	Create(ctx context.Context, sessionID, grant string, validUntil time.Time) (*capg.Role, error)
	// Drop ends the role's backends and removes it.
	Drop(ctx context.Context, role string) error
}

// Target is a PostgreSQL server the bastion brokers sessions to.
type Target struct {
	// Name is the target's name in the registry: the client's dbname.
	Name string
	// Database is the database on the server. Empty: Name.
	Database string
	// Conn is the template of the bastion's login: host, port and TLS
	// settings (typically parsed from the admin DSN, TLS set from the
	// target's tls config); user, password, database and runtime
	// parameters are set per session. It must come from pgconn.ParseConfig.
	// TLS: Conn.TLSConfig nil is plaintext; set, the login starts TLS with
	// it and is refused when the target declines, unless a Fallbacks entry
	// without TLS allows plaintext (sslmode=prefer). Cancel requests are
	// sent to the target the same way. Required.
	Conn *pgconn.Config
	// Roles mints the per-session roles. Required.
	Roles Roles
}

func (t *Target) database() string {
	if t.Database != "" {
		return t.Database
	}
	return t.Name
}

// parameterRefusals are the SQLSTATEs with which a target refuses a
// startup parameter the client sent: not allowed to the session's role
// (session_authorization, role, superuser-only settings), unknown, or a
// bad value. The client is told the target's message: it is about what
// the client asked for, and retrying unchanged will not help.
var parameterRefusals = map[string]bool{
	"42501": true, // insufficient_privilege
	"42704": true, // undefined_object: unrecognized configuration parameter
	"22023": true, // invalid_parameter_value
}

// connect logs in to the target as role. Startup parameters of the
// client other than user, database and replication go along (checkStartup
// let through only parameter settings in options); the target grants them
// exactly as it would a SET by the session's role. The bastion's own
// settings come last, so a client cannot override them at startup.
func (s *Server) connect(ctx context.Context, t *Target, role *capg.Role, params map[string]string) (*upstream, error) {
	c := t.Conn
	startup := make(map[string]string, len(c.RuntimeParams)+len(params)+3)
	for k, v := range c.RuntimeParams {
		startup[k] = v
	}
	for k, v := range params {
		if k != "user" && k != "database" && k != "replication" {
			startup[k] = v
		}
	}
	startup["client_connection_check_interval"] = clientCheckInterval
	startup["user"], startup["database"] = role.Name, t.database()
	prefer := false
	for _, fb := range c.Fallbacks {
		prefer = prefer || fb.TLSConfig == nil
	}
	addr := net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
	up, err := s.loginAs(ctx, addr, c.TLSConfig, prefer, startup, role.Password)
	var te *tlsError
	if errors.As(err, &te) {
		// The client's FATAL says why: an operator must fix the target's
		// TLS settings (or its certificate); retrying will not help.
		return nil, &refusal{code: codeCannotConnect, cause: err,
			msg: fmt.Sprintf("sallyport: cannot connect securely to target %s: %v; ask an operator to check the target's TLS settings (tls.mode, tls.ca_file) and certificate", t.Name, te.err)}
	}
	var pe *targetError
	if errors.As(err, &pe) && parameterRefusals[pe.code] {
		return nil, &refusal{code: pe.code, cause: err,
			msg: fmt.Sprintf("sallyport: target %s refused the session's startup parameters: %s; leave the parameter out", t.Name, pe.msg)}
	}
	if err != nil {
		return nil, fmt.Errorf("log in to target %s as %s: %w", t.Name, role.Name, err)
	}
	return up, nil
}
