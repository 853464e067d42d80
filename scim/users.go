package scim

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/sallyport/sallyport/iga"
)

// This file is the handlers of /Users.

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	page, err := parsePage(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	users, err := h.Registry.Users(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var out []any
	for _, u := range users {
		if page.filter.matchUser(u) {
			out = append(out, renderUser(r, u))
		}
	}
	writeJSON(w, http.StatusOK, page.list(out))
}

func (f filter) matchUser(u iga.SCIMUser) bool {
	for _, t := range f {
		var ok bool
		switch t.attr {
		case "username", "id":
			ok = strings.EqualFold(u.UserName, t.value)
		case "externalid":
			ok = u.ExternalID == t.value
		case "displayname":
			ok = u.DisplayName == t.value
		case "emails.value":
			ok = hasEmail(u, t.value)
		}
		if !ok {
			return false
		}
	}
	return true
}

func hasEmail(u iga.SCIMUser, v string) bool {
	for _, e := range u.Emails {
		if strings.EqualFold(e.Value, v) {
			return true
		}
	}
	return false
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.Registry.User(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, renderUser(r, u))
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	o, err := readObject(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	name, err := str(o["username"], "userName")
	if err != nil || name == "" {
		h.fail(w, r, badRequest("invalidValue", "userName is required: the person's e-mail address"))
		return
	}
	u, err := h.Registry.ChangeUser(r.Context(), iga.UserChange{UserName: name, Create: true, RequestID: RequestID(r.Context()),
		Apply: func(u *iga.SCIMUser) error { return replaceAttrs(u, o) }})
	h.answerUser(w, r, u, err, http.StatusCreated)
}

// replaceAttrs clears what a full replace does not carry, then sets o.
// active stays as it was when o leaves it out, so a PUT that forgets it
// neither deactivates nor reactivates anyone.
func replaceAttrs(u *iga.SCIMUser, o object) error {
	u.ExternalID, u.GivenName, u.FamilyName, u.DisplayName, u.Emails, u.Manager = "", "", "", "", nil, ""
	return userFromObject(u, o)
}

func (h *Handler) replaceUser(w http.ResponseWriter, r *http.Request) {
	o, err := readObject(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.Registry.ChangeUser(r.Context(), iga.UserChange{UserName: r.PathValue("id"), RequestID: RequestID(r.Context()),
		Apply: func(u *iga.SCIMUser) error { return replaceAttrs(u, o) }})
	h.answerUser(w, r, u, err, http.StatusOK)
}

func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request) {
	o, err := readObject(r)
	if err == nil {
		var ops []operation
		if ops, err = parsePatch(o); err == nil {
			var u iga.SCIMUser
			u, err = h.Registry.ChangeUser(r.Context(), iga.UserChange{UserName: r.PathValue("id"), RequestID: RequestID(r.Context()),
				Apply: func(u *iga.SCIMUser) error { return patchUser(u, ops) }})
			h.answerUser(w, r, u, err, http.StatusOK)
			return
		}
	}
	h.fail(w, r, err)
}

// patchUser applies ops in order; the first that fails aborts them all.
func patchUser(u *iga.SCIMUser, ops []operation) error {
	for _, op := range ops {
		if err := patchUserOp(u, op); err != nil {
			return err
		}
	}
	return nil
}

func patchUserOp(u *iga.SCIMUser, op operation) error {
	switch {
	case op.op == "remove":
		return setUser(u, op.path, nil)
	case op.path == "":
		// Path-less add or replace: the value is an object of attributes
		// (Okta's {"active": false}), names possibly dotted or URN-prefixed.
		return setObject(op.value, "value", func(k string, v json.RawMessage) error { return setUser(u, k, v) })
	case op.op == "add" && userPath(op.path) == "emails":
		more, err := emails(op.value)
		u.Emails = append(u.Emails, more...)
		return err
	}
	return setUser(u, op.path, op.value)
}

func (h *Handler) answerUser(w http.ResponseWriter, r *http.Request, u iga.SCIMUser, err error, status int) {
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.logger().Info("scim user changed", "request_id", RequestID(r.Context()), "method", r.Method, "user", u.UserName, "active", u.Active)
	writeJSON(w, status, renderUser(r, u))
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := h.Registry.DeleteUser(r.Context(), r.PathValue("id"), RequestID(r.Context())); err != nil {
		h.fail(w, r, err)
		return
	}
	h.logger().Info("scim user deleted", "request_id", RequestID(r.Context()), "user", r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}
