package sqlstore

import (
	"time"

	"github.com/sallyport/sallyport/iga"
)

// An identity's credentials and entitlements are stored as JSON arrays in
// its row, so that admission reads one row by primary key. The *Doc types
// are that stored form: explicit field names, times as timeLayout text
// ("" for none), decoupled from the model so the model can change freely.

type sshKeyDoc struct {
	Key     string `json:"key"`
	Expires string `json:"expires,omitempty"`
}

type oidcDoc struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

type entitlementDoc struct {
	Target  string       `json:"target"`
	Login   string       `json:"login"`
	Actions []iga.Action `json:"actions,omitempty"`
	Expires string       `json:"expires,omitempty"`
	From    []string     `json:"from,omitempty"`
	// Commands are the exec command patterns; absent: any command.
	Commands []string `json:"commands,omitempty"`
}

// timeText is e.time as a string, "" for none.
func (e *encoder) timeText(t time.Time) string {
	s, _ := e.time(t).(string)
	return s
}

func (e *encoder) sshKeys(keys []iga.SSHKey) string {
	docs := make([]sshKeyDoc, len(keys))
	for i, k := range keys {
		docs[i] = sshKeyDoc{Key: k.Key, Expires: e.timeText(k.Expires)}
	}
	return list(docs)
}

func oidcDocs(bs []iga.OIDCBinding) string {
	docs := make([]oidcDoc, len(bs))
	for i, b := range bs {
		docs[i] = oidcDoc(b)
	}
	return list(docs)
}

func (e *encoder) entitlements(ents []iga.Entitlement) string {
	docs := make([]entitlementDoc, len(ents))
	for i, en := range ents {
		docs[i] = entitlementDoc{Target: en.Target, Login: en.Login, Actions: en.Actions,
			Expires: e.timeText(en.Expires), From: en.From, Commands: en.Commands}
	}
	return list(docs)
}

// docsCol scans a JSON array of stored docs D into model values T; an
// empty array becomes nil.
type docsCol[D, T any] struct {
	p    *[]T
	from func(D) (T, error)
}

func (c docsCol[D, T]) Scan(src any) error {
	var docs []D
	if err := (listCol[D]{&docs}).Scan(src); err != nil {
		return err
	}
	out := make([]T, 0, len(docs))
	for _, d := range docs {
		v, err := c.from(d)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		out = nil
	}
	*c.p = out
	return nil
}

func sshKeysCol(p *[]iga.SSHKey) docsCol[sshKeyDoc, iga.SSHKey] {
	return docsCol[sshKeyDoc, iga.SSHKey]{p: p, from: func(d sshKeyDoc) (iga.SSHKey, error) {
		exp, err := parseTimeText(d.Expires)
		return iga.SSHKey{Key: d.Key, Expires: exp}, err
	}}
}

func oidcCol(p *[]iga.OIDCBinding) docsCol[oidcDoc, iga.OIDCBinding] {
	return docsCol[oidcDoc, iga.OIDCBinding]{p: p, from: func(d oidcDoc) (iga.OIDCBinding, error) {
		return iga.OIDCBinding(d), nil
	}}
}

func entitlementsCol(p *[]iga.Entitlement) docsCol[entitlementDoc, iga.Entitlement] {
	return docsCol[entitlementDoc, iga.Entitlement]{p: p, from: func(d entitlementDoc) (iga.Entitlement, error) {
		exp, err := parseTimeText(d.Expires)
		return iga.Entitlement{Target: d.Target, Login: d.Login, Actions: nilIfEmpty(d.Actions),
			Expires: exp, From: nilIfEmpty(d.From), Commands: nilIfEmpty(d.Commands)}, err
	}}
}

// parseTimeText parses a stored time; "" is the zero time.
func parseTimeText(s string) (time.Time, error) {
	var t time.Time
	if s == "" {
		return t, nil
	}
	err := timeCol{&t}.Scan(s)
	return t, err
}

func nilIfEmpty[T any](v []T) []T {
	if len(v) == 0 {
		return nil
	}
	return v
}
