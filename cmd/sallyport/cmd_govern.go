package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
)

func newShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "show IDENTITY",
		Short:   "Show an identity: state, owner, certification, entitlements, credentials, last use",
		Example: `  sallyport iga show svc-backup`,
		Args:    args(1, "IDENTITY"),
		RunE: func(c *cobra.Command, a []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			v, err := identityView(c, ap, a[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), v)
			}
			printIdentity(c.OutOrStdout(), v)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return c
}

// shownIdentity is what `iga show` prints (docs/cli.md).
type shownIdentity struct {
	ID            string             `json:"id"`
	Kind          iga.Kind           `json:"kind"`
	State         iga.State          `json:"state"`
	Owner         string             `json:"owner"`
	OwnerStatus   iga.PersonStatus   `json:"owner_status,omitempty"`
	Environment   string             `json:"environment,omitempty"`
	Holders       []string           `json:"holders,omitempty"`
	Certification *iga.Certification `json:"certification"`
	Entitlements  []iga.Entitlement  `json:"entitlements"`
	SSHKeys       []shownKey         `json:"ssh_keys"`
	OIDC          []iga.OIDCBinding  `json:"oidc"`
	LastUsed      *time.Time         `json:"last_used"`
	Grants        []iga.Grant        `json:"breakglass_grants,omitempty"`
}

type shownKey struct {
	Fingerprint string    `json:"fingerprint"`
	Type        string    `json:"type"`
	Expires     time.Time `json:"expires"`
}

func identityView(c *cobra.Command, ap *app, id string) (shownIdentity, error) {
	ctx := c.Context()
	ident, err := ap.store.Identity(ctx, id)
	if errors.Is(err, iga.ErrNotFound) {
		return shownIdentity{}, fmt.Errorf("identity %q is not in the registry (see 'sallyport iga export')", id)
	}
	if err != nil {
		return shownIdentity{}, err
	}
	v := shownIdentity{ID: ident.ID, Kind: ident.Kind, State: ident.State, Owner: ident.Owner,
		Environment: ident.Environment, Holders: ident.Holders, Certification: ident.Certification,
		Entitlements: ident.Entitlements, OIDC: ident.Credentials.OIDC}
	if p, err := ap.store.Person(ctx, ident.Owner); err == nil {
		v.OwnerStatus = p.Status
	}
	for _, k := range ident.Credentials.SSHKeys {
		v.SSHKeys = append(v.SSHKeys, describeKey(k))
	}
	if !ident.LastUsed.IsZero() {
		v.LastUsed = &ident.LastUsed
	}
	if ident.Kind == iga.KindBreakGlass {
		v.Grants, err = ap.store.Grants(ctx, ident.ID)
	}
	return v, err
}

func describeKey(k iga.SSHKey) shownKey {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.Key))
	if err != nil {
		return shownKey{Fingerprint: "unparseable", Expires: k.Expires}
	}
	return shownKey{Fingerprint: ssh.FingerprintSHA256(pub), Type: pub.Type(), Expires: k.Expires}
}

func printIdentity(w io.Writer, v shownIdentity) {
	fmt.Fprintf(w, "identity:      %s (%s)\n", v.ID, v.Kind)
	fmt.Fprintf(w, "state:         %s\n", v.State)
	owner := v.Owner
	if owner == "" {
		owner = "(none)"
	} else if v.OwnerStatus != "" {
		owner += " (" + string(v.OwnerStatus) + ")"
	} else {
		owner += " (not a known person)"
	}
	fmt.Fprintf(w, "owner:         %s\n", owner)
	if v.Environment != "" {
		fmt.Fprintf(w, "environment:   %s\n", v.Environment)
	}
	if len(v.Holders) > 0 {
		fmt.Fprintf(w, "holders:       %s\n", strings.Join(v.Holders, ", "))
	}
	fmt.Fprintf(w, "certification: %s\n", describeCert(v.Certification))
	fmt.Fprintf(w, "last used:     %s\n", describeTime(v.LastUsed))
	for _, e := range v.Entitlements {
		fmt.Fprintf(w, "entitlement:   %s as %s: %s%s%s\n", e.Target, e.Login, joinActions(e.Actions),
			optional(" until ", day(e.Expires)), optional(" from ", strings.Join(e.From, ",")))
		for _, cmd := range e.Commands {
			fmt.Fprintf(w, "  may run:     %s\n", iga.AuditQuote(cmd))
		}
	}
	for _, k := range v.SSHKeys {
		fmt.Fprintf(w, "ssh key:       %s %s%s\n", k.Type, k.Fingerprint, optional(" expires ", day(k.Expires)))
	}
	for _, o := range v.OIDC {
		fmt.Fprintf(w, "oidc:          %s %s\n", o.Issuer, o.Subject)
	}
	for _, gr := range v.Grants {
		fmt.Fprintf(w, "grant:         %s on %s by %s, %s – %s\n", gr.ID, gr.Target, gr.OpenedBy,
			gr.OpenedAt.Format(time.RFC3339), gr.ExpiresAt.Format(time.RFC3339))
	}
}

func describeCert(c *iga.Certification) string {
	switch {
	case c == nil:
		return "never certified"
	case c.Decision == iga.DecisionRevoke:
		return fmt.Sprintf("revoked by %s on %s", c.By, day(c.At))
	}
	return fmt.Sprintf("certified by %s on %s until %s", c.By, day(c.At), day(c.Until))
}

func describeTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Format(time.RFC3339)
}

func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

func optional(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func joinActions(as []iga.Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ",")
}

