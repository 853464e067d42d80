package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"
)

// timeLayout is RFC 3339 with a fixed nine-digit fraction. Every time is
// stored in UTC in this form, so text order is time order in both drivers
// and nanoseconds survive the round trip.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// encoder turns model values into column arguments, remembering the first
// value that cannot be stored so callers check once per row.
type encoder struct{ err error }

// time encodes t; the zero time, meaning "none", is stored as NULL.
func (e *encoder) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		if e.err == nil {
			e.err = fmt.Errorf("time %s is outside years 0000-9999", t)
		}
		return nil
	}
	return t.Format(timeLayout)
}

// list encodes a slice as a JSON array; nil and empty both become "[]".
func list[T any](v []T) string {
	if len(v) == 0 {
		return "[]"
	}
	b, err := json.Marshal(v)
	if err != nil { // slices of strings always marshal
		panic(fmt.Sprintf("sqlstore: marshal list: %v", err))
	}
	return string(b)
}

// flag encodes a bool as 0 or 1, an INTEGER in both schemas.
func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// timeCol scans a nullable time column; NULL becomes the zero time.
type timeCol struct{ p *time.Time }

func (c timeCol) Scan(src any) error {
	s, ok, err := text(src)
	if err != nil || !ok {
		*c.p = time.Time{}
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("parse stored time %q: %w", s, err)
	}
	*c.p = t.UTC()
	return nil
}

// listCol scans a JSON array column; an empty array becomes nil.
type listCol[T any] struct{ p *[]T }

func (c listCol[T]) Scan(src any) error {
	s, ok, err := text(src)
	if err != nil || !ok {
		*c.p = nil
		return err
	}
	var v []T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return fmt.Errorf("parse stored list %q: %w", s, err)
	}
	if len(v) == 0 {
		v = nil
	}
	*c.p = v
	return nil
}

// flagCol scans an INTEGER 0/1 column into a bool.
type flagCol struct{ p *bool }

func (c flagCol) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*c.p = v != 0
	case int32:
		*c.p = v != 0
	case bool:
		*c.p = v
	default:
		return fmt.Errorf("scan flag: got %T, want an integer", src)
	}
	return nil
}

// text reports the string in a text column value; ok is false for NULL.
func text(src any) (s string, ok bool, err error) {
	switch v := src.(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	case []byte:
		return string(v), true, nil
	default:
		return "", false, fmt.Errorf("scan text: got %T, want a string", src)
	}
}
