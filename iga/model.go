// Package iga is sallyport's bundled identity-governance registry: people,
// non-human identities, their owners, credentials, entitlements and
// certifications, break-glass grants and the audit trail of every decision.
//
// It answers one question for the proxies — may this identity use this
// target for this action right now? — through Registry.Decide, and it never
// touches a socket. Persistence is behind the Store interface; package
// iga/sqlstore implements it for SQLite (the embedded default) and PostgreSQL.
package iga

import (
	"errors"
	"time"
)

// ErrNotFound is returned by a Store when the asked-for record does not exist.
var ErrNotFound = errors.New("not found")

// PersonStatus is whether a person is still with the organisation.
type PersonStatus string

// Person statuses.
const (
	PersonActive   PersonStatus = "active"
	PersonInactive PersonStatus = "inactive"
)

// Person is a human who owns identities, reviews them, or holds break-glass
// accounts. People are never admitted through the bastion themselves.
type Person struct {
	ID     string // e-mail address, the key everywhere else
	Name   string
	Roles  []string // owner, auditor, admin
	Status PersonStatus
	// ManagedBy is ManagedBySCIM when the identity provider owns this
	// person over SCIM (iga apply then refuses to change them); empty: the
	// registry file does. Filled by Export and the SCIM views, not by Store.People.
	ManagedBy string
	// Manager is the person id of their manager, as the identity provider
	// sends it; empty: none known. A leaver's identities go to the manager.
	Manager string
}

// ManagedBySCIM marks a person the identity provider manages over SCIM.
const ManagedBySCIM = "scim"

// Kind is the kind of an identity.
type Kind string

// Identity kinds. Every kind but KindHuman may be admitted.
const (
	KindServiceAccount Kind = "service-account"
	KindWorkload       Kind = "workload"
	KindAgent          Kind = "agent"
	KindPipeline       Kind = "pipeline"
	KindAPIKey         Kind = "api-key"
	KindBreakGlass     Kind = "break-glass"
	KindHuman          Kind = "human"
)

// Kinds lists every identity kind, in the order the docs give them.
var Kinds = []Kind{KindServiceAccount, KindWorkload, KindAgent, KindPipeline, KindAPIKey, KindBreakGlass, KindHuman}

// State is the lifecycle state of an identity.
type State string

// Lifecycle states. Only StateActive is admitted.
const (
	StateProposed      State = "proposed"
	StateActive        State = "active"
	StateSuspended     State = "suspended"
	StateDeprovisioned State = "deprovisioned"
)

// States lists every lifecycle state.
var States = []State{StateProposed, StateActive, StateSuspended, StateDeprovisioned}

// Action is what a session does on a target.
type Action string

// Actions an entitlement may grant.
const (
	ActionShell   Action = "shell"   // an interactive shell, with or without a pty
	ActionExec    Action = "exec"    // one command
	ActionSFTP    Action = "sftp"    // sftp and scp
	ActionForward Action = "forward" // direct-tcpip to the target host only
	ActionQuery   Action = "query"   // a database session
	// ActionConnect is the login itself, before any channel or query: it
	// is admitted when every rule holds for some action the identity's
	// entitlements on the target cover. No entitlement grants it by name.
	ActionConnect Action = "connect"
)

// Actions lists every action.
var Actions = []Action{ActionShell, ActionExec, ActionSFTP, ActionForward, ActionQuery}

// Identity is a non-human identity (or a break-glass or human account kept
// for visibility) with everything admission needs to know about it.
type Identity struct {
	ID           string
	Kind         Kind
	State        State
	Owner        string // person id; empty for a discovered, unowned NHI
	Environment  string // prod, staging, …; empty matches any target
	Holders      []string
	Credentials  Credentials
	Entitlements []Entitlement
	// Certification is the latest certification decision, nil when never certified.
	Certification *Certification
	// LastUsed is when the identity was last admitted; zero when never.
	LastUsed time.Time
	// RevokedAt is the latest time of its revoke decisions, kept through
	// later re-certifications: tokens minted before it stay refused. Zero
	// when never revoked. The store fills it in; a registry file does not.
	RevokedAt time.Time
}

// Credentials are the credentials bound to an identity.
type Credentials struct {
	SSHKeys []SSHKey
	OIDC    []OIDCBinding
}

