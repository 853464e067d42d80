package iga_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
)

// admAssertRefused asserts err is a *Denied carrying exactly code, and
// that its message says what was wrong.
func admAssertRefused(t *testing.T, err error, code, says string) {
	t.Helper()
	if code == "" {
		assert.NoError(t, err)
		return
	}
	var denied *iga.Denied
	require.True(t, errors.As(err, &denied), "got %v, want *iga.Denied with %s", err, code)
	assert.Equal(t, []string{code}, denied.Codes(), "got %v, want [%s]", denied.Codes(), code)
	assert.Contains(t, err.Error(), says)
}

func TestAuthenticateSSHKey(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		own, ownLine := admKey(t)
		old, oldLine := admKey(t)
		stranger, _ := admKey(t)
		id := admPassing("svc-backup", ownLine)
		id.Credentials.SSHKeys = append(id.Credentials.SSHKeys, iga.SSHKey{Key: oldLine, Expires: admNow.AddDate(0, 0, -1)})
		admSeed(t, s, admPeople, []iga.Identity{id}, nil)
		reg := admRegistry(s, nil)
		tests := []struct {
			name     string
			identity string
			cred     iga.Credential
			code     string
			says     string
		}{
			{"own key", "svc-backup", iga.Credential{SSHKey: own}, "", ""},
			{"unregistered key", "svc-backup", iga.Credential{SSHKey: stranger}, iga.ReasonCredentialInvalid, ssh.FingerprintSHA256(stranger)},
			{"expired key", "svc-backup", iga.Credential{SSHKey: old}, iga.ReasonCredentialExpired, "expired on 2026-11-27"},
			{"unknown identity", "svc-nobody", iga.Credential{SSHKey: own}, iga.ReasonUnknownIdentity, "svc-nobody"},
			{"two credentials at once", "svc-backup", iga.Credential{SSHKey: own, Token: "spt_x"}, iga.ReasonCredentialInvalid, "exactly one"},
			{"no credential", "svc-backup", iga.Credential{}, iga.ReasonCredentialInvalid, "exactly one"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				admAssertRefused(t, reg.Authenticate(context.Background(), tt.identity, tt.cred), tt.code, tt.says)
			})
		}
	})
}

// admIssuer is a test OIDC issuer: discovery and JWKS over loopback HTTP,
// signing real ES256 JWTs.
type admIssuer struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func admNewIssuer(t *testing.T) *admIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	iss := &admIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.srv.URL, "jwks_uri": iss.srv.URL + "/jwks",
			"authorization_endpoint": iss.srv.URL + "/authorize", "token_endpoint": iss.srv.URL + "/token",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}}})
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

// sign returns a JWT with the claims, signed by the issuer's key.
func (i *admIssuer) sign(t *testing.T, c jwt.Claims) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: i.key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	raw, err := jwt.Signed(signer).Claims(c).Serialize()
	require.NoError(t, err)
	return raw
}

// admFlipSignature changes one character in the middle of a JWT's signature.
func admFlipSignature(raw string) string {
	dot := strings.LastIndexByte(raw, '.')
	i := dot + (len(raw)-dot)/2
	flipped := byte('A')
	if raw[i] == 'A' {
		flipped = 'B'
	}
	return raw[:i] + string(flipped) + raw[i+1:]
}

func TestAuthenticateOIDC(t *testing.T) {
	trusted, untrusted, gone := admNewIssuer(t), admNewIssuer(t), admNewIssuer(t)
	gone.srv.Close() // trusted, but down: its tokens cannot be verified
	const subject = "repo:acme/backup:ref:refs/heads/main"
	claims := func(iss *admIssuer, sub, aud string, exp time.Time) jwt.Claims {
		return jwt.Claims{Issuer: iss.srv.URL, Subject: sub, Audience: jwt.Audience{aud},
			IssuedAt: jwt.NewNumericDate(admNow.Add(-time.Minute)), Expiry: jwt.NewNumericDate(exp)}
	}
	valid := admNow.Add(5 * time.Minute)
	forged := claims(trusted, subject, "sallyport", valid) // trusted issuer's claims, someone else's key
	tests := []struct {
		name  string
		token func(t *testing.T) string
		code  string
		says  string
	}{
		{"bound subject", func(t *testing.T) string { return trusted.sign(t, claims(trusted, subject, "sallyport", valid)) }, "", ""},
		{"wrong audience", func(t *testing.T) string { return trusted.sign(t, claims(trusted, subject, "other-app", valid)) },
			iga.ReasonCredentialInvalid, "did not verify"},
		{"untrusted issuer", func(t *testing.T) string { return untrusted.sign(t, claims(untrusted, subject, "sallyport", valid)) },
			iga.ReasonCredentialInvalid, "are not trusted here"},
		{"expired", func(t *testing.T) string {
			return trusted.sign(t, claims(trusted, subject, "sallyport", admNow.Add(-time.Minute)))
		},
			iga.ReasonCredentialExpired, "expired at 2026-11-28 09:59 UTC"},
		{"unbound subject", func(t *testing.T) string {
			return trusted.sign(t, claims(trusted, "repo:acme/evil:ref:refs/heads/main", "sallyport", valid))
		}, iga.ReasonCredentialInvalid, "is not bound to svc-backup"},
		{"subject bound to another identity", func(t *testing.T) string {
			return trusted.sign(t, claims(trusted, "repo:acme/deploy:ref:refs/heads/main", "sallyport", valid))
		}, iga.ReasonCredentialInvalid, "is not bound to svc-backup"},
		{"bad signature", func(t *testing.T) string {
			return admFlipSignature(trusted.sign(t, claims(trusted, subject, "sallyport", valid)))
		}, iga.ReasonCredentialInvalid, "did not verify"},
		{"signed with another issuer's key", func(t *testing.T) string { return untrusted.sign(t, forged) },
			iga.ReasonCredentialInvalid, "did not verify"},
		{"issuer unreachable", func(t *testing.T) string { return gone.sign(t, claims(gone, subject, "sallyport", valid)) },
			iga.ReasonCredentialInvalid, "issuer is unreachable"},
		{"not a JWT", func(*testing.T) string { return "hunter2" }, iga.ReasonCredentialInvalid, "neither a sallyport token nor a JWT"},
	}
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		_, line := admKey(t)
		backup, deploy := admPassing("svc-backup", line), admPassing("svc-deploy", line)
		backup.Credentials.OIDC = []iga.OIDCBinding{{Issuer: trusted.srv.URL, Subject: subject}, {Issuer: gone.srv.URL, Subject: subject}}
		deploy.Credentials.OIDC = []iga.OIDCBinding{{Issuer: trusted.srv.URL, Subject: "repo:acme/deploy:ref:refs/heads/main"}}
		admSeed(t, s, admPeople, []iga.Identity{backup, deploy}, nil)
		reg := admRegistry(s, nil)
		reg.Tokens.TrustedIssuers = []iga.TrustedIssuer{
			{Issuer: trusted.srv.URL, Audience: "sallyport"}, {Issuer: gone.srv.URL, Audience: "sallyport"}}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				token := tt.token(t)
				err := reg.Authenticate(context.Background(), "svc-backup", iga.Credential{Token: token})
				admAssertRefused(t, err, tt.code, tt.says)
				if err != nil {
					assert.NotContains(t, err.Error(), token, "the refusal repeats the token")
				}
			})
		}
	})
}

