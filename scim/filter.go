package scim

import (
	"encoding/json"
	"fmt"
	"strings"
)

// maxFilterLen bounds a filter: the IdPs send one short comparison.
const maxFilterLen = 1024

// filter is a parsed SCIM filter (RFC 7644 §3.4.2.2), in the subset IdPs
// send before they create or link: comparisons with eq joined by and.
type filter []term

// term is one comparison: attr eq value. attr is lower case; a value
// filter on members is "members.value".
type term struct {
	attr  string
	value string
}

// filterable lists the attributes a filter may compare, lower case.
var filterable = map[string]bool{
	"username": true, "externalid": true, "displayname": true, "id": true, "members.value": true,
	"emails.value": true,
}

// parseFilter parses expr: term ("and" term)*, where term is
// `attrPath eq "string"` or `members[value eq "string"]`. Anything else is
// an error saying what is supported.
func parseFilter(expr string) (filter, error) {
	if len(expr) > maxFilterLen {
		return nil, fmt.Errorf("filter is longer than %d bytes", maxFilterLen)
	}
	p := &filterParser{s: expr}
	var f filter
	for {
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		f = append(f, t)
		p.space()
		if p.done() {
			return f, nil
		}
		if !p.keyword("and") {
			return nil, fmt.Errorf("filter: want \"and\" or the end at byte %d; only eq comparisons joined by and are supported", p.i)
		}
	}
}

type filterParser struct {
	s string
	i int
}

func (p *filterParser) done() bool { return p.i >= len(p.s) }

func (p *filterParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// keyword consumes word (case-insensitive) followed by a space.
func (p *filterParser) keyword(word string) bool {
	p.space()
	end := p.i + len(word)
	if end >= len(p.s) || !strings.EqualFold(p.s[p.i:end], word) || p.s[end] != ' ' {
		return false
	}
	p.i = end
	return true
}

func (p *filterParser) term() (term, error) {
	p.space()
	attr := p.attrPath()
	if attr == "" {
		return term{}, fmt.Errorf("filter: want an attribute name at byte %d", p.i)
	}
	if p.i < len(p.s) && p.s[p.i] == '[' {
		return p.valuePath(attr)
	}
	return p.comparison(attr)
}

// valuePath parses the rest of attr[value eq "x"].
func (p *filterParser) valuePath(attr string) (term, error) {
	p.i++ // [
	p.space()
	sub := p.attrPath()
	t, err := p.comparison(sub)
	if err != nil {
		return term{}, err
	}
	p.space()
	if p.done() || p.s[p.i] != ']' || t.attr != "value" {
		return term{}, fmt.Errorf("filter: want %s[value eq \"...\"]", attr)
	}
	p.i++
	t.attr = attr + ".value"
	if !filterable[t.attr] {
		return term{}, fmt.Errorf("filter: %s cannot be filtered on", t.attr)
	}
	return t, nil
}

func (p *filterParser) comparison(attr string) (term, error) {
	if !p.keyword("eq") {
		return term{}, fmt.Errorf("filter: want eq after %s; only eq is supported", attr)
	}
	p.space()
	v, err := p.str()
	if err != nil {
		return term{}, err
	}
	if attr != "value" && !filterable[attr] {
		return term{}, fmt.Errorf("filter: %s cannot be filtered on; use userName, externalId, displayName or id", attr)
	}
	return term{attr: attr, value: v}, nil
}

// attrPath reads an attribute name (letters, digits, '.', '_', '-', ':'
// for schema URNs, whose prefix is dropped) and lower-cases it.
func (p *filterParser) attrPath() string {
	start := p.i
	for p.i < len(p.s) && isAttrByte(p.s[p.i]) {
		p.i++
	}
	a := strings.ToLower(p.s[start:p.i])
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		a = a[i+1:]
	}
	return a
}

func isAttrByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':' || c == '$'
}

// str reads a JSON string literal.
func (p *filterParser) str() (string, error) {
	if p.done() || p.s[p.i] != '"' {
		return "", fmt.Errorf("filter: want a quoted string at byte %d", p.i)
	}
	for j := p.i + 1; j < len(p.s); j++ {
		switch p.s[j] {
		case '\\':
			j++
		case '"':
			var v string
			if err := json.Unmarshal([]byte(p.s[p.i:j+1]), &v); err != nil {
				return "", fmt.Errorf("filter: bad string at byte %d: %w", p.i, err)
			}
			p.i = j + 1
			return v, nil
		}
	}
	return "", fmt.Errorf("filter: string at byte %d is not closed", p.i)
}
