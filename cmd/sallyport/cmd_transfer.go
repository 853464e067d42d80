package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/iga"
)

// This file is the ownership-transfer items of leavers (issue 22):
// `iga transfers` lists them, `iga transfer` assigns a new owner.

func newTransfersCmd(g *globals) *cobra.Command {
	var all, asJSON bool
	c := &cobra.Command{
		Use:   "transfers [--all] [--json]",
		Short: "List ownership-transfer items: identities whose owner left and that need a new one",
		Long: `When a person leaves (iga offboard, or the identity provider deactivates or
deletes them over SCIM), each identity they own is denied owner_inactive at once
and gets an ownership-transfer item, assigned to their manager (when the IdP sent
one and they are active) or else to an admin. Assigning a new active owner (iga
transfer) closes it; the new owner must then certify the identity before it is
admitted again. Listing only reads the registry: it never waits for writers and
works against a read-only replica.`,
		Example: `  sallyport iga transfers
  sallyport iga transfers --all --json`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			ts, err := ap.reg.Transfers(c.Context(), all)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), append([]iga.Transfer{}, ts...))
			}
			printTransfers(c.OutOrStdout(), ts)
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all", false, "closed items too")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

func printTransfers(w io.Writer, ts []iga.Transfer) {
	if len(ts) == 0 {
		fmt.Fprintln(w, "no ownership transfers waiting")
		return
	}
	fmt.Fprintf(w, "%-15s  %-20s  %-24s  %-24s  %-20s  %s\n", "ID", "IDENTITY", "FORMER OWNER", "ASSIGNED TO", "OPENED", "STATE")
	for _, t := range ts {
		state := "open"
		if !t.Open() {
			state = t.Outcome
			if t.NewOwner != "" {
				state += " to " + t.NewOwner
			}
		}
		fmt.Fprintf(w, "%-15s  %-20s  %-24s  %-24s  %-20s  %s\n", t.ID, t.Identity, t.From, orAnyAdmin(t.AssignedTo), t.Created.Format("2006-01-02 15:04"), state)
	}
}

// orAnyAdmin names the assignee of an item; empty means any admin.
func orAnyAdmin(to string) string {
	if to == "" {
		return "any admin"
	}
	return to
}

func newTransferCmd(g *globals) *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   "transfer IDENTITY --to PERSON",
		Short: "Give an identity a new owner, closing its ownership-transfer item",
		Long: `The new owner must be an active person. The identity stays denied
(not_certified) until the new owner certifies it: sallyport iga certify IDENTITY --by PERSON.`,
		Example: `  sallyport iga transfer svc-backup --to carol@example.com`,
		Args:    args(1, "IDENTITY"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireFlags(c, "to"); err != nil {
				return err
			}
			ap, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer ap.Close()
			t, err := ap.reg.TransferOwnership(c.Context(), a[0], to, operator())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s is now owned by %s", a[0], to)
			if t.ID != "" {
				fmt.Fprintf(c.OutOrStdout(), " (transfer %s closed)", t.ID)
			}
			fmt.Fprintf(c.OutOrStdout(), "; it is denied until %s certifies it: sallyport iga certify %s --by %s\n", to, a[0], to)
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "the new owner (person id)")
	return c
}
