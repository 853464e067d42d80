package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sallyport/sallyport/iga"
)

// admission is an admitted login: who, where, and what the registry said.
type admission struct {
	req      iga.Request
	decision iga.Decision
	target   *Target
}

// admit checks the startup parameters, takes the token over TLS, and asks
// the registry. Every refusal is a *refusal the client will see.
func (s *Server) admit(ctx context.Context, c *client) (*admission, error) {
	identity, targetName := c.st.params["user"], c.st.params["database"]
	if err := checkStartup(c.st, identity, targetName); err != nil {
		return nil, err
	}
	if err := s.negotiateVersion(c); err != nil {
		return nil, err
	}
	if !c.tls && !s.AllowPlaintext {
		return nil, refuse(codeInvalidAuthorization,
			"TLS required: connect with sslmode=require (the password is a bearer token and is only accepted encrypted)")
	}
	token, err := c.readPassword()
	if err != nil {
		return nil, err
	}
	if s.Gate == nil {
		return nil, refuse(codeCannotConnect, "no registry is configured; ask an operator")
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
		return nil, refuse(codeInvalidAuthorization, "access denied (%s): %s is not a postgres target of this bastion; ask an operator for the target's name",
			iga.ReasonUnknownTarget, targetName)
	}
	req.Credential = nil // the token is not kept past admission
	return &admission{req: req, decision: d, target: t}, nil
}

// checkStartup refuses logins that name no identity or target, or ask for
// replication.
func checkStartup(st *startup, identity, target string) error {
	switch {
	case identity == "":
		return refuse(codeInvalidAuthorization, "no user: connect with user=IDENTITY dbname=TARGET and a token as password")
	case target == "":
		return refuse(codeInvalidAuthorization, "no dbname: connect with user=IDENTITY dbname=TARGET and a token as password")
	case st.params["replication"] != "" && st.params["replication"] != "false" && st.params["replication"] != "0":
		return refuse(codeFeatureNotSupported, "replication connections are not relayed")
	}
	return nil
}

// negotiateVersion answers a minor version other than 3.0 and 3.2, or
// _pq_ options, with NegotiateProtocolVersion, as PostgreSQL does.
func (s *Server) negotiateVersion(c *client) error {
	newest := c.st.minor
	switch {
	case newest == 1:
		newest = 0
	case newest > 2:
		newest = 2
	}
	if newest == c.st.minor && len(c.st.unknownOpts) == 0 {
		return nil
	}
	c.st.minor = newest
	return c.send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: uint32(newest), UnrecognizedOptions: c.st.unknownOpts})
}

// denial turns a registry answer into what the client sees: the one line
// of an *iga.Denied, or a note that the registry could not be asked.
func denial(err error, doing string) error {
	var d *iga.Denied
	if errors.As(err, &d) {
		return &refusal{code: codeInvalidAuthorization, msg: "sallyport: " + d.Error()}
	}
	return &refusal{code: codeCannotConnect, msg: fmt.Sprintf("sallyport: cannot %s now (registry unavailable); try again", doing),
		cause: err}
}

func (s *Server) target(name string) (*Target, bool) {
	if s.Targets == nil {
		return nil, false
	}
	return s.Targets(name)
}
