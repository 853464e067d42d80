package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/search"
)

func newSessionsSearchCmd(g *globals) *cobra.Command {
	var q search.Query
	var since, until string
	var where []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "search TEXT [--identity ID] [--target T] [--protocol P] [--since D] [--until D] [--breakglass] [--where W,…] [--limit N] [--json]",
		Short: "Find sessions by what happened in them: commands, scripts, output, queries, files",
		Long: `search looks TEXT up in the index of what happened inside sessions, which
'sallyport serve' keeps from the recordings (docs/search.md):
  command   exec command lines, and commands typed in a terminal
  stdin     what an exec channel read (the script 'bash -s' ran)
  output    terminal and exec output, escape sequences removed
  input     keys typed in a terminal (recordings.record_input on)
  query     PostgreSQL and MySQL statements, bound parameters, outcome
  file      sftp and scp paths, with the file's SHA-256
  forward   port forward destinations (host:port)
  note      notes the bastion wrote into the recording
Exec streams that are not text are not indexed, but their SHA-256 is: search
for a hash to find the session that moved those bytes.

Every word of TEXT must occur in a hit, matched as typed, case aside, where a
word starts; the last part is a prefix: '/etc/shadow', 'payments.acc' and
'10.1.2.3' find what they say. Quote words to keep them together in that order:
'"drop table"'. Operators and wildcards (OR, NEAR, *, %) are plain text. Hits
where every word matched whole come first, then prefix matches, newest first,
--limit of them (default 50); the match is marked [[like this]].
--since and --until take a duration back from now (24h, 30d) or a date
(2026-12-01, RFC 3339) and keep hits that happened in between.

When the index has not caught up with the last sessions that ended, search says
so: what they did may be missing. 'sallyport recording reindex' rebuilds it.`,
		Example: `  sallyport sessions search /etc/shadow
  sallyport sessions search 'payments.accounts' --protocol postgres --since 30d
  sallyport sessions search '"drop table"' --breakglass --json
  sallyport sessions search 10.1.2.3 --where forward,output`,
		Args: args(1, "TEXT"),
		RunE: func(c *cobra.Command, a []string) error {
			q.Text = a[0]
			var err error
			if q.Since, err = parseWhen("--since", since); err != nil {
				return err
			}
			if q.Until, err = parseWhen("--until", until); err != nil {
				return err
			}
			for _, w := range where {
				q.Where = append(q.Where, search.Where(w))
			}
			if q.Limit < 0 {
				return usageErrorf("--limit: %d is negative", q.Limit)
			}
			res, err := runSearch(c.Context(), g, q)
			if errors.Is(err, search.ErrBadQuery) {
				return usageErrorf("%v", err)
			}
			if err != nil {
				return err
			}
			if asJSON {
				if res.Behind.Behind() { // the array stays what scripts parse
					fmt.Fprintf(c.ErrOrStderr(), "note: %s\n", res.Behind)
				}
				return writeJSON(c.OutOrStdout(), res.Hits)
			}
			return printHits(c.OutOrStdout(), res)
		},
	}
	f := c.Flags()
	f.StringVar(&q.Identity, "identity", "", "only sessions of this identity")
	f.StringVar(&q.Target, "target", "", "only sessions to this target")
	f.StringVar(&q.Protocol, "protocol", "", "only sessions of this protocol: ssh, postgres or mysql")
	f.StringVar(&since, "since", "", "only hits since this long ago (24h, 30d) or this date")
	f.StringVar(&until, "until", "", "only hits before this long ago or this time; a bare date keeps that whole day")
	f.BoolVar(&q.Breakglass, "breakglass", false, "only sessions opened under a break-glass grant")
	f.StringSliceVar(&where, "where", nil, "only hits in these places: command, stdin, output, input, query, file, forward, note")
	f.IntVar(&q.Limit, "limit", search.DefaultLimit, fmt.Sprintf("most hits to show (at most %d)", search.MaxLimit))
	f.BoolVar(&asJSON, "json", false, "print the hits as a JSON array")
	return c
}

// parseWhen reads a --since or --until value (whenFlag): --until is an
// upper bound, so a bare date keeps that whole day. Empty is the zero time.
func parseWhen(flag, s string) (time.Time, error) {
	return whenFlag(flag, s, flag == "--until")
}

