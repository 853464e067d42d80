package scim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// This file is the /Users resource: its JSON, and the attributes a create,
// replace or PATCH may set.

type userJSON struct {
	Schemas     []string        `json:"schemas"`
	ID          string          `json:"id"`
	ExternalID  string          `json:"externalId,omitempty"`
	UserName    string          `json:"userName"`
	Name        *nameJSON       `json:"name,omitempty"`
	DisplayName string          `json:"displayName,omitempty"`
	Active      bool            `json:"active"`
	Emails      []iga.SCIMEmail `json:"emails,omitempty"`
	Roles       []valueJSON     `json:"roles,omitempty"`
	Enterprise  *enterpriseJSON `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,omitempty"`
	Meta        metaJSON        `json:"meta"`
}

type nameJSON struct {
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
	Formatted  string `json:"formatted,omitempty"`
}

type valueJSON struct {
	Value   string `json:"value"`
	Display string `json:"display,omitempty"`
}

type enterpriseJSON struct {
	Manager *valueJSON `json:"manager,omitempty"`
}

type metaJSON struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	Location     string `json:"location,omitempty"`
	Version      string `json:"version,omitempty"`
}

func meta(r *http.Request, kind, id string, created, modified time.Time, version int) metaJSON {
	m := metaJSON{ResourceType: kind, Location: baseURL(r) + "/" + kind + "s/" + url.PathEscape(id)}
	if !created.IsZero() {
		m.Created, m.LastModified = created.Format(time.RFC3339), modified.Format(time.RFC3339)
		m.Version = `W/"` + itoa(version) + `"`
	}
	return m
}

// baseURL is the SCIM root the request came to.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + Prefix
}

func renderUser(r *http.Request, u iga.SCIMUser) userJSON {
	j := userJSON{Schemas: []string{userSchema}, ID: u.UserName, ExternalID: u.ExternalID, UserName: u.UserName,
		DisplayName: u.DisplayName, Active: u.Active, Emails: u.Emails,
		Meta: meta(r, "User", u.UserName, u.Created, u.Modified, u.Version)}
	if u.GivenName != "" || u.FamilyName != "" {
		j.Name = &nameJSON{GivenName: u.GivenName, FamilyName: u.FamilyName,
			Formatted: strings.TrimSpace(u.GivenName + " " + u.FamilyName)}
	}
	for _, role := range u.Roles {
		j.Roles = append(j.Roles, valueJSON{Value: role})
	}
	if u.Manager != "" {
		j.Schemas = append(j.Schemas, enterpriseSchema)
		j.Enterprise = &enterpriseJSON{Manager: &valueJSON{Value: u.Manager}}
	}
	return j
}

// ignoredUserAttrs are core User attributes (RFC 7643 §4.1) and
// enterprise ones the registry does not keep: accepted and dropped, so an
// IdP's default mapping works. password is never kept or logged.
var ignoredUserAttrs = map[string]bool{
	"nickname": true, "profileurl": true, "title": true, "usertype": true, "preferredlanguage": true,
	"locale": true, "timezone": true, "password": true, "phonenumbers": true, "ims": true, "photos": true,
	"addresses": true, "groups": true, "entitlements": true, "roles": true, "x509certificates": true,
	"schemas": true, "id": true, "meta": true,
	"employeenumber": true, "costcenter": true, "organization": true, "division": true, "department": true,
}

// userPath normalises an attribute path: lower case, without the core
// schema's URN, the enterprise URN shortened to "enterprise:".
func userPath(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	if rest, ok := strings.CutPrefix(p, strings.ToLower(userSchema)+":"); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(p, strings.ToLower(enterpriseSchema)); ok {
		return "enterprise" + rest
	}
	return p
}

// setUser sets (or, with v null, clears) one attribute of u.
func setUser(u *iga.SCIMUser, path string, v json.RawMessage) error {
	path = userPath(path)
	var err error
	switch path {
	case "username":
		u.UserName, err = str(v, "userName")
	case "externalid":
		u.ExternalID, err = str(v, "externalId")
	case "displayname":
		u.DisplayName, err = str(v, "displayName")
	case "active":
		if isNull(v) {
			return &Error{Status: http.StatusBadRequest, SCIMType: "mutability", Detail: "active cannot be removed; set it to false"}
		}
		u.Active, err = boolean(v, "active")
	case "name":
		return setObject(v, "name", func(k string, sub json.RawMessage) error { return setUser(u, "name."+k, sub) })
	case "name.givenname":
		u.GivenName, err = str(v, "name.givenName")
	case "name.familyname":
		u.FamilyName, err = str(v, "name.familyName")
	case "name.formatted", "name.middlename", "name.honorificprefix", "name.honorificsuffix":
		_, err = str(v, path)
	case "emails":
		u.Emails, err = emails(v)
	case "enterprise":
		return setObject(v, "enterprise extension", func(k string, sub json.RawMessage) error { return setUser(u, "enterprise:"+k, sub) })
	case "enterprise:manager", "enterprise:manager.value":
		u.Manager, err = managerRef(v)
	default:
		return setUserOther(u, path, v)
	}
	return err
}

