package iga

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A sallyport-minted token is a bearer credential bound to one identity:
//
//	spt_<base64url(JSON claims)>.<base64url(ed25519 signature)>
//
// The signature covers everything before the dot, prefix included. The
// registry never stores a token, only its id in the audit trail; a token
// is valid for any number of connections until it expires.
const mintedTokenPrefix = "spt_"

// maxMintedToken bounds what ParseToken reads; a real token is ~250 bytes.
const maxMintedToken = 4 << 10

// mintedTokenVersion is the claims layout version; others are refused.
const mintedTokenVersion = 1

// tokenB64 is strict so that a token has exactly one spelling: a flipped
// padding bit is tampering, not the same token.
var tokenB64 = base64.RawURLEncoding.Strict()

// TokenKind is what a sallyport-minted token authenticates. A token of one
// kind is never accepted as the other.
type TokenKind string

// Token kinds.
const (
	// TokenIdentity tokens authenticate one identity at the bastion. It is
	// the zero value and is left out of the claims, so tokens minted
	// before kinds existed keep working.
	TokenIdentity TokenKind = ""
	// TokenPerson tokens authenticate one person at the console's API.
	TokenPerson TokenKind = "person"
)

// TokenClaims is what a sallyport-minted token says.
type TokenClaims struct {
	ID       string    // random id, the name of the token in the audit trail
	Kind     TokenKind // TokenIdentity or TokenPerson
	Identity string    // the one identity an identity token authenticates
	Person   string    // the e-mail of the person a person token authenticates
	IssuedAt time.Time // when it was minted
	Expires  time.Time // when it stops being accepted
}

