package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// maxTranscript bounds the terminal transcript of one session in an
// evidence bundle; the recording itself stays the full record.
const maxTranscript = 1 << 20

// oversight is the break-glass follow-up of the app's registry; alert,
// when set, receives the alerts (serve's webhook).
func (a *app) oversight(alert func(iga.Alert)) *iga.Oversight {
	return &iga.Oversight{Registry: a.reg, ReviewWithin: a.cfg.Breakglass.ReviewWithin.D(), Alert: alert}
}

// openReviewed opens the app and creates the reviews of grants that ended,
// so the review commands see them even when no bastion is serving.
func (g *globals) openReviewed(ctx context.Context) (*app, error) {
	ap, err := g.open(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := ap.oversight(nil).OpenReviews(ctx); err != nil {
		ap.Close()
		return nil, err
	}
	return ap, nil
}

func newReviewCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "review",
		Short: "Post-event reviews of break-glass grants",
		Long: `When a break-glass grant closes or expires, a review is created, due after
breakglass.review_within (default 72h). It is assigned to the identity's owner,
never to the person who opened the grant; when the owner opened it, any auditor
but the owner may complete it. Overdue reviews raise an alert and show in the
sallyport_breakglass_reviews_overdue metric.`,
	}
	c.AddCommand(newReviewListCmd(g), newReviewCompleteCmd(g), newReviewExportCmd(g))
	return c
}

