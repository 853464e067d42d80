package web

import (
	"context"
	"io"
	"time"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// Directory is the read side of the registry that the console shows:
// people, identities, grants, the audit trail, reviews and campaigns
// (iga/sqlstore.Store).
type Directory interface {
	Person(ctx context.Context, id string) (iga.Person, error)
	Identity(ctx context.Context, id string) (iga.Identity, error)
	Identities(ctx context.Context) ([]iga.Identity, error)
	People(ctx context.Context) ([]iga.Person, error)
	Grants(ctx context.Context, identity string) ([]iga.Grant, error)
	Audit(ctx context.Context, f iga.AuditFilter) ([]iga.AuditEvent, error)
	Reviews(ctx context.Context) ([]iga.Review, error)
	Campaigns(ctx context.Context) ([]iga.Campaign, error)
	CampaignItems(ctx context.Context, campaign string) ([]iga.CampaignItem, error)
}

// SessionIndex is the subset of the session index the console reads and
// the kill switch it pulls (iga/sqlstore.Store).
type SessionIndex interface {
	Sessions(ctx context.Context, f sqlstore.SessionFilter) ([]sqlstore.SessionRecord, error)
	Session(ctx context.Context, id string) (sqlstore.SessionRecord, error)
	RequestKill(ctx context.Context, id, reason string, at time.Time) error
}

// Workflows is the subset of iga.Registry behind the console's forms:
// completing a break-glass review and deciding a campaign item. The
// registry enforces who may do either.
type Workflows interface {
	CompleteReview(ctx context.Context, c iga.ReviewCompletion) (iga.Review, error)
	DecideCampaignItem(ctx context.Context, d iga.CampaignDecision) (iga.CampaignItem, error)
}

// Recordings reads the recording of one session, as the session index
// names it (id and start time).
type Recordings interface {
	// Verify checks the recording's hash chain and signed manifest.
	Verify(ctx context.Context, id string, started time.Time) (recorder.Report, error)
	// Cast streams pty channel 0 as one asciicast v2 file.
	Cast(ctx context.Context, id string, started time.Time, w io.Writer) error
	// Events streams the recording as JSON lines (terminal records and events).
	Events(ctx context.Context, id string, started time.Time, w io.Writer) error
}

// ExecRecordings is what Recordings may also do, found by type assertion:
// read exec channels' streams for the session page, and one stream's exact
// bytes for download. StoreRecordings does; without it the page of an exec
// session shows its events only.
type ExecRecordings interface {
	// Exec reads the exec channels' commands, streams as text within
	// budget bytes, and ends.
	Exec(ctx context.Context, id string, started time.Time, budget int64) (recorder.ExecView, error)
	// Stream writes the bytes kept of one exec stream ("exec-0.stdout").
	Stream(ctx context.Context, id string, started time.Time, name string, w io.Writer) error
}
