package iga

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// Person tokens are sallyport-minted tokens (see token.go) of kind
// TokenPerson: a script presents one as a bearer token to the console's
// API and acts as that person, with that person's roles. They never admit
// anyone through the bastion, and identity tokens never reach the API.

// IssuePersonToken mints an API token for person, an active person of the
// registry, valid for ttl (at most Tokens.MaxTTL), and records its id,
// never the token, in the audit trail as issued by by.
func (r *Registry) IssuePersonToken(ctx context.Context, person, by string, ttl time.Duration) (string, error) {
	if err := r.checkTokenTTL(ttl); err != nil {
		return "", fmt.Errorf("issue token for person %s: %w", person, err)
	}
	if err := r.checkActivePerson(ctx, person); err != nil {
		return "", fmt.Errorf("issue token for person %s: %w", person, err)
	}
	now := r.now()
	claims := TokenClaims{ID: rand.Text(), Kind: TokenPerson, Person: person, IssuedAt: now, Expires: now.Add(ttl)}
	token, err := signToken(claims, r.Tokens.SigningKey)
	if err != nil {
		return "", fmt.Errorf("issue token for person %s: %w", person, err)
	}
	event := AuditEvent{Time: now, Type: tokenIssueEventType, Actor: by,
		Detail: fmt.Sprintf("person token %s for %s expires %s", claims.ID, person, claims.Expires.Format(time.RFC3339))}
	if err := r.Store.Update(ctx, func(tx Tx) error { return tx.AppendAudit(ctx, event) }); err != nil {
		return "", fmt.Errorf("issue token for person %s: record audit event: %w", person, err)
	}
	return token, nil
}

// AuthenticatePerson returns the e-mail of the person token names if it
// is a person token signed with the registry's key, not yet expired, and
// the person is still active. The error never repeats the token.
func (r *Registry) AuthenticatePerson(ctx context.Context, token string) (email string, err error) {
	if len(r.Tokens.SigningKey) != ed25519.PrivateKeySize {
		return "", errors.New("authenticate person: no token signing key is configured")
	}
	claims, err := ParseToken(token, r.Tokens.SigningKey.Public().(ed25519.PublicKey))
	if err != nil {
		return "", fmt.Errorf("authenticate person: %w", err)
	}
	switch {
	case claims.Kind != TokenPerson:
		return "", fmt.Errorf("authenticate person: token %s is not a person token", claims.ID)
	case !r.now().Before(claims.Expires):
		return "", fmt.Errorf("authenticate person: token %s expired at %s", claims.ID, claims.Expires.Format(time.RFC3339))
	}
	if err := r.checkActivePerson(ctx, claims.Person); err != nil {
		return "", fmt.Errorf("authenticate person: token %s: %w", claims.ID, err)
	}
	return claims.Person, nil
}

// checkActivePerson fails unless person is in the registry and active.
func (r *Registry) checkActivePerson(ctx context.Context, person string) error {
	p, err := r.Store.Person(ctx, person)
	if errors.Is(err, ErrNotFound) {
		return notFoundf("no person %s in the registry; people are keyed by e-mail", person)
	}
	if err != nil {
		return fmt.Errorf("read person: %w", err)
	}
	if p.Status != PersonActive {
		return fmt.Errorf("person %s is %s", person, p.Status)
	}
	return nil
}
