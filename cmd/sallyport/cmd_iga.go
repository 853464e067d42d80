package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
)

func newIGACmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "iga",
		Short: "Govern the registry: identities, owners, certifications, entitlements",
		Long: `The bundled IGA registry decides who may use the bastion. An identity is
admitted only when it is active, of a non-human (or break-glass) kind, owned by
an active person, certified by that owner, and entitled to the target and action.`,
	}
	c.AddCommand(newApplyCmd(g), newExportCmd(g), newShowCmd(g), newCheckCmd(g), newSuggestCmd(g),
		newCertifyCmd(g), newRevokeCmd(g), newOffboardCmd(g), newDiscoverCmd(g),
		newTransfersCmd(g), newTransferCmd(g))
	return c
}

func newApplyCmd(g *globals) *cobra.Command {
	var file string
	var prune, force bool
	c := &cobra.Command{
		Use:   "apply -f FILE [--prune] [--force]",
		Short: "Import a registry file (idempotent; all problems reported at once)",
		Long: `Apply upserts the people and identities of a registry file in one transaction.
Applying the same file twice changes nothing. A file with any problem is refused
whole, with every problem listed as file:line. Entitlements naming a target the
config lacks are kept and reported as warnings.

A file never silently undoes a later decision in the registry. When the registry
revoked an identity (iga revoke, a campaign) after the file's certification, or
the file has none, and the file would certify it or set it active again, apply
keeps the revocation and the suspended state; when the registry certified an
identity after the file's revocation, it keeps the certification. Each such
conflict is printed on stderr with the identity and both dates, the rest of the
file is applied, and apply exits 1. Put the registry's decision in the file
(iga export writes it) or date the file's decision after it.

--force applies the file's older decisions anyway; each override is an audit
event of type apply_force. Tokens issued before a revocation stay refused even
then.`,
		Example: `  sallyport iga apply -f registry.yaml
  sallyport iga apply -f registry.yaml --prune   # deprovision identities missing from the file
  sallyport iga apply -f registry.yaml --force   # override later revocations (audited)`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlags(c, "file"); err != nil {
				return err
			}
			data, err := readInput(c.InOrStdin(), file)
			if err != nil {
				return err
			}
			// A file with problems still comes back when its YAML decoded, so
			// Apply can add what only the registry knows and list everything.
			f, err := iga.ParseFile(file, data)
			if f == nil {
				return err
			}
			a, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			res, err := a.reg.Apply(c.Context(), f, iga.ApplyOptions{Prune: prune, Force: force, Actor: operator()})
			if err != nil {
				return err
			}
			printApplyResult(c.OutOrStdout(), c.ErrOrStderr(), res)
			return conflictsError(f.Name, res.Unresolved())
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "registry file (- for stdin)")
	c.Flags().BoolVar(&prune, "prune", false, "deprovision identities that are not in the file")
	c.Flags().BoolVar(&force, "force", false, "apply the file's decisions even over later registry decisions (audited as apply_force)")
	return c
}

// conflictsError is apply's exit 1 when it kept registry decisions against
// the file; the conflicts themselves are already on stderr.
func conflictsError(file string, kept []iga.Conflict) error {
	if len(kept) == 0 {
		return nil
	}
	ids := make([]string, len(kept))
	for i, c := range kept {
		ids[i] = c.Identity
	}
	return fmt.Errorf("apply %s: kept the registry's later decisions for %s against the file (the rest was applied); "+
		"update the file from `sallyport iga export`, or re-run with --force to override them", file, strings.Join(ids, ", "))
}

func printApplyResult(out, errw io.Writer, res iga.ApplyResult) {
	for _, l := range []struct {
		what string
		ids  []string
	}{{"created", res.Created}, {"updated", res.Updated}, {"deprovisioned", res.Deprovisioned}} {
		if len(l.ids) > 0 {
			fmt.Fprintf(out, "%s: %s\n", l.what, strings.Join(l.ids, ", "))
		}
	}
	fmt.Fprintf(out, "%d created, %d updated, %d unchanged, %d deprovisioned\n",
		len(res.Created), len(res.Updated), len(res.Unchanged), len(res.Deprovisioned))
	for _, w := range res.Warnings {
		fmt.Fprintf(errw, "warning: %s\n", w)
	}
	for _, c := range res.Conflicts {
		what := "conflict"
		if c.Forced {
			what = "forced"
		}
		fmt.Fprintf(errw, "%s: %s\n", what, c)
	}
}

func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %w", err)
	}
	return data, nil
}

func newExportCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export [-o FILE]",
		Short: "Write the registry back out as a registry file (sorted, deterministic)",
		Example: `  sallyport iga export > registry.yaml
  sallyport iga export -o registry.yaml`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			doc, err := a.reg.Export(c.Context())
			if err != nil {
				return err
			}
			data, err := iga.MarshalDoc(doc)
			if err != nil {
				return err
			}
			return writeOutput(c.OutOrStdout(), out, data)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of stdout")
	return c
}

func writeOutput(stdout io.Writer, path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %w", err)
	}
	return nil
}

