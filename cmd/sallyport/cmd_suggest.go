package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

func newSuggestCmd(g *globals) *cobra.Command {
	var days int
	c := &cobra.Command{
		Use:   "suggest IDENTITY [--days 90]",
		Short: "Print the smallest entitlements that admit what IDENTITY did in the window, as a registry file",
		Long: `suggest reads the identity's sessions of the last --days from the session index
and the exec commands from their recordings, and prints, as a registry file
that 'iga apply -f' accepts, the identity with the smallest entitlements that
would have admitted all of it: targets, logins, actions and, for exec, the
distinct commands. Three or more commands that differ in one argument become
one pattern with a * (a comment says so). The header lists what the current
entitlements grant and was never used. Review it, then apply it.`,
		Example: `  sallyport iga suggest svc-backup
  sallyport iga suggest svc-backup --days 30 > svc-backup.yaml && sallyport iga apply -f svc-backup.yaml`,
		Args: args(1, "IDENTITY"),
		RunE: func(c *cobra.Command, a []string) error {
			if days <= 0 {
				return usageErrorf("--days %d: want a positive number of days", days)
			}
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			id, err := ap.store.Identity(c.Context(), a[0])
			if err != nil {
				return fmt.Errorf("suggest for %s: %w", a[0], err)
			}
			since := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
			obs, n, unread, err := observe(c.Context(), ap, id.ID, since)
			if err != nil {
				return err
			}
			header := fmt.Sprintf("sallyport iga suggest %s --days %d: %d session(s) since %s.\nReview, then apply with `sallyport iga apply -f FILE`.",
				id.ID, days, n, since.UTC().Format(time.DateOnly))
			if unread > 0 {
				header += fmt.Sprintf("\nWARNING: the recordings of %d session(s) are not readable from the store (live, still uploading, or lost):\ntheir commands are missing below; run suggest again once `sallyport sessions list` shows them stored.", unread)
				fmt.Fprintf(c.ErrOrStderr(), "sallyport: %d session(s) of %s have no readable recording yet; their commands are not in the suggestion\n", unread, id.ID)
			}
			out, err := iga.MarshalSuggestion(id, iga.Suggest(id, obs[id.ID]), header)
			if err != nil {
				return err
			}
			_, err = c.OutOrStdout().Write(out)
			return err
		},
	}
	c.Flags().IntVar(&days, "days", 90, "how many days back to look")
	return c
}

// observe gathers what identities did since a time, by identity: one
// observation per session (its target, login and protocol's action) and
// one per exec command its recording holds. identity "" gathers every
// identity's. It returns how many sessions it read, and how many of their
// SSH recordings could not be read (their commands are missing).
func observe(ctx context.Context, ap *app, identity string, since time.Time) (map[string][]iga.Observation, int, int, error) {
	sessions, err := ap.store.Sessions(ctx, sqlstore.SessionFilter{Identity: identity, Since: since})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read sessions since %s: %w", since.Format(time.DateOnly), err)
	}
	rr, err := newRecordingReader(ap.cfg)
	if err != nil {
		return nil, 0, 0, err
	}
	out := map[string][]iga.Observation{}
	unread := 0
	for _, s := range sessions {
		obs, ok := sessionObservations(ctx, rr.store, s)
		if !ok {
			unread++
		}
		out[s.Identity] = append(out[s.Identity], obs...)
	}
	// sftp and forwards leave no exec channel: the admissions of the
	// window name every action that was used.
	uses, err := ap.store.AdmissionUses(ctx, since)
	if err != nil {
		return nil, 0, 0, err
	}
	for _, u := range uses {
		if (identity == "" || u.Identity == identity) && u.Action != iga.ActionConnect && u.Action != iga.ActionExec {
			out[u.Identity] = append(out[u.Identity], iga.Observation{Target: u.Target, Login: decisionLogin(u.Detail), Action: u.Action})
		}
	}
	return out, len(sessions), unread, nil
}

// decisionLogin is the login a decision's audit detail names.
func decisionLogin(detail string) string {
	for _, part := range strings.Split(detail, "; ") {
		if l, ok := strings.CutPrefix(part, "login "); ok {
			return l
		}
	}
	return ""
}

// sessionObservations is what one session did: its exec commands from
// its recording, its shell or sftp use from the recording's events, or,
// for a database session, a query. ok is false when the SSH recording
// could not be read: the session counts, its commands are missing.
func sessionObservations(ctx context.Context, store recorder.Store, s sqlstore.SessionRecord) (obs []iga.Observation, ok bool) {
	base := iga.Observation{Target: s.Target, Login: s.Login, Action: iga.ActionConnect}
	if s.Protocol != "ssh" {
		base.Action = iga.ActionQuery
		return []iga.Observation{base}, true
	}
	// Budget 0: only the commands, none of the streams' text.
	v, err := recorder.ReadExec(ctx, recorder.SessionSource(store, s.ID, s.StartedAt), 0)
	if err != nil {
		return []iga.Observation{base}, false
	}
	out := []iga.Observation{base}
	for _, ch := range v.Channels {
		out = append(out, iga.Observation{Target: s.Target, Login: s.Login, Action: iga.ActionExec, Command: ch.Command})
	}
	if v.Terminal {
		out = append(out, iga.Observation{Target: s.Target, Login: s.Login, Action: iga.ActionShell})
	}
	return out, true
}
