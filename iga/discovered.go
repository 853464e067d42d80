package iga

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// This file is what the registry makes of discovery (package discover):
// accounts found on the targets, kept with when they were first and last
// seen, turned into hygiene findings and, on request, into proposed
// identities that a campaign puts in front of someone to own or delete.

// Finding kinds of discovered accounts.
const (
	FindingUnmanagedAccount = "unmanaged_account"
	FindingStandingPassword = "standing_password"
	FindingKeyOnTarget      = "key_installed_on_target"
)

// Whether a discovered account has a password.
const (
	PasswordSet     = "set"
	PasswordNone    = "none"
	PasswordUnknown = "unknown" // the catalogue that says was not readable
)

// DiscoveredAccount is one account found on a target: a PostgreSQL login
// role, a MySQL account (user@host), or a Unix account with a login shell.
type DiscoveredAccount struct {
	Target string `json:"target"`
	Kind   string `json:"kind"` // the target's kind: ssh, postgres, mysql
	// Account names it on the target: role, 'user@host', Unix login.
	Account string `json:"account"`
	// Login is what a session logs in as: role, user, Unix login.
	Login string `json:"login"`
	// Password is PasswordSet, PasswordNone or PasswordUnknown; empty for
	// SSH accounts, whose passwords are not read.
	Password string `json:"password,omitempty"`
	// Attributes are the other facts read, one short phrase each:
	// superuser, createrole, valid until, plugin, privileges, shell.
	Attributes []string        `json:"attributes,omitempty"`
	Keys       []DiscoveredKey `json:"keys,omitempty"`
	// Problems say what could not be read of this account.
	Problems  []string  `json:"problems,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// GoneAt is when a discovery of its target last missed it; zero while
	// it is there.
	GoneAt time.Time `json:"gone_at,omitzero"`
}

// DiscoveredKey is one key of an account's authorized_keys.
type DiscoveredKey struct {
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"` // SHA256:…
	Comment     string `json:"comment,omitempty"`
	// Options are the names of the key's options (from, command, …);
	// their values are left out, as they may hold secrets.
	Options []string `json:"options,omitempty"`
}

// Gone reports whether the account was missing at its target's latest
// discovery.
func (a DiscoveredAccount) Gone() bool { return !a.GoneAt.IsZero() }

// Name is the account as findings name it: target/account.
func (a DiscoveredAccount) Name() string { return a.Target + "/" + a.Account }

// DiscoveryStore keeps discovered accounts; the stores of package sqlstore
// have it. Stores without it have no discovery findings.
type DiscoveryStore interface {
	// Discovered returns every account ever discovered, gone ones too.
	Discovered(ctx context.Context) ([]DiscoveredAccount, error)
}

// discoveredFindings are the hygiene findings of discovered accounts
// still present: unknown accounts (NHI1), standing database passwords
// (NHI7) and registered identities' keys installed on targets (NHI9).
func (r *Registry) discoveredFindings(ctx context.Context, f *hygieneFacts) ([]Finding, error) {
	ds, ok := r.Store.(DiscoveryStore)
	if !ok {
		return nil, nil
	}
	accounts, err := ds.Discovered(ctx)
	if err != nil {
		return nil, fmt.Errorf("read discovered accounts: %w", err)
	}
	keys := registeredKeys(f.identities)
	var out []Finding
	for _, a := range accounts {
		if a.Gone() {
			continue
		}
		if known := knownAccount(f.identities, a); known == "" {
			out = append(out, Finding{NHI1, FindingUnmanagedAccount, a.Name(), unmanagedDetail(a)})
		}
		if a.Password == PasswordSet {
			out = append(out, Finding{NHI7, FindingStandingPassword, a.Name(), fmt.Sprintf(
				"%s login %s has a password sallyport did not create: it logs in without the bastion; remove the password or the login and entitle an identity instead", a.Kind, a.Account)})
		}
		out = append(out, installedKeys(a, keys)...)
	}
	return out, nil
}

func unmanagedDetail(a DiscoveredAccount) string {
	d := fmt.Sprintf("%s account %s on %s is in no identity's entitlements (first seen %s)", a.Kind, a.Account, a.Target, a.FirstSeen.Format(time.DateOnly))
	if len(a.Attributes) > 0 {
		d += ": " + strings.Join(a.Attributes, ", ")
	}
	return d + "; register it (iga discover --propose) or remove it"
}

