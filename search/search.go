package search

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Hit is one entry that matched a search.
type Hit struct {
	Session  string `json:"session"`
	Identity string `json:"identity"`
	Target   string `json:"target"`
	Protocol string `json:"protocol"`
	// Breakglass says the session ran under a break-glass grant.
	Breakglass bool `json:"breakglass"`
	// Time is when the entry happened; Offset the seconds from the
	// session's start to it, where a player seeks.
	Time   time.Time `json:"time"`
	Offset float64   `json:"offset"`
	Where  Where     `json:"where"`
	// Snippet is the entry's text around the first match, on one line;
	// Marks the byte ranges [start, end) of Snippet that matched.
	Snippet string   `json:"snippet"`
	Marks   [][2]int `json:"marks,omitempty"`
}

// Lag is how far the index is behind the recordings: sessions that ended
// but are not indexed yet. Live sessions are indexed as their chunks reach
// the store, and are not counted.
type Lag struct {
	// Sessions counts the ended sessions not indexed yet.
	Sessions int `json:"sessions"`
	// Oldest is when the longest-waiting of them ended; zero when none.
	Oldest time.Time `json:"oldest,omitempty"`
}

// Behind reports whether any ended session is not indexed yet.
func (l Lag) Behind() bool { return l.Sessions > 0 }

// String says how far behind the index is, for a person.
func (l Lag) String() string {
	if !l.Behind() {
		return "the index is up to date"
	}
	return fmt.Sprintf("the index is behind: %d ended session(s) not indexed yet, the oldest ended %s ago",
		l.Sessions, time.Since(l.Oldest).Round(time.Second))
}

// Result is what a search found.
type Result struct {
	// Hits are the matches, at most Query.Limit: those where every term's
	// words match whole first, then those where a last word matched as a
	// prefix; newest indexed first in each.
	Hits []Hit `json:"hits"`
	// More says there are more hits than the limit.
	More bool `json:"more"`
	// Behind is how far the index lags the recordings: a search of a
	// lagging index may miss what the last sessions did.
	Behind Lag `json:"behind"`
}

// lagTTL is how long a computed Lag is reused: counting the sessions not
// indexed reads the whole session index, which a burst of searches (the
// console's search-as-you-type) should not repeat.
const lagTTL = 2 * time.Second

// Index is the search index in a registry database. It is safe for
// concurrent use.
type Index struct {
	db *sql.DB
	d  dialect
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	lagMu   sync.Mutex
	lag     Lag
	lagAt   time.Time
	lagDone bool
}

// New returns the index kept in db, a registry database of dialect
// "sqlite" or "postgres" (sqlstore.Store.SearchDB returns both).
func New(db *sql.DB, dialectName string) (*Index, error) {
	d, err := dialectNamed(dialectName)
	if err != nil {
		return nil, err
	}
	return &Index{db: db, d: d}, nil
}

func (ix *Index) now() time.Time {
	if ix.Now != nil {
		return ix.Now()
	}
	return time.Now()
}

// Search runs q. A QueryError (errors.Is ErrBadQuery) says the text
// cannot be searched; other errors are the database's.
func (ix *Index) Search(ctx context.Context, q Query) (Result, error) {
	terms, err := parseText(q.Text)
	if err != nil {
		return Result{}, err
	}
	if err := checkWheres(q.Where); err != nil {
		return Result{}, err
	}
	res := Result{Hits: []Hit{}}
	if res.Behind, err = ix.Lag(ctx); err != nil {
		return res, err
	}
	if q.Visible != nil && len(q.Visible) == 0 {
		return res, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	hits, err := ix.find(ctx, terms, q, limit+1)
	if err != nil {
		return res, err
	}
	if len(hits) > limit {
		hits, res.More = hits[:limit], true
	}
	res.Hits = hits
	return res, nil
}

// find returns up to limit hits: whole-word matches first, newest first,
// then, when they are fewer than limit, prefix matches. A prefix query of
// a common word costs the database the merged lists of every word it
// starts (seconds, on millions of entries), so it runs only when needed.
func (ix *Index) find(ctx context.Context, terms []term, q Query, limit int) ([]Hit, error) {
	hits, ids, err := ix.run(ctx, terms, q, limit, false)
	if err != nil || len(hits) >= limit || !anyPrefixable(terms) {
		return hits, err
	}
	more, moreIDs, err := ix.run(ctx, terms, q, limit+len(hits), true)
	if err != nil {
		return nil, err
	}
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	for i, h := range more {
		if !seen[moreIDs[i]] && len(hits) < limit {
			hits = append(hits, h)
		}
	}
	return hits, nil
}

func checkWheres(ws []Where) error {
	for _, w := range ws {
		if !slices.Contains(Wheres, w) {
			names := make([]string, len(Wheres))
			for i, x := range Wheres {
				names[i] = string(x)
			}
			return badQuery("%q is not a place to search; use one of %s", w, strings.Join(names, ", "))
		}
	}
	return nil
}

// run runs one search query, through the plan the dialect needs.
func (ix *Index) run(ctx context.Context, terms []term, q Query, limit int, prefix bool) ([]Hit, []int64, error) {
	if ix.d.fencedFrom != "" {
		return ix.runFenced(ctx, terms, q, limit, prefix)
	}
	query, args := ix.d.searchSQL(terms, q, limit, prefix, false)
	return ix.scanHits(ctx, ix.db, query, args, terms)
}

// queryer is a *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanHits runs a search query and returns its hits and their entries'
// ids.
func (ix *Index) scanHits(ctx context.Context, db queryer, query string, args []any, terms []term) ([]Hit, []int64, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("search the index: %w", err)
	}
	defer rows.Close()
	hits := []Hit{}
	var ids []int64
	for rows.Next() {
		var h Hit
		var id int64
		var at, started, grant, body string
		if err := rows.Scan(&id, &h.Session, &at, &h.Where, &body, &h.Identity, &h.Target, &h.Protocol, &grant, &started); err != nil {
			return nil, nil, fmt.Errorf("read search hits: %w", err)
		}
		h.Breakglass = grant != ""
		h.Time, _ = time.Parse(time.RFC3339Nano, at)
		if st, err := time.Parse(time.RFC3339Nano, started); err == nil {
			h.Offset = max(0, h.Time.Sub(st).Seconds())
		}
		h.Snippet, h.Marks = snippet(body, terms)
		hits, ids = append(hits, h), append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read search hits: %w", err)
	}
	return hits, ids, nil
}

// Lag returns how far the index is behind, computed at most every lagTTL.
func (ix *Index) Lag(ctx context.Context) (Lag, error) {
	ix.lagMu.Lock()
	defer ix.lagMu.Unlock()
	now := ix.now()
	if ix.lagDone && now.Sub(ix.lagAt) < lagTTL {
		return ix.lag, nil
	}
	var n int
	var oldest sql.NullString
	if err := ix.db.QueryRowContext(ctx, lagQuery).Scan(&n, &oldest); err != nil {
		return Lag{}, fmt.Errorf("measure the search index's lag: %w", err)
	}
	l := Lag{Sessions: n}
	if oldest.Valid {
		l.Oldest, _ = time.Parse(time.RFC3339Nano, oldest.String)
	}
	ix.lag, ix.lagAt, ix.lagDone = l, now, true
	return l, nil
}