// setUserOther handles value paths (emails[type eq "work"].value) and the
// attributes that are accepted but not kept.
func setUserOther(u *iga.SCIMUser, path string, v json.RawMessage) error {
	if typ, ok := emailTypePath(path); ok {
		val, err := str(v, "emails.value")
		if err != nil {
			return err
		}
		setEmail(u, typ, val)
		return nil
	}
	base, _, _ := strings.Cut(path, "[")
	base, _, _ = strings.Cut(base, ".")
	base = strings.TrimPrefix(base, "enterprise:")
	if ignoredUserAttrs[base] {
		return nil
	}
	return badRequest("invalidPath", "attribute %q is not a User attribute sallyport knows", path)
}

// emailTypePath matches emails[type eq "work"].value.
func emailTypePath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "emails[")
	if !ok {
		return "", false
	}
	f, tail, ok := strings.Cut(rest, "]")
	if !ok || (tail != ".value" && tail != "") {
		return "", false
	}
	return typeTerm(f)
}

// typeTerm reads `type eq "work"` (type is not a filterable attribute of
// its own).
func typeTerm(f string) (string, bool) {
	attr, rest, ok := strings.Cut(strings.TrimSpace(f), " ")
	if !ok || !strings.EqualFold(attr, "type") {
		return "", false
	}
	op, val, ok := strings.Cut(strings.TrimSpace(rest), " ")
	if !ok || !strings.EqualFold(op, "eq") {
		return "", false
	}
	var s string
	if json.Unmarshal([]byte(strings.TrimSpace(val)), &s) != nil {
		return "", false
	}
	return s, true
}

func setEmail(u *iga.SCIMUser, typ, val string) {
	for i, e := range u.Emails {
		if strings.EqualFold(e.Type, typ) {
			if val == "" {
				u.Emails = append(u.Emails[:i], u.Emails[i+1:]...)
			} else {
				u.Emails[i].Value = val
			}
			return
		}
	}
	if val != "" {
		u.Emails = append(u.Emails, iga.SCIMEmail{Value: val, Type: typ, Primary: len(u.Emails) == 0})
	}
}

// setObject calls set for each attribute of a JSON object value.
func setObject(v json.RawMessage, name string, set func(string, json.RawMessage) error) error {
	if isNull(v) {
		return nil
	}
	o, err := parseObject(v, name)
	if err != nil {
		return err
	}
	for k, sub := range o {
		if err := set(k, sub); err != nil {
			return err
		}
	}
	return nil
}

func emails(v json.RawMessage) ([]iga.SCIMEmail, error) {
	if isNull(v) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, badRequest("invalidValue", "emails must be an array")
	}
	var out []iga.SCIMEmail
	for _, it := range items {
		o, err := parseObject(it, "an email")
		if err != nil {
			return nil, err
		}
		var e iga.SCIMEmail
		if e.Value, err = str(o["value"], "emails.value"); err != nil {
			return nil, err
		}
		if e.Type, err = str(o["type"], "emails.type"); err != nil {
			return nil, err
		}
		if p, ok := o["primary"]; ok && !isNull(p) {
			if e.Primary, err = boolean(p, "emails.primary"); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func managerRef(v json.RawMessage) (string, error) {
	if isNull(v) {
		return "", nil
	}
	return reference(v, "manager")
}

// userFromObject sets every attribute of o on u (POST, PUT). An
// attribute no schema declares is invalidSyntax.
func userFromObject(u *iga.SCIMUser, o object) error {
	for k, v := range o {
		if err := setUser(u, k, v); err != nil {
			if e, ok := err.(*Error); ok && e.SCIMType == "invalidPath" {
				return badRequest("invalidSyntax", "attribute %q is not a User attribute sallyport knows", k)
			}
			return err
		}
	}
	return nil
}
