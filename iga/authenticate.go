package iga

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Credential is what a caller presented: exactly one of the fields is set.
type Credential struct {
	// SSHKey is the public key the caller proved it holds.
	SSHKey ssh.PublicKey
	// Token is a workload OIDC JWT or a sallyport-minted token.
	Token string
}

// maxSSHKeyLine bounds an authorized_keys line; the longest real keys
// (RSA 16384) are about 3 KB.
const maxSSHKeyLine = 16 << 10

// ParseSSHKey parses one public key in authorized_keys form
// ("ssh-ed25519 AAAA… comment", as in a .pub file or the registry file).
// Blank lines and comments before the key are skipped.
func ParseSSHKey(line []byte) (ssh.PublicKey, error) {
	if len(line) > maxSSHKeyLine {
		return nil, fmt.Errorf("parse ssh public key: longer than %d bytes", maxSSHKeyLine)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		return nil, fmt.Errorf("parse ssh public key: %w", err)
	}
	return key, nil
}

// Authenticate checks that c is a credential bound to identity and still
// valid: an SSH key among the identity's unexpired keys, a workload OIDC
// token from a trusted issuer bound to it, or a sallyport-minted token
// issued for it. It returns nil, a *Denied (unknown_identity,
// credential_invalid or credential_expired), or an error when the
// registry could not be read.
func (r *Registry) Authenticate(ctx context.Context, identity string, c Credential) error {
	id, err := r.Store.Identity(ctx, identity)
	if errors.Is(err, ErrNotFound) {
		// The credential is checked all the same (against an identity that
		// holds none), so an unknown name does not answer measurably sooner
		// than a known one with a wrong credential: the proxies tell the
		// two apart to nobody, and neither should the clock.
		_ = r.checkCredential(ctx, Identity{ID: identity}, c)
		return deny(identity, unknownIdentity(identity)...)
	}
	if err != nil {
		return fmt.Errorf("authenticate %s: read identity: %w", identity, err)
	}
	if check := r.checkCredential(ctx, id, c); len(check.reasons) > 0 {
		return deny(identity, check.reasons...)
	}
	return nil
}

// credentialCheck is the outcome of rule 6.
type credentialCheck struct {
	// detail names the credential for the audit trail: a key fingerprint,
	// a token id or an OIDC subject, never a secret.
	detail  string
	reasons []Reason
}

// checkCredential is rule 6: the presented credential is bound to the
// identity and unexpired.
func (r *Registry) checkCredential(ctx context.Context, id Identity, c Credential) credentialCheck {
	switch {
	case c.SSHKey != nil && c.Token == "":
		return r.checkSSHKey(id, c.SSHKey)
	case c.Token != "" && c.SSHKey == nil:
		return r.checkToken(ctx, id, c.Token)
	}
	return credentialCheck{detail: "none", reasons: reasonf(ReasonCredentialInvalid,
		"present exactly one credential for %s: an SSH key or a token", id.ID)}
}

// checkSSHKey accepts key when it is one of the identity's own unexpired
// keys. The same key may be bound to several identities; only the keys of
// the identity the login names count.
func (r *Registry) checkSSHKey(id Identity, key ssh.PublicKey) credentialCheck {
	fp := ssh.FingerprintSHA256(key)
	check := credentialCheck{detail: "ssh key " + fp}
	bound, ok := boundSSHKey(id, key, r.now())
	switch {
	case !ok:
		check.reasons = reasonf(ReasonCredentialInvalid,
			"the SSH key %s is not registered for %s; use one of its keys or ask its owner to register this one", fp, id.ID)
	case !bound.Expires.IsZero() && !r.now().Before(bound.Expires):
		check.reasons = reasonf(ReasonCredentialExpired, "the SSH key %s of %s expired on %s; ask its owner to rotate it",
			fp, id.ID, bound.Expires.UTC().Format(admissionDateFormat))
	}
	return check
}

// boundSSHKey finds key among the identity's keys by comparing marshalled
// public keys, preferring an unexpired binding when the key is listed twice.
func boundSSHKey(id Identity, key ssh.PublicKey, now time.Time) (SSHKey, bool) {
	want := string(key.Marshal())
	var found SSHKey
	ok := false
	for _, k := range id.Credentials.SSHKeys {
		pub, err := ParseSSHKey([]byte(k.Key))
		if err != nil || string(pub.Marshal()) != want {
			continue
		}
		if k.Expires.IsZero() || now.Before(k.Expires) {
			return k, true
		}
		found, ok = k, true
	}
	return found, ok
}

// checkToken tells a sallyport-minted token from a workload JWT by its prefix.
func (r *Registry) checkToken(ctx context.Context, id Identity, token string) credentialCheck {
	if strings.HasPrefix(token, mintedTokenPrefix) {
		return r.checkMintedToken(id, token)
	}
	return r.checkOIDCToken(ctx, id, token)
}
