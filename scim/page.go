package scim

import (
	"net/http"
	"strconv"
	"strings"
)

// page is what a list request asks for: a filter and a page (RFC 7644
// §3.4.2.4, startIndex is 1-based).
type page struct {
	filter         filter
	start, count   int
	excludeMembers bool
}

func parsePage(r *http.Request) (page, error) {
	q := r.URL.Query()
	p := page{start: 1, count: defaultCount}
	var err error
	if f := q.Get("filter"); f != "" {
		if p.filter, err = parseFilter(f); err != nil {
			return page{}, badRequest("invalidFilter", "%s", err.Error())
		}
	}
	if p.start, err = intParam(q.Get("startIndex"), 1); err != nil {
		return page{}, err
	}
	if p.count, err = intParam(q.Get("count"), defaultCount); err != nil {
		return page{}, err
	}
	p.start = max(p.start, 1)
	p.count = min(max(p.count, 0), maxCount)
	p.excludeMembers = strings.Contains(strings.ToLower(q.Get("excludedAttributes")), "members")
	return p, nil
}

func intParam(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, badRequest("invalidValue", "%q is not an integer", s)
	}
	return n, nil
}

type listJSON struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []any    `json:"Resources"`
}

// list cuts the page out of every matching resource.
func (p page) list(all []any) listJSON {
	from := min(p.start-1, len(all))
	to := min(from+p.count, len(all))
	res := all[from:to]
	if res == nil {
		res = []any{}
	}
	return listJSON{Schemas: []string{listSchema}, TotalResults: len(all), StartIndex: p.start, ItemsPerPage: len(res), Resources: res}
}
