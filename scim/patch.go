package scim

import (
	"encoding/json"
	"strings"
)

// maxOperations bounds one PATCH: IdPs send a handful.
const maxOperations = 1000

// operation is one PATCH operation (RFC 7644 §3.5.2), op lower-cased:
// Entra ID capitalises it.
type operation struct {
	op    string
	path  string
	value json.RawMessage
}

// parsePatch reads a PatchOp body.
func parsePatch(o object) ([]operation, error) {
	for k := range o {
		if k != "schemas" && k != "operations" {
			return nil, badRequest("invalidSyntax", "a PATCH body has schemas and Operations, not %q", k)
		}
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(o["operations"], &raw); err != nil || len(raw) == 0 {
		return nil, badRequest("invalidSyntax", "Operations must be a non-empty array")
	}
	if len(raw) > maxOperations {
		return nil, badRequest("tooMany", "more than %d operations in one PATCH", maxOperations)
	}
	ops := make([]operation, 0, len(raw))
	for _, r := range raw {
		op, err := parseOperation(r)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func parseOperation(raw json.RawMessage) (operation, error) {
	o, err := parseObject(raw, "a PATCH operation")
	if err != nil {
		return operation{}, err
	}
	var op operation
	for k, v := range o {
		switch k {
		case "op":
			op.op, err = str(v, "op")
		case "path":
			op.path, err = str(v, "path")
		case "value":
			op.value = v
		default:
			err = badRequest("invalidSyntax", "a PATCH operation has op, path and value, not %q", k)
		}
		if err != nil {
			return operation{}, err
		}
	}
	op.op = strings.ToLower(op.op)
	switch {
	case op.op != "add" && op.op != "replace" && op.op != "remove":
		return operation{}, badRequest("invalidSyntax", "op %q is not add, replace or remove", op.op)
	case op.op == "remove" && op.path == "":
		return operation{}, badRequest("noTarget", "remove needs a path")
	case op.op != "remove" && isNull(op.value):
		return operation{}, badRequest("invalidValue", "%s needs a value", op.op)
	}
	return op, nil
}
