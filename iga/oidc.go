package iga

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
)

// oidcDiscoveryTimeout bounds fetching an issuer's discovery document on
// first use; a connection waits at most this long for a slow issuer.
const oidcDiscoveryTimeout = 10 * time.Second

// oidcHTTPTimeout bounds every request to an issuer, including the key-set
// refreshes go-oidc runs in the background with no deadline of their own.
const oidcHTTPTimeout = 10 * time.Second

// maxOIDCToken bounds the JWT size read; real ID tokens are 1–2 KB.
const maxOIDCToken = 16 << 10

// oidcProviders caches one discovered provider (its metadata and its
// JWKS key set) per issuer URL. It is shared by every Registry of the
// process: a provider depends only on its issuer, and rediscovering per
// registry would only cost round trips. Failed discoveries are not cached.
var oidcProviders = &oidcProviderCache{byIssuer: map[string]*oidc.Provider{}}

type oidcProviderCache struct {
	mu       sync.Mutex
	byIssuer map[string]*oidc.Provider
}

// get returns the provider of issuer, discovering it on first use.
func (c *oidcProviderCache) get(ctx context.Context, issuer string) (*oidc.Provider, error) {
	c.mu.Lock()
	p, ok := c.byIssuer[issuer]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, oidcDiscoveryTimeout)
	defer cancel()
	client := &http.Client{Timeout: oidcHTTPTimeout}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), issuer)
	if err != nil {
		return nil, fmt.Errorf("discover oidc issuer %s: %w", issuer, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byIssuer[issuer] = p
	return p, nil
}

// checkOIDCToken accepts a workload JWT from a trusted issuer (issuer,
// audience, expiry and signature verified against the issuer's JWKS)
// whose subject is bound to this identity.
func (r *Registry) checkOIDCToken(ctx context.Context, id Identity, raw string) credentialCheck {
	issuer, err := unverifiedIssuer(raw)
	if err != nil {
		return credentialCheck{detail: "token (malformed)", reasons: reasonf(ReasonCredentialInvalid,
			"the token is neither a sallyport token nor a JWT; present a token issued for %s", id.ID)}
	}
	trusted := r.trustedIssuers(issuer)
	if len(trusted) == 0 {
		return credentialCheck{detail: "oidc token (untrusted issuer)", reasons: reasonf(ReasonCredentialInvalid,
			"tokens from issuer %q are not trusted here; use a token from a trusted issuer", clipText(issuer, 100))}
	}
	tok, err := r.verifyOIDC(ctx, trusted, raw)
	if err != nil {
		return oidcFailure(issuer, err)
	}
	check := credentialCheck{detail: "oidc token " + issuer + " " + tok.Subject}
	if !oidcBound(id, issuer, tok.Subject) {
		check.reasons = reasonf(ReasonCredentialInvalid, "the token subject %q from %s is not bound to %s; ask its owner to bind it",
			clipText(tok.Subject, 200), issuer, id.ID)
	}
	return check
}

// trustedIssuers are the configured entries for issuer: one per accepted audience.
func (r *Registry) trustedIssuers(issuer string) []TrustedIssuer {
	var out []TrustedIssuer
	for _, t := range r.Tokens.TrustedIssuers {
		if t.Issuer == issuer {
			out = append(out, t)
		}
	}
	return out
}

// verifyOIDC verifies raw against the issuer's keys for each accepted
// audience in turn and returns the first token that verifies.
func (r *Registry) verifyOIDC(ctx context.Context, trusted []TrustedIssuer, raw string) (*oidc.IDToken, error) {
	p, err := oidcProviders.get(ctx, trusted[0].Issuer)
	if err != nil {
		r.logger().Warn("workload token not verified: issuer unreachable", "issuer", trusted[0].Issuer, "err", err)
		return nil, errOIDCUnreachable
	}
	for _, t := range trusted {
		tok, verr := p.Verifier(&oidc.Config{ClientID: t.Audience, Now: r.now}).Verify(ctx, raw)
		if verr == nil {
			return tok, nil
		}
		err = verr
	}
	return nil, err
}

// errOIDCUnreachable is the failure to fetch an issuer's discovery document.
var errOIDCUnreachable = errors.New("issuer unreachable")

// oidcFailure turns a verification error into the reason the client sees.
func oidcFailure(issuer string, err error) credentialCheck {
	check := credentialCheck{detail: "oidc token " + issuer + " (not verified)"}
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		check.reasons = reasonf(ReasonCredentialExpired, "the token from %s expired at %s; fetch a fresh one",
			issuer, expired.Expiry.UTC().Format(admissionTimeFormat))
	case errors.Is(err, errOIDCUnreachable):
		check.reasons = reasonf(ReasonCredentialInvalid, "the token from %s could not be verified: the issuer is unreachable; try again later", issuer)
	default:
		check.reasons = reasonf(ReasonCredentialInvalid, "the token from %s did not verify (%s); present a token issued for this bastion",
			issuer, clipText(strings.TrimPrefix(err.Error(), "oidc: "), 200))
	}
	return check
}

// oidcBound reports whether the identity binds issuer and subject.
func oidcBound(id Identity, issuer, subject string) bool {
	return slices.ContainsFunc(id.Credentials.OIDC, func(b OIDCBinding) bool {
		return b.Issuer == issuer && b.Subject == subject
	})
}

// unverifiedIssuer reads the iss claim of a JWT without verifying it, only
// to pick the trusted issuer whose keys will verify it.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(raw) > maxOIDCToken || len(parts) != 3 {
		return "", errors.New("not a compact JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("decode JWT payload: %w", err)
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Issuer == "" {
		return "", errors.New("JWT has no issuer")
	}
	return claims.Issuer, nil
}

// clipText shortens caller-supplied text quoted back in a message and
// drops control characters, so the message stays one line.
func clipText(s string, n int) string {
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return -1
		}
		return c
	}, s)
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
