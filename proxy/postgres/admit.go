package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/proxy"
)

// credentialRefused is what a client hears when the registry does not
// accept its token, whatever the cause (unknown identity, wrong, expired or
// another identity's token): before a credential is proven, the bastion
// says nothing that tells a registered name from an unknown one. The
// detailed reasons go to the audit trail and the log.
const credentialRefused = "sallyport: access denied (" + iga.ReasonCredentialInvalid +
	"): the token was not accepted for this user; check user=IDENTITY and that the token is current"

// askedToken is what a failed login asked for, in its audit event.
const askedToken = "password (token)"

// admission is an admitted login: who, where, and what the registry said.
type admission struct {
	req      iga.Request
	decision iga.Decision
	target   *Target
}

// admit checks the startup parameters, takes the token over TLS, and asks
// the registry. Every refusal is a *refusal the client will see; a failed
// login's carries the audit event that records it.
func (s *Server) admit(ctx context.Context, c *client) (*admission, error) {
	identity, targetName := c.st.params["user"], c.st.params["database"]
	if err := checkStartup(c.st, identity, targetName); err != nil {
		return nil, c.failedLogin(err)
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
		return nil, c.credentialDenial(err)
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
		return nil, refuse(codeInvalidAuthorization, "access denied (%s): %s is not a postgres target of this bastion; ask an operator for the target's name",
			iga.ReasonUnknownTarget, targetName)
	}
	req.Credential = nil // the token is not kept past admission
	return &admission{req: req, decision: d, target: t}, nil
}

// startupRefusal is a startup the bastion refuses before any credential:
// what the client hears, and the reason the audit trail gets.
type startupRefusal struct {
	*refusal
	reason iga.Reason
}

// checkStartup refuses logins that name no identity or target, name them
// in a way no registry entry can match, or ask for replication.
func checkStartup(st *startup, identity, target string) *startupRefusal {
	switch {
	case identity == "":
		return &startupRefusal{refuse(codeInvalidAuthorization, "no user: connect with user=IDENTITY dbname=TARGET and a token as password"),
			iga.Reason{Code: iga.ReasonUnknownIdentity, Message: "the startup message names no user"}}
	case !proxy.PlausibleName(identity):
		return &startupRefusal{refuse(codeInvalidAuthorization, "invalid user: an identity name is at most %d printable characters; connect with user=IDENTITY dbname=TARGET and a token as password", proxy.MaxLoginName),
			iga.Reason{Code: iga.ReasonUnknownIdentity, Message: "the user name is too long or not printable text"}}
	case target == "":
		return &startupRefusal{refuse(codeInvalidAuthorization, "no dbname: connect with user=IDENTITY dbname=TARGET and a token as password"),
			iga.Reason{Code: iga.ReasonUnknownTarget, Message: "the startup message names no database"}}
	case !proxy.PlausibleName(target):
		return &startupRefusal{refuse(codeInvalidAuthorization, "invalid dbname: a target name is at most %d printable characters; connect with user=IDENTITY dbname=TARGET and a token as password", proxy.MaxLoginName),
			iga.Reason{Code: iga.ReasonUnknownTarget, Message: "the database name is too long or not printable text"}}
	case st.params["replication"] != "" && st.params["replication"] != "false" && st.params["replication"] != "0":
		return &startupRefusal{refuse(codeFeatureNotSupported, "replication connections are not relayed"),
			iga.Reason{Code: iga.ReasonNotOffered, Message: "replication connections are not relayed"}}
	}
	if sw := otherSwitch(st.params["options"]); sw != "" {
		return &startupRefusal{refuse(codeFeatureNotSupported, "the server switch %s in options is not relayed: options may only set parameters (-c name=value)", strconv.Quote(sw)),
			iga.Reason{Code: iga.ReasonNotOffered, Message: "options holds a server switch other than -c: " + strconv.QuoteToASCII(sw)}}
	}
	return nil
}

// otherSwitch returns the first switch in a startup options string (the
// backend's command line, as PGOPTIONS sets it) that does not set a
// parameter: not "-c name=value", "-cname=value" or "--name=value". The
// others (-W post_auth_delay, -P, -f, -S, …) are legacy spellings the
// bastion has no use for; PostgreSQL would check them as it checks SET,
// but options is kept to the one form whose meaning is plain.
func otherSwitch(options string) string {
	words := optionWords(options)
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-c" && i+1 < len(words) && strings.Contains(words[i+1], "="):
			i++
		case strings.HasPrefix(w, "-c") && len(w) > 2 && strings.Contains(w, "="),
			strings.HasPrefix(w, "--") && strings.Contains(w, "="):
		default:
			return w
		}
	}
	return ""
}

// optionWords splits options as the backend does: at whitespace not
// escaped by a backslash, which escapes the next character.
func optionWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord, escaped := false, false
	for _, r := range s {
		switch {
		case escaped:
			w.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped, inWord = true, true
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// failedLogin is r, refused before a credential was read, with its audit
// event.
func (c *client) failedLogin(r *startupRefusal) *refusal {
	r.audit = c.loginRefusal([]iga.Reason{r.reason})
	return r.refusal
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
	return &refusal{code: codeInvalidAuthorization, msg: credentialRefused, audit: f, cause: d}
}

// loginRefusal is the audit event of a failed login from c.
func (c *client) loginRefusal(reasons []iga.Reason) *iga.Refusal {
	return &iga.Refusal{Login: true, Protocol: "postgres", Identity: proxy.AuditName(c.st.params["user"]),
		Target: proxy.AuditName(c.st.params["database"]), Source: c.source(), Reasons: reasons}
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
