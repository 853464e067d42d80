package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/discover"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// discoveryActor is who proposes discovered identities in the audit trail
// when serve's schedule does.
const discoveryActor = "sallyport"

func newDiscoverCmd(g *globals) *cobra.Command {
	var target string
	var asJSON, propose bool
	c := &cobra.Command{
		Use:   "discover [--target T] [--json] [--propose]",
		Short: "Find standing access on the targets: login roles, database accounts, authorized keys",
		Long: `discover reads, never changes, each target: the login roles of a postgres
target and the accounts of a mysql target through its admin DSN, the accounts
with a login shell and their authorized_keys on an ssh target through its
discovery_login (a certificate of the bastion's own CA). What it finds is kept in
the registry (first seen, last seen, gone) and shown by iga report:
  NHI1  unmanaged_account        an account no identity's entitlements cover
  NHI7  standing_password        a database login with a password sallyport did not create
  NHI9  key_installed_on_target  a registered identity's key in a target's authorized_keys
A target that is down or refuses is reported and the others are still
discovered; the exit status is then 1.

--propose writes each account no identity covers to the registry as a proposed
identity without owner (discovered.<target>.<account>): denied until someone
owns, certifies and activates it, and listed by campaigns until then.`,
		Example: `  sallyport iga discover
  sallyport iga discover --target analytics --json | jq '.targets[].accounts[].account'
  sallyport iga discover --propose`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			out, err := runDiscovery(c.Context(), ap, target, propose, operator())
			if err != nil {
				return err
			}
			if asJSON {
				err = writeJSON(c.OutOrStdout(), out)
			} else {
				printDiscovery(c.OutOrStdout(), out)
			}
			if err != nil {
				return err
			}
			return out.failure()
		},
	}
	c.Flags().StringVar(&target, "target", "", "discover this target only")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	c.Flags().BoolVar(&propose, "propose", false, "write unknown accounts to the registry as proposed identities")
	return c
}

// discoveryOut is the JSON form of a discovery (docs/cli.md).
type discoveryOut struct {
	GeneratedAt time.Time       `json:"generated_at"`
	Targets     []discoveredOut `json:"targets"`
	Proposed    *iga.Proposal   `json:"proposed,omitempty"`
}

// discoveredOut is one target's result with what it changed.
type discoveredOut struct {
	discover.Result
	Change sqlstore.DiscoveryChange `json:"change"`
}

// runDiscovery discovers the configured targets (or one), keeps what each
// discovered target showed, and proposes unknown accounts when asked.
func runDiscovery(ctx context.Context, ap *app, target string, propose bool, actor string) (discoveryOut, error) {
	targets, closeAll, err := discoveryTargets(ap.cfg, target)
	if err != nil {
		return discoveryOut{}, err
	}
	defer closeAll()
	d := &discover.Discoverer{Targets: targets, Timeout: ap.cfg.Discovery.Timeout.D()}
	out := discoveryOut{GeneratedAt: time.Now().UTC()}
	var present []iga.DiscoveredAccount
	for _, res := range d.Run(ctx) {
		o := discoveredOut{Result: res}
		if res.OK() {
			if o.Change, err = ap.store.RecordDiscovery(ctx, res.Target, res.Accounts, res.At); err != nil {
				return discoveryOut{}, err
			}
			present = append(present, res.Accounts...)
		}
		if o.Accounts == nil {
			o.Accounts = []iga.DiscoveredAccount{}
		}
		out.Targets = append(out.Targets, o)
	}
	if err := firstSeen(ctx, ap, out.Targets); err != nil {
		return discoveryOut{}, err
	}
	if propose {
		p, err := ap.reg.Propose(ctx, present, actor)
		if err != nil {
			return discoveryOut{}, err
		}
		out.Proposed = &p
	}
	return out, nil
}

// firstSeen sets each account's first_seen to the registry's, which an
// account seen before keeps.
func firstSeen(ctx context.Context, ap *app, targets []discoveredOut) error {
	kept, err := ap.store.Discovered(ctx)
	if err != nil {
		return err
	}
	first := map[string]time.Time{}
	for _, a := range kept {
		first[a.Name()] = a.FirstSeen
	}
	for _, t := range targets {
		for i := range t.Accounts {
			t.Accounts[i].FirstSeen = first[t.Accounts[i].Name()]
		}
	}
	return nil
}

// failure is an error naming the targets not discovered, nil when all were.
func (o discoveryOut) failure() error {
	var failed []string
	for _, t := range o.Targets {
		if !t.OK() {
			failed = append(failed, t.Target)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d targets not discovered: %s", len(failed), len(o.Targets), strings.Join(failed, ", "))
}

func printDiscovery(w io.Writer, o discoveryOut) {
	fmt.Fprintf(w, "%-14s  %-8s  %-24s  %-8s  %s\n", "TARGET", "KIND", "ACCOUNT", "PASSWORD", "FACTS")
	for _, t := range o.Targets {
		for _, a := range t.Accounts {
			fmt.Fprintf(w, "%-14s  %-8s  %-24s  %-8s  %s\n", t.Target, t.Kind, a.Account, orDash(a.Password), accountFacts(a))
		}
	}
	for _, t := range o.Targets {
		switch {
		case !t.OK():
			fmt.Fprintf(w, "%s: not discovered: %s\n", t.Target, t.Error)
		default:
			fmt.Fprintf(w, "%s: %d account(s)%s\n", t.Target, len(t.Accounts), changeSummary(t.Change))
		}
		for _, n := range t.Notes {
			fmt.Fprintf(w, "%s: note: %s\n", t.Target, n)
		}
	}
	if p := o.Proposed; p != nil {
		fmt.Fprintf(w, "proposed %d identities (%d accounts already registered): %s\n", len(p.Created), p.Known, strings.Join(p.Created, ", "))
	}
}

// accountFacts is one line of what is known of an account: its
// attributes, its keys, and what could not be read.
func accountFacts(a iga.DiscoveredAccount) string {
	facts := append([]string{}, a.Attributes...)
	for _, k := range a.Keys {
		f := "key " + k.Type + " " + k.Fingerprint
		if len(k.Options) > 0 {
			f += " [" + strings.Join(k.Options, ",") + "]"
		}
		facts = append(facts, f)
	}
	for _, p := range a.Problems {
		facts = append(facts, "! "+p)
	}
	return strings.Join(facts, "; ")
}

func changeSummary(c sqlstore.DiscoveryChange) string {
	var s string
	if len(c.New) > 0 {
		s += "; new: " + strings.Join(c.New, ", ")
	}
	if len(c.Gone) > 0 {
		s += "; gone: " + strings.Join(c.Gone, ", ")
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