// tokenWire is the JSON form of TokenClaims inside a token. Subject is
// the identity or the person, as Kind says.
type tokenWire struct {
	Version  int    `json:"v"`
	ID       string `json:"jti"`
	Kind     string `json:"kind,omitempty"`
	Subject  string `json:"sub"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
}

// IssueToken mints a token for identity, valid for ttl (at most
// Tokens.MaxTTL), and records its id, never the token, in the audit trail
// as issued by by.
func (r *Registry) IssueToken(ctx context.Context, identity, by string, ttl time.Duration) (string, error) {
	if err := r.checkTokenTTL(ttl); err != nil {
		return "", fmt.Errorf("issue token for %s: %w", identity, err)
	}
	if _, err := r.Store.Identity(ctx, identity); err != nil {
		return "", fmt.Errorf("issue token for %s: read identity: %w", identity, err)
	}
	now := r.now()
	claims := TokenClaims{ID: rand.Text(), Identity: identity, IssuedAt: now, Expires: now.Add(ttl)}
	token, err := signToken(claims, r.Tokens.SigningKey)
	if err != nil {
		return "", fmt.Errorf("issue token for %s: %w", identity, err)
	}
	event := AuditEvent{Time: now, Type: tokenIssueEventType, Actor: by, Identity: identity,
		Detail: fmt.Sprintf("token %s expires %s", claims.ID, claims.Expires.Format(time.RFC3339))}
	if err := r.Store.Update(ctx, func(tx Tx) error { return tx.AppendAudit(ctx, event) }); err != nil {
		return "", fmt.Errorf("issue token for %s: record audit event: %w", identity, err)
	}
	return token, nil
}

func (r *Registry) checkTokenTTL(ttl time.Duration) error {
	if len(r.Tokens.SigningKey) != ed25519.PrivateKeySize {
		return errors.New("no token signing key is configured")
	}
	maxTTL := r.Tokens.MaxTTL
	if maxTTL <= 0 {
		maxTTL = defaultMaxTokenTTL
	}
	if ttl <= 0 || ttl > maxTTL {
		return fmt.Errorf("ttl %s is outside (0, %s]", ttl, maxTTL)
	}
	return nil
}

// signToken encodes and signs claims with key.
func signToken(c TokenClaims, key ed25519.PrivateKey) (string, error) {
	subject := c.Identity
	if c.Kind == TokenPerson {
		subject = c.Person
	}
	payload, err := json.Marshal(tokenWire{Version: mintedTokenVersion, ID: c.ID, Kind: string(c.Kind), Subject: subject,
		IssuedAt: c.IssuedAt.Unix(), Expires: c.Expires.Unix()})
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	signed := mintedTokenPrefix + tokenB64.EncodeToString(payload)
	return signed + "." + tokenB64.EncodeToString(ed25519.Sign(key, []byte(signed))), nil
}

// ParseToken checks a sallyport-minted token's form and signature against
// pub and returns its claims. It does not check expiry or binding: the
// caller compares Expires and Identity with its own clock and login.
func ParseToken(token string, pub ed25519.PublicKey) (TokenClaims, error) {
	if len(pub) != ed25519.PublicKeySize {
		return TokenClaims{}, errors.New("parse token: no verification key")
	}
	if len(token) > maxMintedToken || !strings.HasPrefix(token, mintedTokenPrefix) {
		return TokenClaims{}, errors.New("parse token: not a sallyport token")
	}
	signed, sigText, ok := strings.Cut(token, ".")
	if !ok {
		return TokenClaims{}, errors.New("parse token: no signature")
	}
	sig, err := tokenB64.DecodeString(sigText)
	if err != nil || !ed25519.Verify(pub, []byte(signed), sig) {
		return TokenClaims{}, errors.New("parse token: bad signature")
	}
	return decodeTokenClaims(strings.TrimPrefix(signed, mintedTokenPrefix))
}

// decodeTokenClaims decodes the signed part of a token.
func decodeTokenClaims(payloadText string) (TokenClaims, error) {
	payload, err := tokenB64.DecodeString(payloadText)
	if err != nil {
		return TokenClaims{}, errors.New("parse token: malformed claims")
	}
	var w tokenWire
	if err := json.Unmarshal(payload, &w); err != nil {
		return TokenClaims{}, errors.New("parse token: malformed claims")
	}
	if w.Version != mintedTokenVersion || w.ID == "" || w.Subject == "" {
		return TokenClaims{}, fmt.Errorf("parse token: unsupported claims (version %d)", w.Version)
	}
	c := TokenClaims{ID: w.ID, Kind: TokenKind(w.Kind),
		IssuedAt: time.Unix(w.IssuedAt, 0).UTC(), Expires: time.Unix(w.Expires, 0).UTC()}
	switch c.Kind {
	case TokenIdentity:
		c.Identity = w.Subject
	case TokenPerson:
		c.Person = w.Subject
	default:
		return TokenClaims{}, fmt.Errorf("parse token: unsupported claims (kind %q)", w.Kind)
	}
	return c, nil
}

// checkMintedToken accepts a token signed with the registry's key, issued
// for this identity after its latest revocation and not yet expired. A
// revocation ends every token minted before it for good: re-certifying the
// identity later does not bring them back. A token minted in the same
// second as the revocation counts as minted before it (tokens carry whole
// seconds).
func (r *Registry) checkMintedToken(id Identity, token string) credentialCheck {
	if len(r.Tokens.SigningKey) != ed25519.PrivateKeySize {
		return credentialCheck{detail: "sallyport token", reasons: reasonf(ReasonCredentialInvalid,
			"this bastion accepts no sallyport tokens (no signing key configured); use an SSH key or a workload token")}
	}
	claims, err := ParseToken(token, r.Tokens.SigningKey.Public().(ed25519.PublicKey))
	if err != nil {
		return credentialCheck{detail: "sallyport token (invalid)", reasons: reasonf(ReasonCredentialInvalid,
			"the token is not a valid sallyport token (%s); ask an administrator for a new one", strings.TrimPrefix(err.Error(), "parse token: "))}
	}
	check := credentialCheck{detail: "sallyport token " + claims.ID}
	switch {
	case claims.Kind != TokenIdentity:
		check.reasons = reasonf(ReasonCredentialInvalid,
			"token %s is a person's API token, not a bastion token; use a token issued for %s", claims.ID, id.ID)
	case claims.Identity != id.ID:
		check.reasons = reasonf(ReasonCredentialInvalid,
			"token %s was issued for another identity, not %s; use a token issued for %s", claims.ID, id.ID, id.ID)
	case !id.RevokedAt.IsZero() && !claims.IssuedAt.After(id.RevokedAt):
		when := "before"
		if claims.IssuedAt.Equal(id.RevokedAt) {
			when = "in the same second as"
		}
		check.reasons = reasonf(ReasonCredentialInvalid,
			"token %s was issued at %s, %s %s was revoked at %s; a revocation ends the tokens issued before it, even after a re-certification; ask an administrator for a new one",
			claims.ID, formatTime(claims.IssuedAt), when, id.ID, formatTime(id.RevokedAt))
	case !r.now().Before(claims.Expires):
		check.reasons = reasonf(ReasonCredentialExpired, "token %s for %s expired at %s; ask an administrator for a new one",
			claims.ID, id.ID, claims.Expires.Format(admissionTimeFormat))
	}
	return check
}