// knownAccount returns the identity whose entitlements cover the account's
// login on its target (a proposed one included), or "".
func knownAccount(ids []Identity, a DiscoveredAccount) string {
	for _, id := range ids {
		if id.State == StateDeprovisioned {
			continue
		}
		for _, e := range id.Entitlements {
			if e.Target == a.Target && e.Login == a.Login {
				return id.ID
			}
		}
	}
	return ""
}

// registeredKeys maps the SHA256 fingerprint of every live identity's SSH
// key to the identities that hold it.
func registeredKeys(ids []Identity) map[string][]string {
	out := map[string][]string{}
	for _, id := range ids {
		if id.State == StateDeprovisioned {
			continue
		}
		for _, k := range id.Credentials.SSHKeys {
			if fp := keyFingerprint(k.Key); fp != "" {
				out[fp] = append(out[fp], id.ID)
			}
		}
	}
	return out
}

// keyFingerprint is the SHA256 fingerprint of an authorized_keys line, ""
// when it does not parse.
func keyFingerprint(line string) string {
	pub, err := ParseSSHKey([]byte(line))
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(pub)
}

func installedKeys(a DiscoveredAccount, registered map[string][]string) []Finding {
	var out []Finding
	for _, k := range a.Keys {
		for _, id := range registered[k.Fingerprint] {
			out = append(out, Finding{NHI9, FindingKeyOnTarget, id, fmt.Sprintf(
				"its ssh key %s is in the authorized_keys of %s on %s: it logs in without the bastion, unrecorded and past every control (NHI1 if the identity is offboarded); remove the key from the target",
				k.Fingerprint, a.Account, a.Target)})
		}
	}
	return out
}

// Proposal is what Propose did.
type Proposal struct {
	Created []string `json:"created"` // identity ids
	Known   int      `json:"known"`   // accounts an identity already covers
}

// Propose writes each present discovered account that no identity covers
// to the registry as a proposed identity without owner, entitled to the
// account's login on its target: denied like every proposed identity, and
// put by campaigns in front of someone to own or delete. An identity id
// already taken is left alone.
func (r *Registry) Propose(ctx context.Context, accounts []DiscoveredAccount, actor string) (Proposal, error) {
	var p Proposal
	err := r.Store.Update(ctx, func(tx Tx) error {
		p = Proposal{}
		ids, err := tx.Identities(ctx)
		if err != nil {
			return fmt.Errorf("read identities: %w", err)
		}
		for _, a := range accounts {
			if err := r.proposeOne(ctx, tx, &p, ids, a, actor); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Proposal{}, fmt.Errorf("propose discovered accounts: %w", err)
	}
	return p, nil
}

func (r *Registry) proposeOne(ctx context.Context, tx Tx, p *Proposal, ids []Identity, a DiscoveredAccount, actor string) error {
	if a.Gone() {
		return nil
	}
	if knownAccount(ids, a) != "" {
		p.Known++
		return nil
	}
	id := proposedIdentity(a)
	if slices.ContainsFunc(ids, func(x Identity) bool { return x.ID == id.ID }) || slices.Contains(p.Created, id.ID) {
		return nil
	}
	if err := tx.PutIdentity(ctx, id); err != nil {
		return fmt.Errorf("store proposed identity %s: %w", id.ID, err)
	}
	ev := AuditEvent{Time: r.now(), Type: "propose", Actor: actor, Identity: id.ID, Target: a.Target,
		Detail: fmt.Sprintf("created: proposed from discovered %s account %s on %s", a.Kind, a.Account, a.Target)}
	if err := tx.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("audit proposed identity %s: %w", id.ID, err)
	}
	p.Created = append(p.Created, id.ID)
	return nil
}

var unsafeIDChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// proposedIdentity is the identity a discovered account is proposed as:
// id discovered.<target>.<account>, a service account, entitled to what
// such an account does there.
func proposedIdentity(a DiscoveredAccount) Identity {
	action := ActionQuery
	if a.Kind == "ssh" {
		action = ActionShell
	}
	account := unsafeIDChars.ReplaceAllString(a.Account, "_")
	return Identity{
		ID: "discovered." + a.Target + "." + account, Kind: KindServiceAccount, State: StateProposed,
		Entitlements: []Entitlement{{Target: a.Target, Login: a.Login, Actions: []Action{action}}},
	}
}
