package scim

import (
	"net/http"
)

// This file is the discovery endpoints (RFC 7644 §4): what this service
// provider supports, its resource types and their schemas.

func (h *Handler) metaRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"/ServiceProviderConfig", h.serviceProviderConfig)
	mux.HandleFunc("GET "+Prefix+"/ResourceTypes", h.resourceTypes)
	mux.HandleFunc("GET "+Prefix+"/ResourceTypes/{name}", h.resourceType)
	mux.HandleFunc("GET "+Prefix+"/Schemas", h.schemas)
	mux.HandleFunc("GET "+Prefix+"/Schemas/{id}", h.schema)
}

type supported struct {
	Supported bool `json:"supported"`
}

func (h *Handler) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/sallyport/sallyport/blob/main/docs/scim.md",
		"patch":            supported{true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxCount},
		"changePassword":   supported{false},
		"sort":             supported{false},
		"etag":             supported{false},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "Bearer token", "primary": true,
			"description": "A token from the environment variable scim.token_env names",
		}},
		"meta": map[string]string{"resourceType": "ServiceProviderConfig", "location": baseURL(r) + "/ServiceProviderConfig"},
	})
}

func resourceTypeJSON(r *http.Request, name string) map[string]any {
	rt := map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
		"id":      name, "name": name, "endpoint": "/" + name + "s",
		"meta": map[string]string{"resourceType": "ResourceType", "location": baseURL(r) + "/ResourceTypes/" + name},
	}
	if name == "User" {
		rt["schema"] = userSchema
		rt["schemaExtensions"] = []map[string]any{{"schema": enterpriseSchema, "required": false}}
	} else {
		rt["schema"] = groupSchema
	}
	return rt
}

func (h *Handler) resourceTypes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, page{start: 1, count: maxCount}.list([]any{resourceTypeJSON(r, "User"), resourceTypeJSON(r, "Group")}))
}

func (h *Handler) resourceType(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name != "User" && name != "Group" {
		writeError(w, &Error{Status: http.StatusNotFound, Detail: "no resource type " + name})
		return
	}
	writeJSON(w, http.StatusOK, resourceTypeJSON(r, name))
}

// attr describes one attribute in a schema (RFC 7643 §7).
func attr(name, typ string, required bool, mutability, uniqueness string, sub ...map[string]any) map[string]any {
	a := map[string]any{"name": name, "type": typ, "multiValued": false, "required": required,
		"caseExact": false, "mutability": mutability, "returned": "default", "uniqueness": uniqueness}
	if len(sub) > 0 {
		a["subAttributes"] = sub
	}
	return a
}

func multi(a map[string]any) map[string]any {
	a["multiValued"] = true
	return a
}

func schemaJSON(r *http.Request, id string) (map[string]any, bool) {
	var name string
	var attrs []map[string]any
	switch id {
	case userSchema:
		name = "User"
		attrs = []map[string]any{
			attr("userName", "string", true, "readWrite", "server"),
			attr("externalId", "string", false, "readWrite", "none"),
			attr("name", "complex", false, "readWrite", "none",
				attr("givenName", "string", false, "readWrite", "none"), attr("familyName", "string", false, "readWrite", "none"),
				attr("formatted", "string", false, "readOnly", "none")),
			attr("displayName", "string", false, "readWrite", "none"),
			attr("active", "boolean", false, "readWrite", "none"),
			multi(attr("emails", "complex", false, "readWrite", "none",
				attr("value", "string", false, "readWrite", "none"), attr("type", "string", false, "readWrite", "none"),
				attr("primary", "boolean", false, "readWrite", "none"))),
			multi(attr("roles", "complex", false, "readOnly", "none", attr("value", "string", false, "readOnly", "none"))),
		}
	case enterpriseSchema:
		name = "EnterpriseUser"
		attrs = []map[string]any{attr("manager", "complex", false, "readWrite", "none", attr("value", "string", false, "readWrite", "none"))}
	case groupSchema:
		name = "Group"
		attrs = []map[string]any{
			attr("displayName", "string", true, "readWrite", "server"),
			attr("externalId", "string", false, "readWrite", "none"),
			multi(attr("members", "complex", false, "readWrite", "none", attr("value", "string", false, "immutable", "none"),
				attr("display", "string", false, "readOnly", "none"))),
		}
	default:
		return nil, false
	}
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"}, "id": id, "name": name,
		"attributes": attrs, "meta": map[string]string{"resourceType": "Schema", "location": baseURL(r) + "/Schemas/" + id}}, true
}

func (h *Handler) schemas(w http.ResponseWriter, r *http.Request) {
	var all []any
	for _, id := range []string{userSchema, enterpriseSchema, groupSchema} {
		s, _ := schemaJSON(r, id)
		all = append(all, s)
	}
	writeJSON(w, http.StatusOK, page{start: 1, count: maxCount}.list(all))
}

func (h *Handler) schema(w http.ResponseWriter, r *http.Request) {
	s, ok := schemaJSON(r, r.PathValue("id"))
	if !ok {
		writeError(w, &Error{Status: http.StatusNotFound, Detail: "no schema " + r.PathValue("id")})
		return
	}
	writeJSON(w, http.StatusOK, s)
}
