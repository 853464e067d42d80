package iga_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// admSigningKey is a fresh token signing key.
func admSigningKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return key
}

// admFlipAt replaces the character at i of a token with another base64url one.
func admFlipAt(token string, i int) string {
	flipped := byte('A')
	if token[i] == 'A' {
		flipped = 'B'
	}
	return token[:i] + string(flipped) + token[i+1:]
}

func TestMintedToken(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		_, line := admKey(t)
		admSeed(t, s, admPeople, []iga.Identity{admPassing("svc-backup", line), admPassing("svc-deploy", line)}, nil)
		now := admNow
		reg := admRegistry(s, nil)
		reg.Now = func() time.Time { return now }
		reg.Tokens = iga.TokenConfig{SigningKey: admSigningKey(t), MaxTTL: time.Hour}
		token, err := reg.IssueToken(context.Background(), "svc-backup", "admin@example.com", 15*time.Minute)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(token, "spt_"), "got token %q, want the spt_ prefix", token)
		require.NotContains(t, token, " ")
		dot := strings.IndexByte(token, '.')
		otherKey := *reg
		otherKey.Tokens.SigningKey = admSigningKey(t)
		noKey := *reg
		noKey.Tokens.SigningKey = nil

		tests := []struct {
			name     string
			reg      *iga.Registry
			identity string
			token    string
			after    time.Duration
			code     string
			says     string
		}{
			{"fresh", reg, "svc-backup", token, 0, "", ""},
			{"again, minutes later: a token serves many connections", reg, "svc-backup", token, 14 * time.Minute, "", ""},
			{"expired", reg, "svc-backup", token, 15 * time.Minute, iga.ReasonCredentialExpired, "expired at 2026-11-28 10:15 UTC"},
			{"for another identity", reg, "svc-deploy", token, 0, iga.ReasonCredentialInvalid, "issued for another identity, not svc-deploy"},
			{"payload byte flipped", reg, "svc-backup", admFlipAt(token, dot/2), 0, iga.ReasonCredentialInvalid, "not a valid sallyport token"},
			{"signature byte flipped", reg, "svc-backup", admFlipAt(token, dot+(len(token)-dot)/2), 0, iga.ReasonCredentialInvalid, "bad signature"},
			{"signature cut off", reg, "svc-backup", token[:dot], 0, iga.ReasonCredentialInvalid, "no signature"},
			{"signed by another bastion", &otherKey, "svc-backup", token, 0, iga.ReasonCredentialInvalid, "bad signature"},
			{"bastion without signing key", &noKey, "svc-backup", token, 0, iga.ReasonCredentialInvalid, "accepts no sallyport tokens"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				now = admNow.Add(tt.after)
				t.Cleanup(func() { now = admNow })
				err := tt.reg.Authenticate(context.Background(), tt.identity, iga.Credential{Token: tt.token})
				admAssertRefused(t, err, tt.code, tt.says)
				if err != nil {
					assert.NotContains(t, err.Error(), tt.token, "the refusal repeats the token")
				}
			})
		}
		admCheckTokenAudit(t, s, reg, token)
	})
}

