package iga

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// blockStyle is yaml's default style, spelled out for readability.
const blockStyle yaml.Style = 0

// exportHeader opens every exported registry file.
const exportHeader = "sallyport registry: apply with `sallyport iga apply -f FILE`.\n" +
	"Dates are YYYY-MM-DD (00:00:00 UTC that day) or RFC 3339."

// Export reads the whole registry as the registry file declares it: people
// and identities sorted by id, each with its latest certification
// decision. LastUsed is left out, as the file does not carry it.
func (r *Registry) Export(ctx context.Context) (Doc, error) {
	people, err := r.Store.People(ctx)
	if err != nil {
		return Doc{}, fmt.Errorf("export registry: read people: %w", err)
	}
	identities, err := r.Store.Identities(ctx)
	if err != nil {
		return Doc{}, fmt.Errorf("export registry: read identities: %w", err)
	}
	if err := markManaged(ctx, r.Store, people); err != nil {
		return Doc{}, fmt.Errorf("export registry: %w", err)
	}
	for i := range identities {
		identities[i].LastUsed = time.Time{}
	}
	return canonicalDoc(Doc{People: people, Identities: identities}), nil
}

// MarshalDoc writes d as a registry file that ParseFile reads back to the
// same Doc. The output is deterministic: people and identities sorted by
// id, holders, roles, keys, bindings, CIDRs and commands sorted, entitlements by
// target then login, actions in the order of Actions — so two exports of
// one registry are byte-identical and applying an export changes nothing.
func MarshalDoc(d Doc) ([]byte, error) {
	d = canonicalDoc(d)
	people := seqNode(blockStyle)
	for _, p := range d.People {
		people.Content = append(people.Content, personNode(p))
	}
	identities := seqNode(blockStyle)
	for _, id := range d.Identities {
		identities.Content = append(identities.Content, identityNode(id))
	}
	root := mapNode(blockStyle, "people", people, "identities", identities)
	root.HeadComment = exportHeader
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("write registry file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write registry file: %w", err)
	}
	return buf.Bytes(), nil
}

func personNode(p Person) *yaml.Node {
	n := mapNode(yaml.FlowStyle, "id", strNode(p.ID))
	addStr(n, "name", p.Name)
	if len(p.Roles) > 0 {
		addPair(n, "roles", strsNode(p.Roles))
	}
	addStr(n, "status", string(p.Status))
	if p.ManagedBy != "" {
		n.LineComment = managedComment(p)
	}
	return n
}

func identityNode(id Identity) *yaml.Node {
	n := mapNode(blockStyle, "id", strNode(id.ID), "kind", strNode(string(id.Kind)), "state", strNode(string(id.State)))
	addStr(n, "owner", id.Owner)
	addStr(n, "environment", id.Environment)
	if len(id.Holders) > 0 {
		addPair(n, "holders", strsNode(id.Holders))
	}
	if c := credentialsNode(id.Credentials); c != nil {
		addPair(n, "credentials", c)
	}
	if len(id.Entitlements) > 0 {
		ents := seqNode(blockStyle)
		for _, e := range id.Entitlements {
			ents.Content = append(ents.Content, entitlementNode(e))
		}
		addPair(n, "entitlements", ents)
	}
	if id.Certification != nil {
		addPair(n, "certification", certificationNode(*id.Certification))
	}
	return n
}

func credentialsNode(c Credentials) *yaml.Node {
	if len(c.SSHKeys) == 0 && len(c.OIDC) == 0 {
		return nil
	}
	n := mapNode(blockStyle)
	if len(c.SSHKeys) > 0 {
		keys := seqNode(blockStyle)
		for _, k := range c.SSHKeys {
			kn := mapNode(yaml.FlowStyle, "key", strNode(k.Key))
			addTime(kn, "expires", k.Expires)
			keys.Content = append(keys.Content, kn)
		}
		addPair(n, "ssh_keys", keys)
	}
	if len(c.OIDC) > 0 {
		bindings := seqNode(blockStyle)
		for _, b := range c.OIDC {
			bindings.Content = append(bindings.Content, mapNode(yaml.FlowStyle, "issuer", strNode(b.Issuer), "subject", strNode(b.Subject)))
		}
		addPair(n, "oidc", bindings)
	}
	return n
}

func entitlementNode(e Entitlement) *yaml.Node {
	actions := make([]string, len(e.Actions))
	for i, a := range e.Actions {
		actions[i] = string(a)
	}
	n := mapNode(yaml.FlowStyle, "target", strNode(e.Target), "login", strNode(e.Login), "actions", strsNode(actions))
	addTime(n, "expires", e.Expires)
	if len(e.From) > 0 {
		addPair(n, "from", strsNode(e.From))
	}
	if len(e.Commands) > 0 {
		addPair(n, "commands", strsNode(e.Commands))
	}
	return n
}

