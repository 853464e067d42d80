package scim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/sallyport/sallyport/iga"
)

// This file is the /Groups resource. Members are users (by id, which is
// the user name); the config maps group display names to roles.

type groupJSON struct {
	Schemas     []string    `json:"schemas"`
	ID          string      `json:"id"`
	ExternalID  string      `json:"externalId,omitempty"`
	DisplayName string      `json:"displayName"`
	Members     []valueJSON `json:"members,omitempty"`
	Meta        metaJSON    `json:"meta"`
}

func renderGroup(r *http.Request, g iga.SCIMGroup, withMembers bool) groupJSON {
	j := groupJSON{Schemas: []string{groupSchema}, ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.DisplayName,
		Meta: meta(r, "Group", g.ID, g.Created, g.Modified, g.Version)}
	if withMembers {
		for _, m := range g.Members {
			j.Members = append(j.Members, valueJSON{Value: m, Display: m})
		}
	}
	return j
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request) {
	page, err := parsePage(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	groups, err := h.Registry.Groups(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var out []any
	for _, g := range groups {
		if page.filter.matchGroup(g) {
			out = append(out, renderGroup(r, g, !page.excludeMembers))
		}
	}
	writeJSON(w, http.StatusOK, page.list(out))
}

func (f filter) matchGroup(g iga.SCIMGroup) bool {
	for _, t := range f {
		var ok bool
		switch t.attr {
		case "id":
			ok = g.ID == t.value
		case "externalid":
			ok = g.ExternalID == t.value
		case "displayname":
			ok = strings.EqualFold(g.DisplayName, t.value)
		case "members.value":
			ok = slices.ContainsFunc(g.Members, func(m string) bool { return strings.EqualFold(m, t.value) })
		}
		if !ok {
			return false
		}
	}
	return true
}

func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := h.Registry.Group(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, renderGroup(r, g, !strings.Contains(strings.ToLower(r.URL.Query().Get("excludedAttributes")), "members")))
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request) {
	h.writeGroup(w, r, "", http.StatusCreated)
}

func (h *Handler) replaceGroup(w http.ResponseWriter, r *http.Request) {
	h.writeGroup(w, r, r.PathValue("id"), http.StatusOK)
}

// writeGroup creates (id empty) or replaces a group from the body.
func (h *Handler) writeGroup(w http.ResponseWriter, r *http.Request, id string, status int) {
	o, err := readObject(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	g, err := h.Registry.ChangeGroup(r.Context(), iga.GroupChange{ID: id, RequestID: RequestID(r.Context()),
		Apply: func(g *iga.SCIMGroup) error {
			g.ExternalID, g.Members = "", nil
			return groupFromObject(g, o)
		}})
	h.answerGroup(w, r, g, err, status)
}

func groupFromObject(g *iga.SCIMGroup, o object) error {
	for k, v := range o {
		if err := setGroup(g, "replace", k, v); err != nil {
			if e, ok := err.(*Error); ok && e.SCIMType == "invalidPath" {
				return badRequest("invalidSyntax", "attribute %q is not a Group attribute", k)
			}
			return err
		}
	}
	return nil
}

// setGroup applies op to one attribute of g.
func setGroup(g *iga.SCIMGroup, op, path string, v json.RawMessage) error {
	path = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(path), groupSchema+":"))
	var err error
	switch path {
	case "displayname":
		g.DisplayName, err = str(v, "displayName")
	case "externalid":
		g.ExternalID, err = str(v, "externalId")
	case "schemas", "id", "meta":
	case "members":
		return setMembers(g, op, v)
	default:
		return removeMemberPath(g, op, path)
	}
	return err
}

func setMembers(g *iga.SCIMGroup, op string, v json.RawMessage) error {
	var ms []string
	if !isNull(v) {
		var err error
		if ms, err = references(v, "members"); err != nil {
			return err
		}
	}
	switch op {
	case "add":
		g.Members = append(g.Members, ms...)
	case "replace":
		g.Members = ms
	case "remove":
		if ms == nil {
			g.Members = nil // remove with no value: every member
		}
		g.Members = slices.DeleteFunc(g.Members, func(m string) bool {
			return slices.ContainsFunc(ms, func(x string) bool { return strings.EqualFold(x, m) })
		})
	}
	return nil
}

// removeMemberPath is Okta's remove of members[value eq "id"].
func removeMemberPath(g *iga.SCIMGroup, op, path string) error {
	f, ok := strings.CutPrefix(path, "members[")
	f, ok2 := strings.CutSuffix(f, "]")
	if !ok || !ok2 || op != "remove" {
		return badRequest("invalidPath", "attribute %q is not a Group attribute sallyport knows", path)
	}
	parsed, err := parseFilter("members[" + f + "]")
	if err != nil || len(parsed) != 1 {
		return badRequest("invalidPath", "path %q: want members[value eq \"id\"]", path)
	}
	g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return strings.EqualFold(m, parsed[0].value) })
	return nil
}

func (h *Handler) patchGroup(w http.ResponseWriter, r *http.Request) {
	o, err := readObject(r)
	if err == nil {
		var ops []operation
		if ops, err = parsePatch(o); err == nil {
			var g iga.SCIMGroup
			g, err = h.Registry.ChangeGroup(r.Context(), iga.GroupChange{ID: r.PathValue("id"), RequestID: RequestID(r.Context()),
				Apply: func(g *iga.SCIMGroup) error { return patchGroup(g, ops) }})
			h.answerGroup(w, r, g, err, http.StatusOK)
			return
		}
	}
	h.fail(w, r, err)
}

func patchGroup(g *iga.SCIMGroup, ops []operation) error {
	for _, op := range ops {
		var err error
		if op.path == "" {
			err = setObject(op.value, "value", func(k string, v json.RawMessage) error { return setGroup(g, op.op, k, v) })
		} else {
			err = setGroup(g, op.op, op.path, op.value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) answerGroup(w http.ResponseWriter, r *http.Request, g iga.SCIMGroup, err error, status int) {
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.logger().Info("scim group changed", "request_id", RequestID(r.Context()), "method", r.Method, "group", g.ID,
		"display_name", g.DisplayName, "members", len(g.Members))
	writeJSON(w, status, renderGroup(r, g, true))
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := h.Registry.DeleteGroup(r.Context(), r.PathValue("id"), RequestID(r.Context())); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
