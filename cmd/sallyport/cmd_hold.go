package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// holdTimeout bounds a hold or release: the registry write and, on S3
// with Object Lock, one request per object of the recording.
const holdTimeout = 5 * time.Minute

func newHoldCmd(g *globals) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "hold SESSION --reason TEXT",
		Short: "Put a session's recording on legal hold: retention does not delete it until it is released",
		Long: `hold records a legal hold on the session's recording in the registry, with who
(the operator running the command) and why, and writes a recording_hold audit
event. While the hold lasts, the retention job (recordings.retention) keeps the
recording. With recordings.s3.object_lock configured, every object of the
recording also gets the S3 legal hold, which S3 enforces whatever the retention
date; the objects of a live session stored after the hold (its later chunks and
its manifest) get it as they are uploaded. Holding a held recording keeps the
first hold.`,
		Example: `  sallyport recording hold 6745a1b2c3d4e5f6a7b8c9d0 --reason "litigation hold, case 2026-117"`,
		Args:    args(1, "SESSION"),
		RunE: func(c *cobra.Command, a []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("--reason: say why the recording is held (it goes to the audit trail)")
			}
			return g.setHold(c, a[0], reason, true)
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why the recording is held, for the audit trail (required)")
	return c
}

func newReleaseCmd(g *globals) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "release SESSION --reason TEXT",
		Short: "End the legal hold on a session's recording",
		Long: `release removes the legal hold from the registry and writes a
recording_release audit event; with recordings.s3.object_lock it turns the S3
legal hold of the recording's objects off. The recording is then deleted by the
next retention run once it is past recordings.retention (and, on S3, past its
Object Lock retain-until date).`,
		Example: `  sallyport recording release 6745a1b2c3d4e5f6a7b8c9d0 --reason "case 2026-117 closed"`,
		Args:    args(1, "SESSION"),
		RunE: func(c *cobra.Command, a []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("--reason: say why the hold ends (it goes to the audit trail)")
			}
			return g.setHold(c, a[0], reason, false)
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why the hold ends, for the audit trail (required)")
	return c
}

// setHold holds or releases session id's recording in the registry, then
// sets the objects' S3 legal hold to match.
func (g *globals) setHold(c *cobra.Command, id, reason string, on bool) error {
	ctx, cancel := context.WithTimeout(c.Context(), holdTimeout)
	defer cancel()
	ap, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer ap.Close()
	sess, err := ap.store.Session(ctx, id)
	if errors.Is(err, iga.ErrNotFound) {
		return fmt.Errorf("no session %s in the index (see 'sallyport sessions list')", id)
	}
	if err != nil {
		return err
	}
	h := sqlstore.RecordingHold{Session: id, At: time.Now().UTC(), By: operator(), Reason: reason}
	w := c.OutOrStdout()
	if on {
		err = holdInRegistry(ctx, ap.store, sess, h, w)
	} else {
		err = releaseInRegistry(ctx, ap.store, h, w)
	}
	if err != nil {
		return err
	}
	return setObjectLegalHold(ctx, ap.cfg, sess, on, w)
}

func holdInRegistry(ctx context.Context, store *sqlstore.Store, sess sqlstore.SessionRecord, h sqlstore.RecordingHold, w io.Writer) error {
	if sess.State == sqlstore.StateDeleted {
		return fmt.Errorf("session %s: nothing to hold, its %s", sess.ID, sess.Reason)
	}
	held, created, err := store.HoldRecording(ctx, h)
	if err != nil {
		return err
	}
	if !created {
		fmt.Fprintf(w, "session %s: recording already on %s\n", sess.ID, holdText(held))
		return nil
	}
	fmt.Fprintf(w, "session %s: recording on %s; retention keeps it until it is released\n", sess.ID, holdText(held))
	return nil
}

func releaseInRegistry(ctx context.Context, store *sqlstore.Store, h sqlstore.RecordingHold, w io.Writer) error {
	held, err := store.ReleaseRecording(ctx, h)
	if errors.Is(err, sqlstore.ErrNotHeld) {
		return fmt.Errorf("session %s is not on legal hold", h.Session)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "session %s: legal hold released (it was held since %s by %s: %s); retention applies to the recording again\n",
		h.Session, held.At.UTC().Format(time.RFC3339), held.By, held.Reason)
	return nil
}

// setObjectLegalHold sets the S3 legal hold of the session's objects when
// the store has Object Lock; the registry's hold is already written, and
// running the command again retries.
func setObjectLegalHold(ctx context.Context, cfg *Config, sess sqlstore.SessionRecord, on bool, w io.Writer) error {
	if !cfg.Recordings.S3.ObjectLock.Enabled() || cfg.Recordings.Store != recorder.StoreS3 {
		return nil
	}
	_, store, err := openRecordingStore(cfg)
	if err != nil {
		return err
	}
	n, err := recorder.SetLegalHold(ctx, store, recorder.SessionDir(sess.ID, sess.StartedAt), on)
	if err != nil {
		return fmt.Errorf("the registry is updated, but the S3 legal hold of %d objects is not: %w (run the command again)", n, err)
	}
	state := "off"
	if on {
		state = "on"
	}
	fmt.Fprintf(w, "S3 legal hold %s for %d objects\n", state, n)
	if on && recorder.State(sess.State).InTransit() {
		fmt.Fprintf(w, "the session's recording is %s: its objects still to come get the S3 legal hold as they are stored\n", sess.State)
	}
	return nil
}

// useLegalHolds has the recorder's S3 store, with Object Lock, give the
// objects it uploads of a session on legal hold the S3 legal hold, asking
// the registry's holds on each upload (serve wires it).
func useLegalHolds(rec *recorder.Recorder, store *sqlstore.Store) {
	recorder.UseLegalHolds(rec.Store, retentionIndex{store})
}

// holdText describes a hold for people.
func holdText(h sqlstore.RecordingHold) string {
	return fmt.Sprintf("legal hold since %s by %s: %s", h.At.UTC().Format(time.RFC3339), h.By, h.Reason)
}

// retentionColumn is what sessions list says of a recording's retention:
// its legal hold, or when retention deleted it.
func retentionColumn(holds map[string]sqlstore.RecordingHold, r sqlstore.SessionRecord) string {
	if h, ok := holds[r.ID]; ok {
		return "legal hold since " + h.At.UTC().Format(time.DateOnly) + " by " + h.By
	}
	if r.State == sqlstore.StateDeleted {
		return r.Reason
	}
	return ""
}

// withHolds adds their holds to listed sessions.
func withHolds(out []sessionOut, holds map[string]sqlstore.RecordingHold) []sessionOut {
	for i := range out {
		if h, ok := holds[out[i].ID]; ok {
			out[i].LegalHold = &h
		}
	}
	return out
}

// printHold adds the legal hold of session id, if any, to verify's
// report; the registry is read only when the config names one.
func (g *globals) printHold(ctx context.Context, w io.Writer, id string) error {
	if id == "" {
		return nil // a copied directory: no session to look up
	}
	ap, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer ap.Close()
	h, ok, err := ap.store.RecordingHold(ctx, id)
	if err != nil || !ok {
		return err
	}
	_, err = fmt.Fprintf(w, "  %s\n", holdText(h))
	return err
}
