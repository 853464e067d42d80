package search

import (
	"fmt"
	"strings"

	"github.com/sallyport/sallyport/iga/sqlstore"
)

// timeLayout is how the registry stores times: RFC 3339 in UTC with a
// fixed nine-digit fraction, so that text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// dialect holds the SQL that differs between SQLite and PostgreSQL.
type dialect struct {
	name string
	// match is the WHERE condition of the full-text match, one parameter;
	// prefix makes each term's last word a prefix.
	match func(terms []term, prefix bool) (cond string, arg any)
	// from joins the full-text index, the entries (e) and the sessions (s).
	from string
	// fencedFrom, when set, is a from that matches in a subquery the
	// planner must run first, through the full-text index (pgplan.go); it
	// holds the match's parameter.
	fencedFrom string
	// order sorts the hits newest indexed first.
	order string
	// contains is a condition that e.body holds a parameter, case aside.
	contains string
}

// finalStates are the recording states after which nothing more reaches
// the store.
const finalStates = "('stored', 'incomplete', 'degraded')"

// lagQuery counts the ended sessions not indexed yet, through the partial
// index search_sessions_todo: every session has its row from the start.
const lagQuery = `SELECT COUNT(*), MIN(s.ended_at) FROM search_sessions x
JOIN sessions s ON s.id = x.session_id
WHERE x.state IN ('pending', 'partial') AND s.ended_at IS NOT NULL AND s.state IN ` + finalStates

var sqliteDialect = dialect{
	name: "sqlite",
	match: func(terms []term, prefix bool) (string, any) {
		return "search_fts MATCH ?", ftsMatch(terms, prefix)
	},
	from:     "search_fts JOIN search_entries e ON e.id = search_fts.rowid JOIN sessions s ON s.id = e.session_id",
	order:    "search_fts.rowid DESC",
	contains: "instr(lower(e.body), ?) > 0",
}

var postgresDialect = dialect{
	name: "postgres",
	match: func(terms []term, prefix bool) (string, any) {
		return "e.words @@ to_tsquery('simple', ?)", tsQuery(terms, prefix)
	},
	from: "search_entries e JOIN sessions s ON s.id = e.session_id",
	fencedFrom: "(SELECT id, session_id, at, kind, body FROM search_entries WHERE words @@ to_tsquery('simple', ?) OFFSET 0) e " +
		"JOIN sessions s ON s.id = e.session_id",
	order:    "e.id DESC",
	contains: "strpos(lower(e.body), ?) > 0",
}

func dialectNamed(name string) (dialect, error) {
	switch name {
	case "sqlite":
		return sqliteDialect, nil
	case "postgres":
		return postgresDialect, nil
	}
	return dialect{}, fmt.Errorf("search index: registry dialect %q is not sqlite or postgres", name)
}

// searchSQL builds the query for terms and q's filters, returning at most
// limit rows; prefix matches each term's last word as a prefix, and fenced
// uses fencedFrom.
func (d dialect) searchSQL(terms []term, q Query, limit int, prefix, fenced bool) (string, []any) {
	cond, arg := d.match(terms, prefix)
	from, where, args := d.from, []string{cond}, []any{arg}
	if fenced {
		from, where = d.fencedFrom, nil
	}
	add := func(c string, a ...any) { where, args = append(where, c), append(args, a...) }
	for _, t := range terms {
		if t.checkable() {
			add(d.contains, t.raw)
		}
	}
	add("s.state <> 'deleted'") // retention deleted the recording; adopt purges its entries
	if q.Identity != "" {
		add("s.identity_id = ?", q.Identity)
	}
	if q.Target != "" {
		add("s.target = ?", q.Target)
	}
	if q.Protocol != "" {
		add("s.protocol = ?", q.Protocol)
	}
	if !q.Since.IsZero() {
		add("e.at >= ?", q.Since.UTC().Format(timeLayout))
	}
	if !q.Until.IsZero() {
		add("e.at < ?", q.Until.UTC().Format(timeLayout))
	}
	if q.Breakglass {
		add("s.breakglass_grant <> ''")
	}
	if len(q.Where) > 0 {
		add("e.kind IN ("+repeatJoin("?", len(q.Where))+")", anys(q.Where)...)
	}
	if q.Visible != nil {
		add("s.identity_id IN ("+repeatJoin("?", len(q.Visible))+")", anys(q.Visible)...)
	}
	args = append(args, limit)
	query := "SELECT e.id, e.session_id, e.at, e.kind, e.body, s.identity_id, s.target, s.protocol, s.breakglass_grant, s.started_at FROM " +
		from + " WHERE " + strings.Join(where, " AND ") + " ORDER BY " + d.order + " LIMIT ?"
	return d.rebind(query), args
}

func anys[T any](v []T) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// rebind rewrites ? as $1, $2, … for PostgreSQL, as the registry does.
func (d dialect) rebind(query string) string { return sqlstore.Rebind(d.name, query) }