func newReviewListCmd(g *globals) *cobra.Command {
	var overdue, asJSON bool
	c := &cobra.Command{
		Use:   "list [--overdue] [--json]",
		Short: "List reviews, earliest due first",
		Example: `  sallyport review list
  sallyport review list --overdue --json`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			ap, err := g.openReviewed(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			rvs, err := ap.store.Reviews(c.Context())
			if err != nil {
				return err
			}
			out := reviewsJSON(rvs, time.Now(), overdue)
			if asJSON {
				return writeJSON(c.OutOrStdout(), out)
			}
			printReviews(c.OutOrStdout(), out)
			return nil
		},
	}
	c.Flags().BoolVar(&overdue, "overdue", false, "only pending reviews past their due time")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

// reviewOut is the JSON form of a review (docs/cli.md).
type reviewOut struct {
	ID         string `json:"id"`
	Grant      string `json:"grant"`
	Identity   string `json:"identity"`
	Target     string `json:"target"`
	OpenedBy   string `json:"opened_by"`
	AssignedTo string `json:"assigned_to"`
	// Reviewers says in words who may complete it.
	Reviewers   string     `json:"reviewers"`
	State       string     `json:"state"` // pending, overdue, completed
	CreatedAt   time.Time  `json:"created_at"`
	DueAt       time.Time  `json:"due_at"`
	CompletedAt *time.Time `json:"completed_at"`
	CompletedBy string     `json:"completed_by,omitempty"`
	Outcome     string     `json:"outcome,omitempty"`
	Note        string     `json:"note,omitempty"`
}

func reviewJSON(rv iga.Review, now time.Time) reviewOut {
	o := reviewOut{ID: rv.ID, Grant: rv.Grant, Identity: rv.Identity, Target: rv.Target, OpenedBy: rv.OpenedBy,
		AssignedTo: rv.AssignedTo, Reviewers: rv.AssignedTo, State: "pending", CreatedAt: rv.CreatedAt, DueAt: rv.DueAt,
		CompletedBy: rv.CompletedBy, Outcome: rv.Outcome, Note: rv.Note}
	if rv.AssignedTo == "" {
		o.Reviewers = "any auditor but " + rv.OpenedBy
	}
	switch {
	case !rv.Pending():
		o.State, o.CompletedAt = "completed", &rv.CompletedAt
	case rv.Overdue(now):
		o.State = "overdue"
	}
	return o
}

func reviewsJSON(rvs []iga.Review, now time.Time, overdueOnly bool) []reviewOut {
	out := make([]reviewOut, 0, len(rvs))
	for _, rv := range rvs {
		if !overdueOnly || rv.Overdue(now) {
			out = append(out, reviewJSON(rv, now))
		}
	}
	return out
}

func printReviews(w io.Writer, rs []reviewOut) {
	fmt.Fprintf(w, "%-11s  %-11s  %-14s  %-10s  %-9s  %-20s  %s\n", "ID", "GRANT", "IDENTITY", "TARGET", "STATE", "DUE", "REVIEWER")
	for _, r := range rs {
		who := r.Reviewers
		if r.State == "completed" {
			who = r.CompletedBy + ": " + r.Outcome
		}
		fmt.Fprintf(w, "%-11s  %-11s  %-14s  %-10s  %-9s  %-20s  %s\n", r.ID, r.Grant, r.Identity, r.Target, r.State,
			r.DueAt.Format(time.RFC3339), who)
	}
}

func newReviewCompleteCmd(g *globals) *cobra.Command {
	var rc iga.ReviewCompletion
	c := &cobra.Command{
		Use:   "complete ID|last --by PERSON --outcome legitimate|misuse|drill --note TEXT",
		Short: "Record the verdict of a review (never by the person who opened the grant); last: the newest review",
		Example: `  sallyport review complete rv-1a2b3c4d --by alice@example.com --outcome legitimate \
    --note "restarted the stuck replica, as the ticket says"`,
		Args: args(1, "ID"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireFlags(c, "by", "outcome", "note"); err != nil {
				return err
			}
			ap, err := g.openReviewed(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			if rc.ID, err = resolveReview(c.Context(), ap, a[0]); err != nil {
				return err
			}
			rv, err := ap.reg.CompleteReview(c.Context(), rc)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "review %s of grant %s completed by %s: %s\n", rv.ID, rv.Grant, rv.CompletedBy, rv.Outcome)
			return nil
		},
	}
	c.Flags().StringVar(&rc.By, "by", "", "the reviewer (person id)")
	c.Flags().StringVar(&rc.Outcome, "outcome", "", "legitimate, misuse or drill")
	c.Flags().StringVar(&rc.Note, "note", "", "what the sessions did and why the outcome fits")
	return c
}

func newReviewExportCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export ID|last [-o FILE]",
		Short: "Write a review's evidence bundle: grant, reason, sessions, their commands and queries, verify status",
		Long: `The bundle is one JSON document (docs/cli.md): the review, the grant with its reason
and ticket, who opened and who reviewed it, and every session of the identity in
the grant's window with the commands, queries and other events read from its
recording, a text transcript of its terminal, and the recording's verify status.`,
		Example: `  sallyport review export rv-1a2b3c4d -o evidence.json`,
		Args:    args(1, "ID"),
		RunE: func(c *cobra.Command, a []string) error {
			ap, err := g.openReviewed(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			b, err := buildEvidence(c.Context(), ap, a[0])
			if err != nil {
				return err
			}
			data, err := marshalIndent(b)
			if err != nil {
				return err
			}
			return writeOutput(c.OutOrStdout(), out, data)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "file to write (default stdout)")
	return c
}

// lastReview is what the id "last" names: the review of the grant that
// ended last.
const lastReview = "last"

// resolveReview turns "last" into the id of the newest review.
func resolveReview(ctx context.Context, ap *app, id string) (string, error) {
	if id != lastReview {
		return id, nil
	}
	rvs, err := ap.store.Reviews(ctx)
	if err != nil {
		return "", err
	}
	if len(rvs) == 0 {
		return "", errors.New("there are no reviews yet; a review is created when a break-glass grant ends")
	}
	newest := rvs[0]
	for _, rv := range rvs[1:] {
		if rv.CreatedAt.After(newest.CreatedAt) {
			newest = rv
		}
	}
	return newest.ID, nil
}

// findReview reads a review, saying how to find the right id when it is not there.
func findReview(ctx context.Context, ap *app, id string) (iga.Review, error) {
	id, err := resolveReview(ctx, ap, id)
	if err != nil {
		return iga.Review{}, err
	}
	rv, err := ap.store.Review(ctx, id)
	if errors.Is(err, iga.ErrNotFound) {
		return iga.Review{}, fmt.Errorf("no review %s (see 'sallyport review list')", id)
	}
	return rv, err
}

// evidence is the bundle `review export` writes (docs/cli.md).
type evidence struct {
	Format      string            `json:"format"` // "sallyport-evidence/1"
	GeneratedAt time.Time         `json:"generated_at"`
	Review      reviewOut         `json:"review"`
	Grant       grantOut          `json:"grant"`
	Window      evidenceWindow    `json:"window"`
	Sessions    []sessionEvidence `json:"sessions"`
}

type evidenceWindow struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// sessionEvidence is one session of the window with what its recording holds.
type sessionEvidence struct {
	sessionOut
	// Verify is the recording's verify status: intact, incomplete,
	// unsealed, tampered, or unavailable when it could not be read.
	Verify         string            `json:"verify"`
	VerifyProblems []string          `json:"verify_problems,omitempty"`
	Events         []json.RawMessage `json:"events"`
	Transcript     string            `json:"transcript"`
	Error          string            `json:"error,omitempty"`
}

func buildEvidence(ctx context.Context, ap *app, id string) (evidence, error) {
	rv, err := findReview(ctx, ap, id)
	if err != nil {
		return evidence{}, err
	}
	gr, err := ap.store.Grant(ctx, rv.Grant)
	if err != nil {
		return evidence{}, fmt.Errorf("read grant %s: %w", rv.Grant, err)
	}
	now := time.Now()
	ev := evidence{Format: "sallyport-evidence/1", GeneratedAt: now.UTC(), Review: reviewJSON(rv, now), Grant: grantJSON(gr),
		Window: evidenceWindow{From: gr.OpenedAt, To: rv.CreatedAt}, Sessions: []sessionEvidence{}}
	rs, err := windowSessions(ctx, ap.store, gr, rv.CreatedAt)
	if err != nil {
		return evidence{}, err
	}
	rd, err := newRecordingReader(ap.cfg)
	if err != nil {
		return evidence{}, err
	}
	for _, so := range sessionsJSON(rs) {
		ev.Sessions = append(ev.Sessions, rd.evidence(ctx, so))
	}
	return ev, nil
}

// windowSessions are the identity's sessions started while the grant was
// open, and any session flagged with the grant.
func windowSessions(ctx context.Context, store *sqlstore.Store, gr iga.Grant, end time.Time) ([]sqlstore.SessionRecord, error) {
	rs, err := store.Sessions(ctx, sqlstore.SessionFilter{Identity: gr.Identity, Since: gr.OpenedAt})
	if err != nil {
		return nil, err
	}
	var out []sqlstore.SessionRecord
	for _, r := range rs {
		if r.BreakglassGrant == gr.ID || (r.Target == gr.Target && !r.StartedAt.After(end)) {
			out = append(out, r)
		}
	}
	return out, nil
}

// recordingReader reads recordings from the configured store.
type recordingReader struct {
	store recorder.Store
	pub   ed25519.PublicKey
}

func newRecordingReader(cfg *Config) (*recordingReader, error) {
	_, store, key, err := openRecordings(cfg)
	if err != nil {
		return nil, err
	}
	return &recordingReader{store: store, pub: key.Public().(ed25519.PublicKey)}, nil
}

// evidence reads one session's recording: verify status, events, transcript.
// A recording that cannot be read is reported in the bundle, not fatal.
func (rr *recordingReader) evidence(ctx context.Context, so sessionOut) sessionEvidence {
	se := sessionEvidence{sessionOut: so, Verify: "unavailable", Events: []json.RawMessage{}}
	src := recorder.SessionSource(rr.store, so.ID, so.StartedAt)
	rep, err := recorder.Verify(ctx, src, rr.pub)
	if err != nil {
		se.Error = err.Error()
		return se
	}
	rep.Pending(recorder.State(so.State))
	se.Verify = string(rep.Status)
	for _, p := range rep.Problems {
		se.VerifyProblems = append(se.VerifyProblems, p.String())
	}
	if se.Events, err = recordedEvents(ctx, src); err != nil {
		se.Error = err.Error()
	}
	var text bytes.Buffer
	if err := recorder.Replay(ctx, src, &text, recorder.ReplayOptions{Format: recorder.FormatText}); err != nil && se.Error == "" {
		se.Error = err.Error()
	}
	se.Transcript = string(text.Bytes()[:min(text.Len(), maxTranscript)])
	return se
}

// recordedEvents are the event lines of a recording (exec commands, sftp
// operations, forwards, queries, notes, the end), from its JSON replay.
func recordedEvents(ctx context.Context, src recorder.Source) ([]json.RawMessage, error) {
	var buf bytes.Buffer
	if err := recorder.Replay(ctx, src, &buf, recorder.ReplayOptions{Format: recorder.FormatJSON}); err != nil {
		return []json.RawMessage{}, err
	}
	out := []json.RawMessage{}
	// The replay is in memory already; lines are split without a length
	// limit, so a huge statement does not end the evidence there.
	for line := range bytes.Lines(buf.Bytes()) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(line, &head) != nil {
			continue
		}
		switch head.Type {
		case "session", "output", "input", "resize":
		default:
			out = append(out, json.RawMessage(bytes.Clone(line)))
		}
	}
	return out, nil
}

func marshalIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return append(b, '\n'), nil
}
