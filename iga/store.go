package iga

import "context"

// Reader is the read side of a Store.
type Reader interface {
	// Person returns one person, or ErrNotFound.
	Person(ctx context.Context, id string) (Person, error)
	// People returns every person, sorted by id.
	People(ctx context.Context) ([]Person, error)
	// Identity returns one identity with its credentials, entitlements and
	// latest certification, or ErrNotFound.
	Identity(ctx context.Context, id string) (Identity, error)
	// Identities returns every identity, sorted by id, each complete as Identity returns it.
	Identities(ctx context.Context) ([]Identity, error)
	// IdentitiesByOIDC returns the ids of identities bound to issuer and subject, sorted.
	IdentitiesByOIDC(ctx context.Context, issuer, subject string) ([]string, error)
	// Grant returns one break-glass grant, or ErrNotFound.
	Grant(ctx context.Context, id string) (Grant, error)
	// Grants returns the grants of an identity (all identities when empty), oldest first.
	Grants(ctx context.Context, identity string) ([]Grant, error)
	// Certifications returns the certification history of an identity, oldest first.
	Certifications(ctx context.Context, identity string) ([]Certification, error)
	// Audit returns audit events matching f, oldest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// Tx is a Store transaction: reads see its own writes, and either every
// write lands or none does.
type Tx interface {
	Reader
	// PutPerson inserts or replaces a person.
	PutPerson(ctx context.Context, p Person) error
	// PutIdentity inserts or replaces an identity's own fields, credentials
	// and entitlements. It leaves the certification history and LastUsed alone.
	PutIdentity(ctx context.Context, id Identity) error
	// AddCertification appends a certification decision; it becomes the latest.
	AddCertification(ctx context.Context, identity string, c Certification) error
	// PutGrant inserts or replaces a break-glass grant.
	PutGrant(ctx context.Context, g Grant) error
	// AppendAudit appends an audit event; the store assigns its ID.
	AppendAudit(ctx context.Context, e AuditEvent) error
}

// Store persists the registry. Several processes may share one store (the
// CLI while serve runs), so every write goes through Update.
type Store interface {
	Reader
	// Update runs fn in one transaction, retrying on a busy database; an
	// error from fn rolls everything back and is returned as is.
	Update(ctx context.Context, fn func(Tx) error) error
	// RecordDecision appends a decision's audit event and, when it allowed,
	// sets the identity's LastUsed — one short write on the admission path.
	RecordDecision(ctx context.Context, e AuditEvent) error
	// Close releases the store.
	Close() error
}
