package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/iga"
)

// withGovernanceCmds adds the campaign and report commands to `iga`.
func withGovernanceCmds(igaCmd *cobra.Command, g *globals) *cobra.Command {
	igaCmd.AddCommand(newCampaignCmd(g), newReportCmd(g))
	return igaCmd
}

func newCampaignCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "campaign",
		Short: "Certification campaigns: owners certify or revoke what they own, by a deadline",
		Long: `A campaign lists every identity in scope (one item each) for its owner to decide:
certify (a new certification for certification.max_period) or revoke (the identity
is suspended and its live sessions end within 5 seconds). Nobody but the owner
may decide an item. Closing a campaign reports the items left undecided; they
keep their current certification.`,
	}
	c.AddCommand(newCampaignStartCmd(g), newCampaignListCmd(g), newCampaignShowCmd(g),
		newCampaignDecideCmd(g), newCampaignCloseCmd(g))
	return c
}

func newCampaignStartCmd(g *globals) *cobra.Command {
	var req iga.CampaignRequest
	var due string
	var asJSON bool
	c := &cobra.Command{
		Use:   "start --name N [--scope all|owner:PERSON|target:T|expiring:30d] --due 14d [--json]",
		Short: "Start a campaign over the identities in scope",
		Example: `  sallyport iga campaign start --name "2026-Q4" --due 14d
  sallyport iga campaign start --name "expiring soon" --scope expiring:30d --due 7d --json`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlags(c, "name", "due"); err != nil {
				return err
			}
			d, err := ParseDuration(due)
			if err != nil {
				return usageErrorf("--due: %v", err)
			}
			req.Due, req.By = d, operator()
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			rep, err := ap.reg.StartCampaign(c.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), campaignJSON(rep))
			}
			fmt.Fprintf(c.OutOrStdout(), "campaign %s started: %d identities to decide by %s\n", rep.Campaign.ID,
				len(rep.Items), rep.Campaign.DueAt.Format(time.RFC3339))
			printItems(c.OutOrStdout(), rep.Items)
			return nil
		},
	}
	c.Flags().StringVar(&req.Name, "name", "", "the campaign's name")
	c.Flags().StringVar(&req.Scope, "scope", "all", "all, owner:PERSON, target:T or expiring:30d")
	c.Flags().StringVar(&due, "due", "", "deadline from now, e.g. 14d")
	c.Flags().BoolVar(&asJSON, "json", false, "print the campaign as a JSON object")
	return c
}

// campaignOut is the JSON form of a campaign (docs/cli.md).
type campaignOut struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scope     string     `json:"scope"`
	State     string     `json:"state"` // open, closed
	StartedBy string     `json:"started_by"`
	StartedAt time.Time  `json:"started_at"`
	DueAt     time.Time  `json:"due_at"`
	ClosedAt  *time.Time `json:"closed_at"`
	ClosedBy  string     `json:"closed_by,omitempty"`
	Overdue   bool       `json:"overdue"`
	Items     []itemOut  `json:"items"`
	Certified []string   `json:"certified"`
	Revoked   []string   `json:"revoked"`
	Undecided []string   `json:"undecided"`
}

type itemOut struct {
	Identity  string     `json:"identity"`
	Reviewer  string     `json:"reviewer"`
	Decision  string     `json:"decision"` // "" while undecided
	DecidedBy string     `json:"decided_by,omitempty"`
	DecidedAt *time.Time `json:"decided_at"`
	Note      string     `json:"note,omitempty"`
	// Entitlements are what the identity may do now: what certify confirms.
	Entitlements []entitlementOut `json:"entitlements"`
}

// entitlementOut is one entitlement of a campaign item (docs/cli.md).
type entitlementOut struct {
	Target   string       `json:"target"`
	Login    string       `json:"login"`
	Actions  []iga.Action `json:"actions"`
	Commands []string     `json:"commands,omitempty"` // empty: exec of any command
	Expires  *time.Time   `json:"expires,omitempty"`
	From     []string     `json:"from,omitempty"`
}