func newCertifyCmd(g *globals) *cobra.Command {
	var by, note, period string
	c := &cobra.Command{
		Use:   "certify IDENTITY --by PERSON [--for 90d] [--note TEXT]",
		Short: "Certify an identity: its owner confirms it should keep its access",
		Long: `Only the identity's current owner may certify it. The period may not exceed
certification.max_period (default 90d), which is also the default.`,
		Example: `  sallyport iga certify svc-backup --by alice@example.com --for 90d --note "quarterly review"`,
		Args:    args(1, "IDENTITY"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireFlags(c, "by"); err != nil {
				return err
			}
			var d time.Duration
			if period != "" {
				var err error
				if d, err = ParseDuration(period); err != nil {
					return usageErrorf("--for: %v", err)
				}
			}
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			cert, err := ap.reg.Certify(c.Context(), a[0], by, d, note)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s certified by %s until %s, for what it may do:\n", a[0], cert.By, day(cert.Until))
			// The owner certified these, down to the commands it may run.
			if id, err := ap.store.Identity(c.Context(), a[0]); err == nil {
				printEntitlements(c.OutOrStdout(), id.Entitlements)
			}
			return nil
		},
	}
	c.Flags().StringVar(&by, "by", "", "the owner certifying (person id)")
	c.Flags().StringVar(&period, "for", "", "how long the certification lasts, e.g. 30d (default: certification.max_period)")
	c.Flags().StringVar(&note, "note", "", "why, for the audit trail")
	return c
}

func newRevokeCmd(g *globals) *cobra.Command {
	var by, reason string
	c := &cobra.Command{
		Use:     "revoke IDENTITY --by PERSON --reason TEXT",
		Short:   "Revoke an identity's certification and suspend it",
		Example: `  sallyport iga revoke svc-report --by alice@example.com --reason "job retired"`,
		Args:    args(1, "IDENTITY"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireFlags(c, "by", "reason"); err != nil {
				return err
			}
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			if err := ap.reg.Revoke(c.Context(), a[0], by, reason); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s revoked and suspended\n", a[0])
			return nil
		},
	}
	c.Flags().StringVar(&by, "by", "", "who revokes (person id)")
	c.Flags().StringVar(&reason, "reason", "", "why, for the audit trail")
	return c
}

func newOffboardCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "offboard PERSON",
		Short: "Leaver: mark a person inactive; what they own is denied and gets an ownership-transfer item",
		Long: `Marks a person who left inactive, as the identity provider's deactivation does
over SCIM: every identity they own is denied owner_inactive at once (live
sessions end within seconds), each gets an ownership-transfer item assigned to
their active manager (when the IdP sent one) or else an admin, and an
owner_inactive alert goes to alerts.webhook_url. Offboarding someone already
inactive changes nothing.`,
		Example: `  sallyport iga offboard bob@example.com`,
		Args:    args(1, "PERSON"),
		RunE: func(c *cobra.Command, a []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			alerts, err := newCLIAlerts(c.Context(), ap.cfg, slog.Default())
			if err != nil {
				return err
			}
			off, err := ap.reg.OffboardPerson(c.Context(), a[0], operator(), alerts.sink())
			if err != nil {
				alerts.wait()
				return err
			}
			printOffboarding(c.OutOrStdout(), a[0], off)
			reportAlerts(c, alerts, len(off.Transfers))
			return nil
		},
	}
	return c
}

// printOffboarding tells the operator what offboarding did and what to do
// next.
func printOffboarding(w io.Writer, person string, off iga.Offboarding) {
	if off.Already {
		fmt.Fprintf(w, "%s was already inactive: nothing changed, no transfer item opened", person)
	} else {
		fmt.Fprintf(w, "%s is inactive", person)
	}
	fmt.Fprintf(w, "; %s orphaned", counted(len(off.Orphaned), "identity", "identities"))
	if len(off.Orphaned) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(off.Orphaned, ", "))
	}
	fmt.Fprintln(w)
	if len(off.Transfers) > 0 {
		fmt.Fprintf(w, "%s opened; each identity is denied owner_inactive until it has a new owner who certifies it:\n",
			counted(len(off.Transfers), "ownership-transfer item", "ownership-transfer items"))
		for _, t := range off.Transfers {
			fmt.Fprintf(w, "  %-15s  %-20s  assigned to %s\n", t.ID, t.Identity, orAnyAdmin(t.AssignedTo))
		}
	}
	if len(off.Orphaned) > 0 {
		fmt.Fprintln(w, "next: sallyport iga transfer IDENTITY --to PERSON, then that person certifies it: sallyport iga certify IDENTITY --by PERSON")
		fmt.Fprintln(w, "open items: sallyport iga transfers")
	}
}

// reportAlerts waits for the webhook to accept the owner_inactive alerts
// and says how it went; without a webhook they were logged.
func reportAlerts(c *cobra.Command, alerts *cliAlerts, raised int) {
	if raised == 0 {
		alerts.wait()
		return
	}
	if alerts == nil {
		fmt.Fprintf(c.OutOrStdout(), "%s logged (no alerts.webhook_url)\n", counted(raised, "owner_inactive alert", "owner_inactive alerts"))
		return
	}
	accepted, queued := alerts.wait()
	if accepted == raised {
		fmt.Fprintf(c.OutOrStdout(), "%s posted to the alert webhook\n", counted(accepted, "owner_inactive alert", "owner_inactive alerts"))
		return
	}
	fmt.Fprintf(c.ErrOrStderr(), "warning: the alert webhook accepted %d of %d owner_inactive alerts (%d queued) within %s; the transfer items stand: sallyport iga transfers\n",
		accepted, raised, queued, cliAlertWait)
}

// counted is n and the noun's form for n: "1 identity", "2 identities".
func counted(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
