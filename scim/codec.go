package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Schema URNs (RFC 7643 §8.7, RFC 7644 §3).
const (
	userSchema       = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	enterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	listSchema       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	patchSchema      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func itoa(n int) string { return strconv.Itoa(n) }

// object is a JSON object with its attribute names lower-cased: SCIM
// attribute names are case-insensitive (RFC 7643 §2.1).
type object map[string]json.RawMessage

// readObject reads a request body that must be one JSON object.
func readObject(r *http.Request) (object, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err // a *http.MaxBytesError becomes 413
	}
	return parseObject(body, "request body")
}

// parseObject parses raw as one JSON object, nothing after it, names folded.
func parseObject(raw []byte, what string) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, badRequest("invalidSyntax", "%s is not a JSON object", what)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("invalidSyntax", "%s has data after its JSON object", what)
	}
	o := make(object, len(m))
	for k, v := range m {
		lk := strings.ToLower(k)
		if _, dup := o[lk]; dup {
			return nil, badRequest("invalidSyntax", "%s names attribute %s twice", what, k)
		}
		o[lk] = v
	}
	return o, nil
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(bytes.TrimSpace(v)) == "null" }

// str decodes a string attribute; null is "".
func str(v json.RawMessage, name string) (string, error) {
	var s string
	if isNull(v) {
		return "", nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return "", badRequest("invalidValue", "%s must be a string", name)
	}
	return s, nil
}

// boolean decodes a boolean attribute, also as the strings "True" and
// "False" that Microsoft Entra ID sends.
func boolean(v json.RawMessage, name string) (bool, error) {
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		switch strings.ToLower(s) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, badRequest("invalidValue", "%s must be true or false", name)
}

// reference decodes a value that is a string or an object with a "value"
// (a manager, a group member).
func reference(v json.RawMessage, name string) (string, error) {
	if s, err := str(v, name); err == nil {
		return s, nil
	}
	o, err := parseObject(v, name)
	if err != nil {
		return "", badRequest("invalidValue", "%s must be a string or an object with a value", name)
	}
	return str(o["value"], name+".value")
}

// references decodes an array of references, or a single one.
func references(v json.RawMessage, name string) ([]string, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		one, err := reference(v, name)
		if err != nil {
			return nil, err
		}
		return []string{one}, nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, err := reference(it, name)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, badRequest("invalidValue", "%s: a value is empty", name)
		}
		out = append(out, s)
	}
	return out, nil
}