// admCheckTokenAudit asserts the audit trail names the token by its id —
// at issue and when it admits a session — and never holds the token.
func admCheckTokenAudit(t *testing.T, s iga.Store, reg *iga.Registry, token string) {
	t.Helper()
	claims, err := iga.ParseToken(token, reg.Tokens.SigningKey.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	assert.Equal(t, "svc-backup", claims.Identity)
	d, err := reg.Decide(context.Background(), iga.Request{Identity: "svc-backup", Target: "web-01", Action: iga.ActionExec,
		Credential: &iga.Credential{Token: token}})
	require.NoError(t, err)
	assert.True(t, d.Allow, "got reasons %v, want allow", d.Reasons)

	events, err := s.Audit(context.Background(), iga.AuditFilter{Identity: "svc-backup"})
	require.NoError(t, err)
	require.Len(t, events, 2, "want the token_issue event and the decision")
	assert.Equal(t, "token_issue", events[0].Type)
	assert.Equal(t, "admin@example.com", events[0].Actor)
	assert.Contains(t, events[0].Detail, claims.ID)
	assert.Contains(t, events[1].Detail, "sallyport token "+claims.ID)
	for _, e := range events {
		assert.NotContains(t, e.Detail, token, "audit event %s holds the token", e.Type)
		assert.NotContains(t, e.Detail, token[strings.IndexByte(token, '.')+1:], "audit event %s holds the token signature", e.Type)
	}
}

func TestIssueTokenRefuses(t *testing.T) {
	s := admSQLite(t)
	_, line := admKey(t)
	admSeed(t, s, admPeople, []iga.Identity{admPassing("svc-backup", line)}, nil)
	key := admSigningKey(t)
	tests := []struct {
		name     string
		tokens   iga.TokenConfig
		identity string
		ttl      time.Duration
		says     string
	}{
		{"ttl over the maximum", iga.TokenConfig{SigningKey: key, MaxTTL: time.Hour}, "svc-backup", 61 * time.Minute, "outside (0, 1h0m0s]"},
		{"ttl over the default maximum of a day", iga.TokenConfig{SigningKey: key}, "svc-backup", 25 * time.Hour, "outside (0, 24h0m0s]"},
		{"zero ttl", iga.TokenConfig{SigningKey: key}, "svc-backup", 0, "outside"},
		{"no signing key", iga.TokenConfig{}, "svc-backup", time.Minute, "no token signing key"},
		{"unknown identity", iga.TokenConfig{SigningKey: key}, "svc-nobody", time.Minute, "svc-nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := admRegistry(s, nil)
			reg.Tokens = tt.tokens
			token, err := reg.IssueToken(context.Background(), tt.identity, "admin@example.com", tt.ttl)
			require.Error(t, err, "got token %q, want a refusal", token)
			assert.Contains(t, err.Error(), tt.says)
			assert.Empty(t, token)
		})
	}
	events, err := s.Audit(context.Background(), iga.AuditFilter{Type: "token_issue"})
	require.NoError(t, err)
	assert.Empty(t, events, "a refused issue left an audit event")
}

// admFuzzToken signs claims JSON the way sallyport does (DESIGN: spt_,
// base64url claims, ed25519 over everything before the dot), so the seed
// is the same in every fuzz worker process.
func admFuzzToken(key ed25519.PrivateKey, claims string) string {
	signed := "spt_" + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return signed + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signed)))
}

func FuzzParseToken(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	minted := admFuzzToken(key, `{"v":1,"jti":"fuzz-seed","sub":"svc-backup","iat":1795860000,"exp":1795863600}`)
	claims, err := iga.ParseToken(minted, key.Public().(ed25519.PublicKey))
	require.NoError(f, err, "the seed token does not parse")
	require.Equal(f, iga.TokenClaims{ID: "fuzz-seed", Identity: "svc-backup",
		IssuedAt: admNow, Expires: admNow.Add(time.Hour)}, claims)
	dot := strings.IndexByte(minted, '.')
	for _, seed := range []string{minted, admFlipAt(minted, dot/2), admFlipAt(minted, len(minted)-2), minted[:dot],
		minted + "=", "spt_", "spt_.", "spt_e30.", "spt_eyJ2IjoxfQ.AAAA", "eyJhbGciOiJub25lIn0.e30."} {
		f.Add(seed)
	}
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := iga.ParseToken(token, pub)
		if err != nil {
			assert.Empty(t, claims.ID)
			return
		}
		// Only the token the key really signed verifies: any other
		// spelling accepted would be a forgery.
		assert.Equal(t, minted, token, "a token the key never signed was accepted")
		assert.Equal(t, "svc-backup", claims.Identity)
	})
}
