package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/internal/when"
	"github.com/sallyport/sallyport/recorder"
)

// indexTimeout bounds one session-index write from the recorder's callback,
// which runs on recorder goroutines and must not hold them long.
const indexTimeout = 5 * time.Second

// indexSessions keeps the session index from the recorder's state changes.
func indexSessions(store *sqlstore.Store, log *slog.Logger) func(recorder.StateChange) {
	return func(c recorder.StateChange) {
		ctx, cancel := context.WithTimeout(context.Background(), indexTimeout)
		defer cancel()
		if err := store.PutSession(ctx, sessionRecord(c)); err != nil {
			log.Warn("session index not updated; the recording itself is safe", "session", c.Meta.ID, "err", err)
		}
	}
}

func sessionRecord(c recorder.StateChange) sqlstore.SessionRecord {
	m := c.Meta
	return sqlstore.SessionRecord{ID: m.ID, Identity: m.Identity, Owner: m.Owner, Target: m.Target,
		Protocol: m.Protocol, Login: m.Login, Source: m.Source, BreakglassGrant: m.BreakglassGrant,
		State: string(c.State), Reason: c.Reason, Dir: c.Dir, StartedAt: m.StartedAt, EndedAt: c.EndedAt,
		Bytes: c.Bytes, Events: c.Events}
}

func newSessionsCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "sessions", Short: "List and kill proxied sessions"}
	c.AddCommand(newSessionsListCmd(g), newSessionsKillCmd(g))
	c.AddCommand(newSessionsSearchCmd(g))
	return c
}

func newSessionsListCmd(g *globals) *cobra.Command {
	var f sqlstore.SessionFilter
	var since string
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--identity X] [--target T] [--since D] [--live] [--json]",
		Short: "List sessions from the session index, oldest first",
		Example: `  sallyport sessions list --live
  sallyport sessions list --identity svc-backup --since 24h --json`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			var err error
			if f.Since, err = whenFlag("--since", since, false); err != nil {
				return err
			}
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			rs, err := ap.store.Sessions(c.Context(), f)
			if err != nil {
				return err
			}
			holds, err := ap.store.RecordingHolds(c.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), withHolds(sessionsJSON(rs), holds))
			}
			printSessions(c.OutOrStdout(), rs, holds)
			return nil
		},
	}
	c.Flags().StringVar(&f.Identity, "identity", "", "only this identity's sessions")
	c.Flags().StringVar(&f.Target, "target", "", "only sessions to this target")
	c.Flags().StringVar(&since, "since", "", "only sessions started since this long ago (24h, 7d) or this date")
	c.Flags().BoolVar(&f.Live, "live", false, "only sessions still running")
	c.Flags().IntVar(&f.Limit, "limit", 0, "only the newest N sessions")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

// whenFlag reads the value of a time filter flag with when.Parse, in the
// local time zone; end: it is an upper bound.
func whenFlag(flag, s string, end bool) (time.Time, error) {
	t, err := when.Parse(s, end, time.Now())
	if err != nil {
		return time.Time{}, usageErrorf("%s: %v", flag, err)
	}
	return t, nil
}

// sessionOut is the JSON form of a session (docs/cli.md).
type sessionOut struct {
	ID              string     `json:"id"`
	Identity        string     `json:"identity"`
	Owner           string     `json:"owner"`
	Target          string     `json:"target"`
	Protocol        string     `json:"protocol"`
	Login           string     `json:"login"`
	Source          string     `json:"source"`
	StartedAt       time.Time  `json:"started_at"`
	EndedAt         *time.Time `json:"ended_at"`
	State           string     `json:"state"`
	Reason          string     `json:"reason,omitempty"`
	BreakglassGrant *string    `json:"breakglass_grant"`
	Bytes           int64      `json:"bytes"`
	Events          int64      `json:"events"`
	KillReason      string     `json:"kill_reason,omitempty"`
	Replica         string     `json:"replica"`
	// LegalHold is the hold on the recording; absent when none (cmd_hold.go).
	LegalHold *sqlstore.RecordingHold `json:"legal_hold,omitempty"`
}

func sessionsJSON(rs []sqlstore.SessionRecord) []sessionOut {
	out := make([]sessionOut, 0, len(rs))
	for _, r := range rs {
		o := sessionOut{ID: r.ID, Identity: r.Identity, Owner: r.Owner, Target: r.Target, Protocol: r.Protocol,
			Login: r.Login, Source: r.Source, StartedAt: r.StartedAt, State: r.State, Reason: r.Reason,
			Bytes: r.Bytes, Events: r.Events, KillReason: r.KillReason, Replica: r.Replica}
		if !r.EndedAt.IsZero() {
			o.EndedAt = &r.EndedAt
		}
		if r.BreakglassGrant != "" {
			o.BreakglassGrant = &r.BreakglassGrant
		}
		out = append(out, o)
	}
	return out
}

func printSessions(w io.Writer, rs []sqlstore.SessionRecord, holds map[string]sqlstore.RecordingHold) {
	fmt.Fprintf(w, "%-24s  %-20s  %-14s  %-12s  %-8s  %-10s  %-11s  %s\n", "ID", "STARTED", "IDENTITY", "TARGET", "PROTOCOL", "STATE", "BREAK-GLASS", "RETENTION")
	for _, r := range rs {
		fmt.Fprintf(w, "%-24s  %-20s  %-14s  %-12s  %-8s  %-10s  %-11s  %s\n", r.ID, r.StartedAt.Format(time.RFC3339),
			r.Identity, r.Target, r.Protocol, r.State, r.BreakglassGrant, retentionColumn(holds, r))
		if r.Reason != "" && (r.State == string(recorder.StateIncomplete) || r.State == string(recorder.StateDegraded)) {
			fmt.Fprintf(w, "  %s: %s\n", r.State, r.Reason) // why, e.g. which replica was lost
		}
	}
}

func newSessionsKillCmd(g *globals) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:     "kill ID [--reason TEXT]",
		Short:   "End a live session within a second, whichever bastion process runs it",
		Example: `  sallyport sessions kill 6745a1b2c3d4e5f6a7b8c9d0 --reason "runaway job"`,
		Args:    args(1, "ID"),
		RunE: func(c *cobra.Command, a []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			if reason == "" {
				reason = "killed by " + operator()
			}
			err = ap.store.RequestKill(c.Context(), a[0], reason, time.Now())
			if errors.Is(err, iga.ErrNotFound) {
				return fmt.Errorf("no session %s in the index (see 'sallyport sessions list --live')", a[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "kill requested for session %s; it ends within a second\n", a[0])
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, for the recording and the audit trail")
	return c
}