// SSHKey is an SSH public key bound to an identity.
type SSHKey struct {
	Key     string    // authorized_keys form: "ssh-ed25519 AAAA… [comment]"
	Expires time.Time // zero: never (a hygiene finding, not a denial)
}

// OIDCBinding binds workload tokens of one issuer and subject to an identity.
type OIDCBinding struct {
	Issuer  string
	Subject string
}

// Entitlement grants an identity actions on one target as one login.
type Entitlement struct {
	Target  string
	Login   string // Unix login or database role
	Actions []Action
	Expires time.Time // zero: never
	From    []string  // CIDRs the session may come from; empty: anywhere
	// Commands restricts exec to these command lines, each exact or with
	// '*' wildcards (docs/registry.md has the matching rules). Empty: any
	// command. Never together with the shell action.
	Commands []string
}

// Decision values of a certification.
const (
	DecisionCertify = "certify"
	DecisionRevoke  = "revoke"
)

// Certification is one certify or revoke decision about an identity.
type Certification struct {
	Decision string // DecisionCertify or DecisionRevoke
	By       string // person id
	At       time.Time
	Until    time.Time // end of a certify decision; zero for revoke
	Note     string
}

// Grant is a break-glass grant: a named holder opened time-bound access to
// one target on a break-glass identity, with a reason.
type Grant struct {
	ID        string
	Identity  string
	Target    string
	OpenedBy  string
	Reason    string
	Ticket    string
	OpenedAt  time.Time
	ExpiresAt time.Time
	ClosedAt  time.Time // zero while open
}

// Open reports whether the grant is open and unexpired at now.
func (g Grant) Open(now time.Time) bool {
	return g.ClosedAt.IsZero() && now.Before(g.ExpiresAt)
}

// Target is what the registry knows of a target from the operator's config.
type Target struct {
	Name        string
	Kind        string // ssh, postgres, mysql
	Environment string // empty matches any identity
}

// AuditEvent is one entry of the audit trail: an admission decision or a
// registry change.
type AuditEvent struct {
	ID       int64
	Time     time.Time
	Type     string // decision, login_failed, refusal, apply, certify, revoke, offboard, breakglass_open, breakglass_close, token_issue, propose
	Actor    string // person id, or "sallyport" for the bastion itself
	Identity string
	Target   string
	Action   Action
	Source   string
	Allow    bool // decisions only
	Reasons  []Reason
	Detail   string // free text: what changed
}

// AuditFilter selects audit events. Zero fields match everything.
type AuditFilter struct {
	Identity string
	Type     string
	Since    time.Time
	Limit    int // 0: no limit
}

// Doc is the whole registry as the registry file and export see it.
type Doc struct {
	People     []Person
	Identities []Identity
}

// Reason is one failed admission rule: a stable code and a sentence for the
// caller that says what to do.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Reason codes (stable, machine-readable; DESIGN §4).
const (
	ReasonUnknownIdentity        = "unknown_identity"
	ReasonNotActive              = "not_active"
	ReasonKindNotAdmitted        = "kind_not_admitted"
	ReasonNoOwner                = "no_owner"
	ReasonOwnerInactive          = "owner_inactive"
	ReasonNotCertified           = "not_certified"
	ReasonCertificationExpired   = "certification_expired"
	ReasonCertificationRevoked   = "certification_revoked"
	ReasonNoEntitlement          = "no_entitlement"
	ReasonEntitlementExpired     = "entitlement_expired"
	ReasonActionNotEntitled      = "action_not_entitled"
	ReasonCredentialInvalid      = "credential_invalid"
	ReasonCredentialExpired      = "credential_expired"
	ReasonSourceNotAllowed       = "source_not_allowed"
	ReasonEnvironmentMismatch    = "environment_mismatch"
	ReasonBreakglassNoGrant      = "breakglass_no_grant"
	ReasonBreakglassGrantExpired = "breakglass_grant_expired"
	ReasonUnknownTarget          = "unknown_target"
	ReasonRecordingUnavailable   = "recording_unavailable"
	// ReasonCommandNotEntitled: the exec command matches none of the
	// entitlement's commands.
	ReasonCommandNotEntitled = "command_not_entitled"
	// ReasonNotOffered: the client asked for something the bastion never
	// relays (remote or agent forwarding, X11, a subsystem other than
	// sftp, a channel type it does not know), whatever the entitlements.
	ReasonNotOffered = "not_offered"
)
