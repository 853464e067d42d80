// Package ocsftest checks exported events against the required fields of
// their OCSF 1.8 class, for the tests of auditexport and of serve. The
// table, required.json, was written from the schema repository (see its
// "source"), with each class's inherited attributes resolved.
package ocsftest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
)

//go:embed required.json
var requiredJSON []byte

type constraints struct {
	AtLeastOne []string `json:"at_least_one"`
	JustOne    []string `json:"just_one"`
}

type table struct {
	Classes map[string]struct {
		Name        string      `json:"name"`
		CategoryUID int         `json:"category_uid"`
		Required    []string    `json:"required"`
		Constraints constraints `json:"constraints"`
		ActivityIDs []int       `json:"activity_ids"`
	} `json:"classes"`
	Objects map[string]struct {
		Required    []string    `json:"required"`
		Constraints constraints `json:"constraints"`
	} `json:"objects"`
	AttributeObjects map[string]string `json:"attribute_objects"`
}

var required = func() table {
	var t table
	if err := json.Unmarshal(requiredJSON, &t); err != nil {
		panic("ocsftest: required.json: " + err.Error())
	}
	return t
}()

// Classes lists the class uids the table covers.
func Classes() []int {
	var out []int
	for k := range required.Classes {
		n, _ := strconv.Atoi(k)
		out = append(out, n)
	}
	return out
}

// Validate checks one OCSF event (as JSON) against its class: every
// required attribute present and non-empty, the class's constraints, the
// required attributes and constraints of the objects it holds, and
// type_uid = class_uid*100 + activity_id.
func Validate(event []byte) error {
	var e map[string]any
	if err := json.Unmarshal(event, &e); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	classUID, _ := e["class_uid"].(float64)
	c, ok := required.Classes[strconv.Itoa(int(classUID))]
	if !ok {
		return fmt.Errorf("class_uid %v is not one of the classes sallyport writes", e["class_uid"])
	}
	for _, f := range c.Required {
		if empty(e[f]) {
			return fmt.Errorf("%s (%v): required %s missing", c.Name, classUID, f)
		}
	}
	if err := check(e, c.Constraints, c.Name); err != nil {
		return err
	}
	activity, _ := e["activity_id"].(float64)
	if cat, _ := e["category_uid"].(float64); int(cat) != c.CategoryUID {
		return fmt.Errorf("%s: category_uid %v, want %d", c.Name, e["category_uid"], c.CategoryUID)
	}
	if !validActivity(int(activity), c.ActivityIDs) {
		return fmt.Errorf("%s: activity_id %v is not in the class", c.Name, activity)
	}
	if tu, _ := e["type_uid"].(float64); int(tu) != int(classUID)*100+int(activity) {
		return fmt.Errorf("%s: type_uid %v, want %d", c.Name, e["type_uid"], int(classUID)*100+int(activity))
	}
	return checkObjects(e, c.Name)
}

// checkObjects checks the objects of e the table knows.
func checkObjects(e map[string]any, class string) error {
	for attr, obj := range required.AttributeObjects {
		v, ok := e[attr].(map[string]any)
		if !ok {
			continue
		}
		o := required.Objects[obj]
		for _, f := range o.Required {
			if empty(v[f]) {
				return fmt.Errorf("%s: %s (%s): required %s missing", class, attr, obj, f)
			}
		}
		if err := check(v, o.Constraints, class+": "+attr); err != nil {
			return err
		}
		if inner, ok := v["user"].(map[string]any); ok && attr == "actor" {
			if err := check(inner, required.Objects["user"].Constraints, class+": actor.user"); err != nil {
				return err
			}
		}
	}
	return nil
}

func check(v map[string]any, c constraints, what string) error {
	if len(c.AtLeastOne) > 0 && count(v, c.AtLeastOne) == 0 {
		return fmt.Errorf("%s: needs at least one of %v", what, c.AtLeastOne)
	}
	if len(c.JustOne) > 0 && count(v, c.JustOne) != 1 {
		return fmt.Errorf("%s: needs exactly one of %v", what, c.JustOne)
	}
	return nil
}

func count(v map[string]any, fields []string) int {
	n := 0
	for _, f := range fields {
		if !empty(v[f]) {
			n++
		}
	}
	return n
}

// validActivity allows the class's activities and the base event's
// Unknown (0) and Other (99).
func validActivity(a int, ids []int) bool {
	if a == 0 || a == 99 {
		return true
	}
	for _, id := range ids {
		if id == a {
			return true
		}
	}
	return false
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}
