package iga_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// admTokenRegistry is a registry on s seeded with admPeople and
// svc-backup, a token signing key and a clock the caller moves.
func admTokenRegistry(t *testing.T, s iga.Store, now *time.Time) *iga.Registry {
	t.Helper()
	_, line := admKey(t)
	admSeed(t, s, admPeople, []iga.Identity{admPassing("svc-backup", line)}, nil)
	reg := admRegistry(s, nil)
	reg.Now = func() time.Time { return *now }
	reg.Tokens = iga.TokenConfig{SigningKey: admSigningKey(t), MaxTTL: time.Hour}
	return reg
}

func TestPersonToken(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		ctx := context.Background()
		now := admNow
		reg := admTokenRegistry(t, s, &now)
		token, err := reg.IssuePersonToken(ctx, "alice@example.com", "admin@example.com", 15*time.Minute)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(token, "spt_"), "got token %q, want the spt_ prefix", token)
		identityToken, err := reg.IssueToken(ctx, "svc-backup", "admin@example.com", 15*time.Minute)
		require.NoError(t, err)
		dot := strings.IndexByte(token, '.')
		otherKey := *reg
		otherKey.Tokens.SigningKey = admSigningKey(t)
		noKey := *reg
		noKey.Tokens.SigningKey = nil

		tests := []struct {
			name  string
			reg   *iga.Registry
			token string
			after time.Duration
			says  string // "": alice is authenticated
		}{
			{"fresh", reg, token, 0, ""},
			{"again, minutes later", reg, token, 14 * time.Minute, ""},
			{"expired", reg, token, 15 * time.Minute, "expired at 2026-11-28T10:15:00Z"},
			{"an identity's token", reg, identityToken, 0, "is not a person token"},
			{"payload byte flipped", reg, admFlipAt(token, dot/2), 0, "parse token"},
			{"signature byte flipped", reg, admFlipAt(token, dot+(len(token)-dot)/2), 0, "bad signature"},
			{"signature cut off", reg, token[:dot], 0, "no signature"},
			{"empty", reg, "", 0, "not a sallyport token"},
			{"signed by another bastion", &otherKey, token, 0, "bad signature"},
			{"bastion without signing key", &noKey, token, 0, "no token signing key"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				now = admNow.Add(tt.after)
				t.Cleanup(func() { now = admNow })
				email, err := tt.reg.AuthenticatePerson(ctx, tt.token)
				if tt.says == "" {
					require.NoError(t, err)
					assert.Equal(t, "alice@example.com", email)
					return
				}
				require.Error(t, err, "got %q, want a refusal", email)
				assert.Empty(t, email)
				assert.Contains(t, err.Error(), tt.says)
				if tt.token != "" {
					assert.NotContains(t, err.Error(), tt.token, "the refusal repeats the token")
				}
			})
		}
		admCheckPersonTokenAudit(t, s, reg, token)

		t.Run("offboarded after issue", func(t *testing.T) {
			_, err := reg.OffboardPerson(ctx, "alice@example.com", "admin@example.com", nil)
			require.NoError(t, err)
			email, err := reg.AuthenticatePerson(ctx, token)
			require.Error(t, err, "got %q, want a refusal", email)
			assert.Contains(t, err.Error(), "alice@example.com is inactive")
		})
	})
}

// admCheckPersonTokenAudit asserts the token_issue event names the person
// and the token's id, and never holds the token.
func admCheckPersonTokenAudit(t *testing.T, s iga.Store, reg *iga.Registry, token string) {
	t.Helper()
	claims, err := iga.ParseToken(token, reg.Tokens.SigningKey.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	assert.Equal(t, iga.TokenPerson, claims.Kind)
	assert.Equal(t, "alice@example.com", claims.Person)
	assert.Empty(t, claims.Identity, "a person token names no identity")
	events, err := s.Audit(context.Background(), iga.AuditFilter{Type: "token_issue"})
	require.NoError(t, err)
	require.Len(t, events, 2, "want the person token's and the identity token's token_issue events")
	e := events[0]
	assert.Equal(t, "admin@example.com", e.Actor)
	assert.Empty(t, e.Identity)
	assert.Contains(t, e.Detail, claims.ID)
	assert.Contains(t, e.Detail, "alice@example.com")
	for _, e := range events {
		assert.NotContains(t, e.Detail, token[strings.IndexByte(token, '.')+1:], "audit event holds the token signature")
	}
}

// TestPersonTokenAdmitsNobody: a person token is refused at the bastion
// even when its subject happens to be an identity's id.
func TestPersonTokenAdmitsNobody(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		now := admNow
		reg := admTokenRegistry(t, s, &now)
		// A person whose id is an identity's: the token's subject matches
		// svc-backup, only its kind tells them apart.
		admSeed(t, s, []iga.Person{{ID: "svc-backup", Name: "Confusing", Status: iga.PersonActive}}, nil, nil)
		for _, person := range []string{"alice@example.com", "svc-backup"} {
			t.Run(person, func(t *testing.T) {
				token, err := reg.IssuePersonToken(context.Background(), person, "admin@example.com", 15*time.Minute)
				require.NoError(t, err)
				err = reg.Authenticate(context.Background(), "svc-backup", iga.Credential{Token: token})
				admAssertRefused(t, err, iga.ReasonCredentialInvalid, "person's API token, not a bastion token")
				d, err := reg.Decide(context.Background(), iga.Request{Identity: "svc-backup", Target: "web-01",
					Action: iga.ActionExec, Credential: &iga.Credential{Token: token}})
				require.NoError(t, err)
				assert.False(t, d.Allow, "a person token admitted svc-backup")
				assert.Contains(t, admCodes(d.Reasons), iga.ReasonCredentialInvalid)
			})
		}
	})
}

func TestIssuePersonTokenRefuses(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		now := admNow
		reg := admTokenRegistry(t, s, &now)
		key := reg.Tokens.SigningKey
		tests := []struct {
			name   string
			tokens iga.TokenConfig
			person string
			ttl    time.Duration
			says   string
		}{
			{"offboarded person", iga.TokenConfig{SigningKey: key}, "carol@example.com", time.Minute, "carol@example.com is inactive"},
			{"unknown person", iga.TokenConfig{SigningKey: key}, "mallory@example.com", time.Minute, "no person mallory@example.com"},
			{"an identity, not a person", iga.TokenConfig{SigningKey: key}, "svc-backup", time.Minute, "no person svc-backup"},
			{"ttl over the maximum", iga.TokenConfig{SigningKey: key, MaxTTL: time.Hour}, "alice@example.com", 61 * time.Minute, "outside (0, 1h0m0s]"},
			{"zero ttl", iga.TokenConfig{SigningKey: key}, "alice@example.com", 0, "outside"},
			{"no signing key", iga.TokenConfig{}, "alice@example.com", time.Minute, "no token signing key"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := *reg
				r.Tokens = tt.tokens
				token, err := r.IssuePersonToken(context.Background(), tt.person, "admin@example.com", tt.ttl)
				require.Error(t, err, "got token %q, want a refusal", token)
				assert.Contains(t, err.Error(), tt.says)
				assert.Empty(t, token)
			})
		}
		events, err := s.Audit(context.Background(), iga.AuditFilter{Type: "token_issue"})
		require.NoError(t, err)
		assert.Empty(t, events, "a refused issue left an audit event")
	})
}