func entitlementsJSON(es []iga.Entitlement) []entitlementOut {
	out := []entitlementOut{}
	for _, e := range es {
		eo := entitlementOut{Target: e.Target, Login: e.Login, Actions: e.Actions, Commands: e.Commands, From: e.From}
		if !e.Expires.IsZero() {
			eo.Expires = &e.Expires
		}
		out = append(out, eo)
	}
	return out
}

func campaignJSON(rep iga.CampaignReport) campaignOut {
	c := rep.Campaign
	o := campaignOut{ID: c.ID, Name: c.Name, Scope: c.Scope, State: "open", StartedBy: c.StartedBy, StartedAt: c.StartedAt,
		DueAt: c.DueAt, ClosedBy: c.ClosedBy, Overdue: rep.Overdue, Items: []itemOut{},
		Certified: orEmpty(rep.Certified), Revoked: orEmpty(rep.Revoked), Undecided: orEmpty(rep.Undecided)}
	if !c.ClosedAt.IsZero() {
		o.State, o.ClosedAt = "closed", &c.ClosedAt
	}
	for _, it := range rep.Items {
		io := itemOut{Identity: it.Identity, Reviewer: it.Reviewer, Decision: it.Decision, DecidedBy: it.DecidedBy, Note: it.Note,
			Entitlements: entitlementsJSON(it.Entitlements)}
		if !it.DecidedAt.IsZero() {
			io.DecidedAt = &it.DecidedAt
		}
		o.Items = append(o.Items, io)
	}
	return o
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func printItems(w io.Writer, items []iga.CampaignItem) {
	fmt.Fprintf(w, "  %-20s  %-24s  %s\n", "IDENTITY", "REVIEWER", "DECISION")
	for _, it := range items {
		fmt.Fprintf(w, "  %-20s  %-24s  %s\n", it.Identity, orText(it.Reviewer, "(no owner)"), orText(it.Decision, "undecided"))
		printEntitlements(w, it.Entitlements)
	}
}

// printEntitlements lists, under an item, what the identity may do: the
// owner certifies these, down to the commands it may run.
func printEntitlements(w io.Writer, es []iga.Entitlement) {
	if len(es) == 0 {
		fmt.Fprintf(w, "      (no entitlements)\n")
	}
	for _, e := range es {
		fmt.Fprintf(w, "      %s as %s: %s%s%s\n", e.Target, e.Login, joinActions(e.Actions),
			optional(" until ", day(e.Expires)), optional(" from ", strings.Join(e.From, ",")))
		for _, cmd := range e.Commands {
			fmt.Fprintf(w, "        may run: %s\n", iga.AuditQuote(cmd))
		}
		if len(e.Commands) == 0 && slices.Contains(e.Actions, iga.ActionExec) {
			fmt.Fprintf(w, "        may run: any command\n")
		}
	}
}

func orText(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func newCampaignListCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "list [--json]",
		Short:   "List campaigns, oldest first",
		Example: `  sallyport iga campaign list`,
		Args:    args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			cs, err := ap.store.Campaigns(c.Context())
			if err != nil {
				return err
			}
			out := []campaignOut{}
			for _, cp := range cs {
				rep, err := ap.reg.CampaignReport(c.Context(), cp.ID)
				if err != nil {
					return err
				}
				out = append(out, campaignJSON(rep))
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), out)
			}
			printCampaigns(c.OutOrStdout(), out)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

func printCampaigns(w io.Writer, cs []campaignOut) {
	fmt.Fprintf(w, "%-11s  %-20s  %-24s  %-6s  %-20s  %s\n", "ID", "NAME", "SCOPE", "STATE", "DUE", "DECIDED")
	for _, c := range cs {
		state := c.State
		if c.Overdue {
			state += "!"
		}
		fmt.Fprintf(w, "%-11s  %-20s  %-24s  %-6s  %-20s  %d/%d\n", c.ID, c.Name, c.Scope, state,
			c.DueAt.Format(time.RFC3339), len(c.Certified)+len(c.Revoked), len(c.Items))
	}
}

func newCampaignShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "show ID [--json]",
		Short:   "Show a campaign's items and decisions",
		Example: `  sallyport iga campaign show cp-1a2b3c4d`,
		Args:    args(1, "ID"),
		RunE: func(c *cobra.Command, a []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			rep, err := ap.reg.CampaignReport(c.Context(), a[0])
			if err != nil {
				return err
			}
			return printReport(c.OutOrStdout(), rep, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the campaign as a JSON object")
	return c
}

func printReport(w io.Writer, rep iga.CampaignReport, asJSON bool) error {
	if asJSON {
		return writeJSON(w, campaignJSON(rep))
	}
	c := rep.Campaign
	fmt.Fprintf(w, "campaign %s %q, scope %s, started %s by %s, due %s\n", c.ID, c.Name, c.Scope,
		c.StartedAt.Format(time.RFC3339), c.StartedBy, c.DueAt.Format(time.RFC3339))
	if !c.ClosedAt.IsZero() {
		fmt.Fprintf(w, "closed %s by %s\n", c.ClosedAt.Format(time.RFC3339), c.ClosedBy)
	}
	printItems(w, rep.Items)
	fmt.Fprintln(w, rep.Summary())
	if rep.Overdue {
		fmt.Fprintf(w, "past its deadline with undecided items: %s\n", strings.Join(rep.Undecided, ", "))
	}
	return nil
}

func newCampaignDecideCmd(g *globals) *cobra.Command {
	var d iga.CampaignDecision
	c := &cobra.Command{
		Use:   "decide ID IDENTITY --by PERSON --decision certify|revoke [--note TEXT]",
		Short: "Certify or revoke one identity of a campaign (its owner only)",
		Example: `  sallyport iga campaign decide cp-1a2b3c4d svc-backup --by alice@example.com --decision certify
  sallyport iga campaign decide cp-1a2b3c4d svc-report --by alice@example.com --decision revoke --note "job retired"`,
		Args: args(2, "ID and IDENTITY"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireFlags(c, "by", "decision"); err != nil {
				return err
			}
			if d.Decision != iga.DecisionCertify && d.Decision != iga.DecisionRevoke {
				return usageErrorf("--decision %q: want certify or revoke", d.Decision)
			}
			d.Campaign, d.Identity = a[0], a[1]
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			it, err := ap.reg.DecideCampaignItem(c.Context(), d)
			if err != nil {
				return err
			}
			msg := "certified"
			if it.Decision == iga.DecisionRevoke {
				msg = "revoked and suspended; its live sessions end within 5 seconds"
			}
			fmt.Fprintf(c.OutOrStdout(), "%s %s by %s in campaign %s\n", it.Identity, msg, it.DecidedBy, it.Campaign)
			printEntitlements(c.OutOrStdout(), it.Entitlements)
			return nil
		},
	}
	c.Flags().StringVar(&d.By, "by", "", "the reviewer: the identity's owner (person id)")
	c.Flags().StringVar(&d.Decision, "decision", "", "certify or revoke")
	c.Flags().StringVar(&d.Note, "note", "", "why, for the audit trail")
	return c
}

func newCampaignCloseCmd(g *globals) *cobra.Command {
	var asJSON bool
	var out string
	c := &cobra.Command{
		Use:   "close ID [--json] [-o FILE]",
		Short: "Close a campaign and write its report; undecided items keep their state",
		Example: `  sallyport iga campaign close cp-1a2b3c4d
  sallyport iga campaign close cp-1a2b3c4d --json -o campaign-report.json`,
		Args: args(1, "ID"),
		RunE: func(c *cobra.Command, a []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			rep, err := ap.reg.CloseCampaign(c.Context(), a[0], operator())
			if err != nil {
				return err
			}
			var buf strings.Builder
			if err := printReport(&buf, rep, asJSON); err != nil {
				return err
			}
			return writeOutput(c.OutOrStdout(), out, []byte(buf.String()))
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "write the report as a JSON object")
	c.Flags().StringVarP(&out, "output", "o", "", "write the report to FILE (default stdout)")
	return c
}
