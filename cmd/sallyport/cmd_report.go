package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/iga"
)

func newReportCmd(g *globals) *cobra.Command {
	var window, keyAge string
	var opts iga.HygieneOptions
	var asJSON bool
	c := &cobra.Command{
		Use:   "report [--window 90d] [--key-age 365d] [--max-sources 3] [--json]",
		Short: "Hygiene report: risky identities, tagged with OWASP Non-Human Identities Top 10 ids",
		Long: `report reads the registry, the audit trail, the session index and the exec
commands of the window's recordings, and lists:
  NHI1  dormant identities (no session in the window), identities without an
        active owner or a current certification
  NHI5  entitled actions never used in the window; exec without commands by an
        identity that ran fewer than 5 distinct commands (exec_unrestricted:
        see iga suggest); allowed interpreters that read their program from
        stdin (stdin_interpreter)
  NHI7  SSH keys that never expire or live longer than --key-age, and
        credentials unchanged for longer than it
  NHI9  one credential admitted from more than --max-sources addresses; one
        SSH key bound to several identities
  NHI10 interactive shells opened by pipeline or workload identities
From what iga discover last saw on the targets: accounts no identity covers
(NHI1 unmanaged_account), database logins with a password sallyport did not
create (NHI7 standing_password), registered keys in a target's authorized_keys
(NHI9 key_installed_on_target).
The exit status is 0 whatever it finds.`,
		Example: `  sallyport iga report
  sallyport iga report --key-age 180d --json | jq '.findings[] | select(.nhi == "NHI7")'`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			var err error
			if opts.Window, err = optionalDuration(window); err != nil {
				return usageErrorf("--window: %v", err)
			}
			if opts.MaxKeyAge, err = optionalDuration(keyAge); err != nil {
				return usageErrorf("--key-age: %v", err)
			}
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			window := opts.Window
			if window <= 0 {
				window = 90 * 24 * time.Hour // the report's default
			}
			// exec_unrestricted needs the commands run: the recordings'.
			if opts.Observed, _, _, err = observe(c.Context(), ap, "", time.Now().Add(-window)); err != nil {
				return err
			}
			fs, err := ap.reg.Hygiene(c.Context(), ap.store, opts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), reportJSON(fs))
			}
			printFindings(c.OutOrStdout(), fs)
			return nil
		},
	}
	c.Flags().StringVar(&window, "window", "", "how far back use counts (default 90d)")
	c.Flags().StringVar(&keyAge, "key-age", "", "longest acceptable SSH key or binding age (default 365d)")
	c.Flags().IntVar(&opts.MaxSources, "max-sources", 0, "source addresses one credential may come from (default 3)")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return c
}

func optionalDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return ParseDuration(s)
}

// hygieneOut is the JSON form of the report (docs/cli.md).
type hygieneOut struct {
	GeneratedAt time.Time      `json:"generated_at"`
	Counts      map[string]int `json:"counts"` // findings per NHI id
	Findings    []iga.Finding  `json:"findings"`
}

func reportJSON(fs []iga.Finding) hygieneOut {
	o := hygieneOut{GeneratedAt: time.Now().UTC(), Counts: map[string]int{}, Findings: fs}
	if o.Findings == nil {
		o.Findings = []iga.Finding{}
	}
	for _, f := range fs {
		o.Counts[f.NHI]++
	}
	return o
}

func printFindings(w io.Writer, fs []iga.Finding) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "no findings")
		return
	}
	fmt.Fprintf(w, "%-5s  %-18s  %-20s  %s\n", "NHI", "FINDING", "IDENTITY", "DETAIL")
	for _, f := range fs {
		fmt.Fprintf(w, "%-5s  %-18s  %-20s  %s\n", f.NHI, f.Kind, f.Identity, f.Detail)
	}
	fmt.Fprintf(w, "%d findings\n", len(fs))
}
