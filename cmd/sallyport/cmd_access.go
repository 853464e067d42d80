package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/auditexport"
	"github.com/sallyport/sallyport/iga"
)

func newAuditCmd(g *globals) *cobra.Command {
	var identity, typ string
	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--identity X] [--type T] [--limit N] [--json]",
		Short: "List admission decisions and registry changes, oldest first",
		Example: `  sallyport audit list --identity svc-backup
  sallyport audit list --type decision --limit 20 --json`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			evs, err := ap.store.Audit(c.Context(), iga.AuditFilter{Identity: identity, Type: typ, Limit: limit})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), auditJSON(evs))
			}
			printAudit(c.OutOrStdout(), evs)
			return nil
		},
	}
	list.Flags().StringVar(&identity, "identity", "", "only events about this identity")
	list.Flags().StringVar(&typ, "type", "", "only events of this type (decision, login_failed, refusal, check, apply, certify, revoke, …)")
	list.Flags().IntVar(&limit, "limit", 0, "only the newest N events")
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	c := &cobra.Command{Use: "audit", Short: "Read the audit trail"}
	c.AddCommand(list)
	return c
}

// auditEvent is the JSON form of an audit event (docs/cli.md): the
// native form the audit export sends, too.
type auditEvent = auditexport.NativeEvent

func auditJSON(evs []iga.AuditEvent) []auditEvent {
	out := make([]auditEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, auditexport.Native(e))
	}
	return out
}

func printAudit(w io.Writer, evs []iga.AuditEvent) {
	for _, e := range evs {
		line := fmt.Sprintf("%s  %-16s %-14s %s", e.Time.Format(time.RFC3339), e.Type, e.Identity, e.Actor)
		if iga.IsVerdict(e.Type) {
			verdict := "allow"
			if !e.Allow {
				verdict = "deny " + reasonCodes(e.Reasons)
			}
			line += fmt.Sprintf("  %s %s: %s", e.Target, e.Action, verdict)
		}
		if e.Detail != "" {
			line += "  " + e.Detail
		}
		fmt.Fprintln(w, line)
	}
}

func reasonCodes(rs []iga.Reason) string {
	codes := make([]string, len(rs))
	for i, r := range rs {
		codes[i] = r.Code
	}
	return strings.Join(codes, ",")
}

func newTokenCmd(g *globals) *cobra.Command {
	var ttl, person string
	issue := &cobra.Command{
		Use:   "issue (IDENTITY | --person EMAIL) --ttl 15m",
		Short: "Mint a bastion token for an identity, or an API token for a person; prints the token alone",
		Long: `The token is a bearer credential: valid for any number of uses until it
expires, bound to one identity or one person, and never stored by sallyport.
Pass an identity's token as the password (PGPASSWORD, mysql -p) or to
'iga check --token -'. Send a person's token to the console's API as
'Authorization: Bearer TOKEN'; it acts with that person's roles and never
admits anyone through the bastion.`,
		Example: `  PGPASSWORD=$(sallyport token issue svc-report --ttl 15m) psql "host=bastion port=6432 user=svc-report dbname=analytics sslmode=require"
  curl -H "Authorization: Bearer $(sallyport token issue --person alice@example.com --ttl 15m)" https://bastion:8443/api/v1/me`,
		Args: tokenIssueArgs,
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireFlags(c, "ttl"); err != nil {
				return err
			}
			d, err := ParseDuration(ttl)
			if err != nil || d <= 0 {
				return usageErrorf("--ttl %q: want a positive duration such as 15m", ttl)
			}
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			var tok string
			if c.Flags().Changed("person") {
				tok, err = ap.reg.IssuePersonToken(c.Context(), person, operator(), d)
			} else {
				tok, err = ap.reg.IssueToken(c.Context(), a[0], operator(), d)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), tok)
			return nil
		},
	}
	issue.Flags().StringVar(&ttl, "ttl", "", "how long the token is valid, e.g. 15m")
	issue.Flags().StringVar(&person, "person", "", "mint a console API token for this person (e-mail) instead of an identity")
	c := &cobra.Command{Use: "token", Short: "Mint bastion and API tokens"}
	c.AddCommand(issue)
	return c
}

// tokenIssueArgs takes an IDENTITY argument or --person, not both.
func tokenIssueArgs(c *cobra.Command, a []string) error {
	byPerson := c.Flags().Changed("person")
	if len(a) > 1 || byPerson == (len(a) == 1) {
		return usageErrorf("%s takes IDENTITY or --person EMAIL, not both (see '%s --help')", c.CommandPath(), c.CommandPath())
	}
	return nil
}

func newBreakglassCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "breakglass",
		Short: "Open and close time-bound emergency access on break-glass accounts",
	}
	c.AddCommand(newBreakglassOpenCmd(g), newBreakglassCloseCmd(g))
	return c
}

func newBreakglassOpenCmd(g *globals) *cobra.Command {
	var req iga.GrantRequest
	var dur string
	var asJSON bool
	c := &cobra.Command{
		Use:   "open IDENTITY --target T --reason TEXT --by PERSON [--ticket ID] [--for 30m] [--json]",
		Short: "Open a break-glass grant (a listed holder, a reason, a time limit)",
		Long: `Only a person listed as a holder of the break-glass identity may open a grant.
The reason must say why (at least 10 characters); the duration may not exceed
breakglass.max_duration. Every session during the grant is recorded and flagged.`,
		Example: `  sallyport breakglass open bg-db --target analytics --by carol@example.com \
      --reason "INC-4411 primary is read-only" --ticket INC-4411 --for 30m`,
		Args: args(1, "IDENTITY"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireFlags(c, "target", "reason", "by"); err != nil {
				return err
			}
			req.Identity = a[0]
			if dur != "" {
				d, err := ParseDuration(dur)
				if err != nil {
					return usageErrorf("--for: %v", err)
				}
				req.For = d
			}
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			gr, err := ap.reg.OpenGrant(c.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), grantJSON(gr))
			}
			fmt.Fprintf(c.OutOrStdout(), "grant %s open: %s on %s until %s\n", gr.ID, gr.Identity, gr.Target, gr.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	c.Flags().StringVar(&req.Target, "target", "", "target the grant opens")
	c.Flags().StringVar(&req.Reason, "reason", "", "why (at least 10 characters)")
	c.Flags().StringVar(&req.By, "by", "", "the holder opening the grant (person id)")
	c.Flags().StringVar(&req.Ticket, "ticket", "", "incident or change ticket")
	c.Flags().StringVar(&dur, "for", "", "how long, e.g. 30m (default 30m, at most breakglass.max_duration)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the grant as a JSON object")
	return c
}

// grantJSON is the JSON form of a grant (docs/cli.md).
type grantOut struct {
	ID        string     `json:"id"`
	Identity  string     `json:"identity"`
	Target    string     `json:"target"`
	OpenedBy  string     `json:"opened_by"`
	Reason    string     `json:"reason"`
	Ticket    string     `json:"ticket,omitempty"`
	OpenedAt  time.Time  `json:"opened_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	ClosedAt  *time.Time `json:"closed_at"`
}

func grantJSON(g iga.Grant) grantOut {
	o := grantOut{ID: g.ID, Identity: g.Identity, Target: g.Target, OpenedBy: g.OpenedBy, Reason: g.Reason,
		Ticket: g.Ticket, OpenedAt: g.OpenedAt, ExpiresAt: g.ExpiresAt}
	if !g.ClosedAt.IsZero() {
		o.ClosedAt = &g.ClosedAt
	}
	return o
}

func newBreakglassCloseCmd(g *globals) *cobra.Command {
	var by string
	c := &cobra.Command{
		Use:   "close GRANT",
		Short: "Close a break-glass grant before it expires (GRANT last: the newest open one)",
		Example: `  sallyport breakglass close bg-1a2b3c4d
  sallyport breakglass close last`,
		Args: args(1, "GRANT"),
		RunE: func(c *cobra.Command, a []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			if by == "" {
				by = operator()
			}
			id, err := grantID(c.Context(), ap, a[0])
			if err != nil {
				return err
			}
			gr, err := ap.reg.CloseGrant(c.Context(), id, by)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "grant %s closed at %s\n", gr.ID, gr.ClosedAt.Format(time.RFC3339))
			return nil
		},
	}
	c.Flags().StringVar(&by, "by", "", "who closes it (default: the operator running the command)")
	return c
}

// grantID resolves "last" to the newest open grant.
func grantID(ctx context.Context, ap *app, arg string) (string, error) {
	if arg != "last" {
		return arg, nil
	}
	grants, err := ap.store.Grants(ctx, "")
	if err != nil {
		return "", err
	}
	now := time.Now()
	for i := len(grants) - 1; i >= 0; i-- {
		if grants[i].Open(now) {
			return grants[i].ID, nil
		}
	}
	return "", errors.New("no open break-glass grant (see 'sallyport iga show IDENTITY')")
}

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func buildVersion() (ver, commit string) {
	ver, commit = version, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	return ver, commit
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  args(0, "no arguments"),
		Run: func(c *cobra.Command, _ []string) {
			v, commit := buildVersion()
			fmt.Fprintf(c.OutOrStdout(), "sallyport %s (commit %s)\n", v, commit)
		},
	}
}
