package iga

import (
	"crypto/ed25519"
	"log/slog"
	"time"
)

// Registry is the governance side of sallyport: admission decisions,
// credential checks and every registry change go through it. The proxies
// see it only through the small interfaces they declare themselves.
type Registry struct {
	// Store persists the registry. Required.
	Store Store
	// Targets returns what the config says about a target. Nil: every
	// target is unknown, so every decision is denied unknown_target.
	Targets func(name string) (Target, bool)
	// Policy bounds certifications and break-glass grants.
	Policy Policy
	// Tokens configures workload OIDC tokens and sallyport-minted tokens.
	Tokens TokenConfig
	// Now returns the current time. Nil: time.Now.
	Now func() time.Time
	// Logger receives registry events. Nil: slog.Default().
	Logger *slog.Logger
	// OnDecision is called after every decision (metrics). Nil: nothing.
	OnDecision func(Decision)
	// OnRefusal is called for every refusal RecordRefusal is given, also
	// those the rate limit keeps out of the audit trail (metrics). Nil:
	// nothing.
	OnRefusal func(Refusal)

	refusals *refusalLimiter // made on first use, under refusalInit
}

// Policy holds the limits of governance decisions.
type Policy struct {
	// MaxCertification is the longest certification accepted. Zero: 90 days.
	MaxCertification time.Duration
	// MaxBreakglass is the longest break-glass grant. Zero: 1 hour.
	MaxBreakglass time.Duration
}

// TrustedIssuer is an OIDC issuer whose workload tokens are accepted.
type TrustedIssuer struct {
	Issuer   string
	Audience string
}

// TokenConfig configures the tokens Authenticate accepts.
type TokenConfig struct {
	// TrustedIssuers are the OIDC issuers accepted for workload JWTs. Empty:
	// no JWT is accepted.
	TrustedIssuers []TrustedIssuer
	// SigningKey signs and verifies sallyport-minted tokens. Nil: minted
	// tokens can be neither issued nor accepted.
	SigningKey ed25519.PrivateKey
	// MaxTTL is the longest TTL IssueToken accepts. Zero: 24 hours.
	MaxTTL time.Duration
}

const (
	defaultMaxCertification = 90 * 24 * time.Hour
	defaultMaxBreakglass    = time.Hour
	defaultMaxTokenTTL      = 24 * time.Hour
)

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Registry) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Registry) maxCertification() time.Duration {
	if r.Policy.MaxCertification > 0 {
		return r.Policy.MaxCertification
	}
	return defaultMaxCertification
}

func (r *Registry) maxBreakglass() time.Duration {
	if r.Policy.MaxBreakglass > 0 {
		return r.Policy.MaxBreakglass
	}
	return defaultMaxBreakglass
}

func (r *Registry) target(name string) (Target, bool) {
	if r.Targets == nil {
		return Target{}, false
	}
	return r.Targets(name)
}