func TestDecideWithOIDCTokenAuditsSubjectNotToken(t *testing.T) {
	iss := admNewIssuer(t)
	s := admSQLite(t)
	_, line := admKey(t)
	id := admPassing("svc-backup", line)
	id.Credentials.OIDC = []iga.OIDCBinding{{Issuer: iss.srv.URL, Subject: "repo:acme/backup"}}
	admSeed(t, s, admPeople, []iga.Identity{id}, nil)
	reg := admRegistry(s, nil)
	reg.Tokens.TrustedIssuers = []iga.TrustedIssuer{{Issuer: iss.srv.URL, Audience: "sallyport"}}
	token := iss.sign(t, jwt.Claims{Issuer: iss.srv.URL, Subject: "repo:acme/backup", Audience: jwt.Audience{"sallyport"},
		Expiry: jwt.NewNumericDate(admNow.Add(time.Minute))})

	d, err := reg.Decide(context.Background(), iga.Request{Identity: "svc-backup", Target: "web-01", Action: iga.ActionExec,
		Credential: &iga.Credential{Token: token}})
	require.NoError(t, err)
	assert.True(t, d.Allow, "got reasons %v, want allow", d.Reasons)
	events, err := s.Audit(context.Background(), iga.AuditFilter{Identity: "svc-backup"})
	require.NoError(t, err)
	require.Len(t, events, 1)
	assert.Contains(t, events[0].Detail, "repo:acme/backup")
	assert.NotContains(t, events[0].Detail, token, "the audit trail holds the token itself")
}

func FuzzParseSSHKey(f *testing.F) {
	f.Add([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMt393/aiErBUcj1aWCZ3mHQs3FckxbvEm9QPOPx8YDZ backup@ci"))
	f.Add([]byte(`from="10.0.0.0/8",no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMt393/aiErBUcj1aWCZ3mHQs3FckxbvEm9QPOPx8YDZ`))
	f.Add([]byte("# a comment\n\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMt393/aiErBUcj1aWCZ3mHQs3FckxbvEm9QPOPx8YDZ\n"))
	f.Add([]byte("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg="))
	f.Add([]byte("ssh-ed25519 AAAA"))
	f.Add([]byte("ssh-rsa"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, line []byte) {
		key, err := iga.ParseSSHKey(line)
		if err != nil {
			return
		}
		again, err := iga.ParseSSHKey(ssh.MarshalAuthorizedKey(key))
		require.NoError(t, err, "a parsed key does not parse back from its own authorized_keys line")
		assert.True(t, bytes.Equal(key.Marshal(), again.Marshal()), "round trip changed the key")
	})
}

// Many connections arriving at once from one workload share the issuer's
// discovery and key set; every one of them is admitted.
func TestAuthenticateOIDCConcurrent(t *testing.T) {
	iss := admNewIssuer(t)
	s := admSQLite(t)
	_, line := admKey(t)
	id := admPassing("svc-backup", line)
	id.Credentials.OIDC = []iga.OIDCBinding{{Issuer: iss.srv.URL, Subject: "repo:acme/backup"}}
	admSeed(t, s, admPeople, []iga.Identity{id}, nil)
	reg := admRegistry(s, nil)
	reg.Tokens.TrustedIssuers = []iga.TrustedIssuer{{Issuer: iss.srv.URL, Audience: "sallyport"}}
	token := iss.sign(t, jwt.Claims{Issuer: iss.srv.URL, Subject: "repo:acme/backup", Audience: jwt.Audience{"sallyport"},
		Expiry: jwt.NewNumericDate(admNow.Add(time.Minute))})
	const connections = 16
	errs := make(chan error, connections)
	for range connections {
		go func() { errs <- reg.Authenticate(context.Background(), "svc-backup", iga.Credential{Token: token}) }()
	}
	for range connections {
		assert.NoError(t, <-errs)
	}
}