func certificationNode(c Certification) *yaml.Node {
	n := mapNode(yaml.FlowStyle)
	if c.Decision != DecisionCertify {
		addStr(n, "decision", c.Decision)
	}
	addStr(n, "by", c.By)
	addTime(n, "at", c.At)
	addTime(n, "until", c.Until)
	addStr(n, "note", c.Note)
	return n
}

func mapNode(style yaml.Style, pairs ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Style: style}
	for i := 0; i+1 < len(pairs); i += 2 {
		addPair(n, pairs[i].(string), pairs[i+1].(*yaml.Node))
	}
	return n
}

func seqNode(style yaml.Style) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Style: style}
}

// strNode is a string scalar; the encoder quotes it when it would
// otherwise read back as something else (true, 12, a date).
func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func strsNode(ss []string) *yaml.Node {
	n := seqNode(yaml.FlowStyle)
	for _, s := range ss {
		n.Content = append(n.Content, strNode(s))
	}
	return n
}

func addPair(n *yaml.Node, key string, v *yaml.Node) {
	n.Content = append(n.Content, strNode(key), v)
}

// addStr adds key: s unless s is empty.
func addStr(n *yaml.Node, key, s string) {
	if s != "" {
		addPair(n, key, strNode(s))
	}
}

// addTime adds key: date unless t is zero; dates are left unquoted.
func addTime(n *yaml.Node, key string, t time.Time) {
	if !t.IsZero() {
		addPair(n, key, &yaml.Node{Kind: yaml.ScalarNode, Value: formatTime(t)})
	}
}

// canonicalDoc sorts everything in d so that equal registries compare
// and marshal equal.
func canonicalDoc(d Doc) Doc {
	out := Doc{}
	for _, p := range d.People {
		out.People = append(out.People, canonicalPerson(p))
	}
	for _, id := range d.Identities {
		out.Identities = append(out.Identities, canonicalIdentity(id))
	}
	slices.SortStableFunc(out.People, func(a, b Person) int { return strings.Compare(a.ID, b.ID) })
	slices.SortStableFunc(out.Identities, func(a, b Identity) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func canonicalPerson(p Person) Person {
	p.Roles = sortedStrings(p.Roles)
	return p
}

// canonicalIdentity returns id with every list sorted, empty lists nil and
// times in UTC to the second. It copies, so the caller's slices stay as they were.
func canonicalIdentity(id Identity) Identity {
	id.Holders = sortedStrings(id.Holders)
	id.Credentials.SSHKeys = canonicalKeys(id.Credentials.SSHKeys)
	id.Credentials.OIDC = canonicalBindings(id.Credentials.OIDC)
	id.Entitlements = canonicalEntitlements(id.Entitlements)
	if id.Certification != nil {
		c := *id.Certification
		c.At, c.Until = canonicalTime(c.At), canonicalTime(c.Until)
		id.Certification = &c
	}
	id.LastUsed = canonicalTime(id.LastUsed)
	return id
}

func canonicalKeys(keys []SSHKey) []SSHKey {
	if len(keys) == 0 {
		return nil
	}
	out := make([]SSHKey, len(keys))
	for i, k := range keys {
		out[i] = SSHKey{Key: k.Key, Expires: canonicalTime(k.Expires)}
	}
	slices.SortStableFunc(out, func(a, b SSHKey) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func canonicalBindings(bs []OIDCBinding) []OIDCBinding {
	if len(bs) == 0 {
		return nil
	}
	out := slices.Clone(bs)
	slices.SortStableFunc(out, func(a, b OIDCBinding) int {
		return cmp.Or(strings.Compare(a.Issuer, b.Issuer), strings.Compare(a.Subject, b.Subject))
	})
	return out
}

func canonicalEntitlements(es []Entitlement) []Entitlement {
	if len(es) == 0 {
		return nil
	}
	out := make([]Entitlement, len(es))
	for i, e := range es {
		e.Actions = slices.Clone(e.Actions)
		slices.SortStableFunc(e.Actions, func(a, b Action) int { return cmp.Compare(actionRank(a), actionRank(b)) })
		if len(e.Actions) == 0 {
			e.Actions = nil
		}
		e.From = sortedStrings(e.From)
		e.Commands = sortedStrings(e.Commands)
		e.Expires = canonicalTime(e.Expires)
		out[i] = e
	}
	slices.SortStableFunc(out, func(a, b Entitlement) int {
		return cmp.Or(strings.Compare(a.Target, b.Target), strings.Compare(a.Login, b.Login))
	})
	return out
}

// actionRank orders actions as Actions lists them; unknown ones go last.
func actionRank(a Action) int {
	if i := slices.Index(Actions, a); i >= 0 {
		return i
	}
	return len(Actions)
}

func sortedStrings(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// canonicalTime is t in UTC to the second, the precision of the file.
func canonicalTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Second)
}