func runSearch(ctx context.Context, g *globals, q search.Query) (search.Result, error) {
	ap, err := g.open(ctx)
	if err != nil {
		return search.Result{}, err
	}
	defer ap.Close()
	ix, err := newSearchIndex(ap.store)
	if err != nil {
		return search.Result{}, err
	}
	return ix.Search(ctx, q)
}

// printHits writes hits as a table, the match in each snippet between
// [[ and ]].
func printHits(w io.Writer, res search.Result) error {
	if res.Behind.Behind() {
		fmt.Fprintf(w, "note: %s; run 'sallyport recording reindex' if it does not catch up\n", res.Behind)
	}
	if len(res.Hits) == 0 {
		_, err := fmt.Fprintln(w, "no hits")
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSESSION\tIDENTITY\tTARGET\tPROTO\tAT\tWHERE\tMATCH")
	for _, h := range res.Hits {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t+%s\t%s\t%s\n", h.Time.Local().Format(time.DateTime), h.Session, h.Identity,
			h.Target, h.Protocol, offsetText(h.Offset), h.Where, marked(h))
	}
	if res.More {
		fmt.Fprintf(tw, "(more hits: narrow the search or raise --limit)\n")
	}
	return tw.Flush()
}

func offsetText(sec float64) string {
	return (time.Duration(sec * float64(time.Second))).Round(time.Second).String()
}

// marked is the snippet with its marks as [[…]]; tabs cannot occur in it.
func marked(h search.Hit) string {
	var b strings.Builder
	last := 0
	for _, m := range h.Marks {
		if m[0] < last || m[1] > len(h.Snippet) {
			continue
		}
		b.WriteString(h.Snippet[last:m[0]] + "[[" + h.Snippet[m[0]:m[1]] + "]]")
		last = m[1]
	}
	b.WriteString(h.Snippet[last:])
	return b.String()
}

func newReindexCmd(g *globals) *cobra.Command {
	var since string
	c := &cobra.Command{
		Use:   "reindex [--since D]",
		Short: "Rebuild the search index from the recordings in the store, verifying each first",
		Long: `reindex reads every ended session's recording from the configured store (those
that started within --since, when given), verifies it as 'sallyport verify'
does, and indexes it again from scratch for 'sallyport sessions search', a lost
replica's continuation included (docs/search.md). A
recording that is not intact or incomplete-but-authentic (tampered, unsealed,
missing objects) is reported and taken out of the index: what it says cannot be
trusted. It exits 1 when any was. A running 'sallyport serve' keeps indexing
new sessions meanwhile; reindex is for a lost or damaged index, or after a
restore.`,
		Example: `  sallyport recording reindex
  sallyport recording reindex --since 7d`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			when, err := parseWhen("--since", since)
			if err != nil {
				return err
			}
			bad, err := reindex(c.Context(), g, c.OutOrStdout(), when)
			if err == nil && bad > 0 {
				return &exitError{code: exitNegative, err: fmt.Errorf("%d recording(s) failed verification", bad), quiet: true}
			}
			return err
		},
	}
	c.Flags().StringVar(&since, "since", "", "only sessions that started since this long ago (24h, 30d) or this date")
	return c
}

// reindex runs search.Indexer.Reindex over the sessions since when,
// printing each recording that failed verification and the tally, and
// returns how many failed.
func reindex(ctx context.Context, g *globals, w io.Writer, since time.Time) (int, error) {
	ap, err := g.open(ctx)
	if err != nil {
		return 0, err
	}
	defer ap.Close()
	_, store, key, err := openRecordings(ap.cfg)
	if err != nil {
		return 0, err
	}
	ix, err := newSearchIndex(ap.store)
	if err != nil {
		return 0, err
	}
	x := &search.Indexer{Index: ix, Store: store, Write: ap.store.SearchWrite, Owner: "reindex", Key: key.Public().(ed25519.PublicKey)}
	res, err := x.Reindex(ctx, since, func(rep recorder.Report) {
		fmt.Fprintf(w, "session %s not indexed: %s\n", rep.Session, rep.String())
	})
	if err != nil {
		return res.Failed, err
	}
	fmt.Fprintln(w, res)
	return res.Failed, nil
}