func newCheckCmd(g *globals) *cobra.Command {
	var action, from, keyFile, token, command string
	var asJSON bool
	c := &cobra.Command{
		Use:   "check IDENTITY TARGET [--action A] [--command CMD] [--from IP] [--key FILE|--token T] [--json]",
		Short: "Dry-run admission: would IDENTITY be let into TARGET? (exit 0 allow, 1 deny)",
		Long: `Check evaluates every admission rule and prints every failing reason with its
code. The credential rule is checked only when --key or --token is given; the
source-address rule only when --from is given. The check is audited.

--action defaults to shell for ssh targets and query for database targets.
--command is the exec command line, checked against the entitlement's
commands (docs/registry.md); without it, a check of a restricted exec lists
the commands allowed. Allowed interpreters that read their program from
stdin (bash -s, python3 -) are warned about on stderr.
--token - reads the token from stdin, which keeps it out of the process list.`,
		Example: `  sallyport iga check svc-backup web-01 --action exec
  sallyport iga check svc-backup web-01 --action exec --command "/usr/local/bin/backup.sh nightly"
  sallyport iga check svc-backup web-01 --action exec --from 10.1.2.3 --key id_ed25519.pub --json
  echo "$TOKEN" | sallyport iga check ci-deploy analytics --token -`,
		Args: args(2, "IDENTITY and TARGET"),
		RunE: func(c *cobra.Command, a []string) error {
			if keyFile != "" && token != "" {
				return usageErrorf("give --key or --token, not both")
			}
			req, err := checkRequest(c, a[0], a[1], action, from, keyFile, token)
			if err != nil {
				return err
			}
			if c.Flags().Changed("command") {
				if req.Action != "" && req.Action != iga.ActionExec {
					return usageErrorf("--command goes with --action exec")
				}
				req.Action, req.Command, req.Asked = iga.ActionExec, command, command
			}
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			if req.Action == "" {
				req.Action = defaultAction(ap.cfg, req.Target)
			}
			d, err := ap.reg.Decide(c.Context(), req)
			if err != nil {
				return err
			}
			warnInterpreters(c, ap, d)
			return printDecision(c.OutOrStdout(), d, asJSON)
		},
	}
	c.Flags().StringVar(&action, "action", "", "shell, exec, sftp, forward or query")
	c.Flags().StringVar(&command, "command", "", "the exec command line (implies --action exec)")
	c.Flags().StringVar(&from, "from", "", "source IP address of the caller")
	c.Flags().StringVar(&keyFile, "key", "", "SSH public key file the caller presents")
	c.Flags().StringVar(&token, "token", "", "token the caller presents (- reads stdin)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the decision as JSON")
	return c
}

func checkRequest(c *cobra.Command, id, target, action, from, keyFile, token string) (iga.Request, error) {
	req := iga.Request{Identity: id, Target: target, Action: iga.Action(action), DryRun: true}
	if action != "" && !validAction(iga.Action(action)) {
		return req, usageErrorf("--action %q: want shell, exec, sftp, forward or query", action)
	}
	if from != "" {
		addr, err := netip.ParseAddr(from)
		if err != nil {
			return req, usageErrorf("--from %q: not an IP address", from)
		}
		req.Source = addr
	}
	cred, err := presentedCredential(c.InOrStdin(), keyFile, token)
	if err != nil {
		return req, err
	}
	req.Credential = cred
	return req, nil
}

func presentedCredential(stdin io.Reader, keyFile, token string) (*iga.Credential, error) {
	switch {
	case keyFile != "":
		data, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("read --key: %w", err)
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			return nil, usageErrorf("--key %s: not an SSH public key (want the .pub file): %v", keyFile, err)
		}
		return &iga.Credential{SSHKey: pub}, nil
	case token == "-":
		data, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("read token from stdin: %w", err)
		}
		return &iga.Credential{Token: strings.TrimSpace(string(data))}, nil
	case token != "":
		return &iga.Credential{Token: token}, nil
	}
	return nil, nil
}

func validAction(a iga.Action) bool {
	for _, x := range iga.Actions {
		if a == x {
			return true
		}
	}
	return false
}

func defaultAction(cfg *Config, target string) iga.Action {
	if t, ok := cfg.Target(target); ok && t.Kind != "ssh" {
		return iga.ActionQuery
	}
	return iga.ActionShell
}

func printDecision(w io.Writer, d iga.Decision, asJSON bool) error {
	if asJSON {
		if err := writeJSON(w, d); err != nil {
			return err
		}
	} else {
		printDecisionText(w, d)
	}
	if !d.Allow {
		return &exitError{code: exitNegative, err: d.Err(), quiet: true}
	}
	return nil
}

// warnInterpreters says on stderr which of the identity's allowed
// commands on the target run an interpreter reading stdin.
func warnInterpreters(c *cobra.Command, ap *app, d iga.Decision) {
	id, err := ap.store.Identity(c.Context(), d.Identity)
	if err != nil {
		return // an unknown identity: the decision says so
	}
	var on []iga.Entitlement
	for _, e := range id.Entitlements {
		if e.Target == d.Target {
			on = append(on, e)
		}
	}
	for _, w := range iga.InterpreterWarnings(on) {
		fmt.Fprintf(c.ErrOrStderr(), "warning: %s\n", w)
	}
}

func printDecisionText(w io.Writer, d iga.Decision) {
	if d.Allow {
		fmt.Fprintf(w, "allow: %s may %s on %s as %s\n", d.Identity, d.Action, d.Target, d.Login)
		if d.ForceCommand != "" {
			fmt.Fprintf(w, "  the certificate forces the command %s\n", iga.AuditQuote(d.ForceCommand))
		}
		if len(d.Commands) > 0 {
			fmt.Fprintf(w, "  only these commands (give --command to check one):\n")
			for _, cmd := range d.Commands {
				fmt.Fprintf(w, "    %s\n", iga.AuditQuote(cmd))
			}
		}
		return
	}
	fmt.Fprintf(w, "deny: %s may not %s on %s\n", d.Identity, d.Action, d.Target)
	for _, r := range d.Reasons {
		fmt.Fprintf(w, "  %s: %s\n", r.Code, r.Message)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
