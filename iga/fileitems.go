package iga

import (
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file reads the items of a registry file — people, identities and
// what an identity holds — on top of the YAML walking in file.go.

// Roles a person may have.
var personRoles = []string{"owner", "auditor", "admin"}

func (p *fileParser) addPerson(f *File, n *yaml.Node) {
	what := itemName("person", n)
	var pr Person
	p.fields(n, what, map[string]func(*yaml.Node){
		"id":     func(v *yaml.Node) { pr.ID = p.personID(v, what+": id") },
		"name":   func(v *yaml.Node) { pr.Name = p.str(v, what+": name") },
		"roles":  func(v *yaml.Node) { pr.Roles = p.roles(v, what+": roles") },
		"status": func(v *yaml.Node) { pr.Status = p.status(v, what) },
	})
	if n.Kind != yaml.MappingNode {
		return
	}
	if pr.ID == "" {
		if scalarField(n, "id") == "" {
			p.add(n, "%s: id is missing; a person's id is their e-mail address", what)
		}
		return
	}
	if first, dup := f.people[pr.ID]; dup {
		p.add(n, "person %s listed twice (first at line %d)", pr.ID, first)
		return
	}
	if pr.Status == "" {
		pr.Status = PersonActive // a person listed without a status is still with the organisation
	}
	f.people[pr.ID] = n.Line
	f.Doc.People = append(f.Doc.People, canonicalPerson(pr))
}

// personID checks the shape of a person id: an e-mail address.
func (p *fileParser) personID(n *yaml.Node, what string) string {
	s := p.str(n, what)
	if s != "" && !isEmail(s) {
		p.add(n, "%s: %q is not an e-mail address; people are keyed by e-mail, e.g. alice@example.com", what, s)
		return ""
	}
	return s
}

func (p *fileParser) roles(n *yaml.Node, what string) []string {
	roles, lines := p.strs(n, what)
	for i, r := range roles {
		if !slices.Contains(personRoles, r) {
			p.add(&yaml.Node{Line: lines[i]}, "%s: unknown role %q; want one of %s", what, r, strings.Join(personRoles, ", "))
		}
	}
	return roles
}

func (p *fileParser) status(n *yaml.Node, what string) PersonStatus {
	s := PersonStatus(p.str(n, what))
	if s != "" && s != PersonActive && s != PersonInactive {
		p.add(n, "%s: unknown status %q; want active or inactive", what, s)
	}
	return s
}

func (p *fileParser) addIdentity(f *File, n *yaml.Node) {
	what := itemName("identity", n)
	id := Identity{}
	lines := &identityLines{at: n.Line, holders: map[string]int{}, targets: map[string]int{}}
	p.fields(n, what, map[string]func(*yaml.Node){
		"id":            func(v *yaml.Node) { id.ID = p.identityID(v, what+": id") },
		"kind":          func(v *yaml.Node) { id.Kind = p.kind(v, what) },
		"state":         func(v *yaml.Node) { id.State = p.state(v, what) },
		"owner":         func(v *yaml.Node) { id.Owner, lines.owner = p.str(v, what+": owner"), v.Line },
		"environment":   func(v *yaml.Node) { id.Environment = p.word(v, what+": environment") },
		"holders":       func(v *yaml.Node) { id.Holders = p.holders(v, what+": holders", lines) },
		"credentials":   func(v *yaml.Node) { id.Credentials = p.credentials(v, what+": credentials") },
		"entitlements":  func(v *yaml.Node) { id.Entitlements = p.entitlements(v, what, lines) },
		"certification": func(v *yaml.Node) { id.Certification, lines.certification = p.certification(v, what), v.Line },
	})
	if n.Kind != yaml.MappingNode {
		return
	}
	if first, dup := f.identities[id.ID]; dup && id.ID != "" {
		p.add(n, "identity %s listed twice (first at line %d)", id.ID, first.at)
		return
	}
	if id.ID != "" {
		f.identities[id.ID] = lines
	}
	if !p.identityComplete(n, what, id) {
		return
	}
	if len(id.Holders) > 0 && id.Kind != KindBreakGlass {
		p.add(n, "%s: holders are only for break-glass identities (this one is %s); remove them or change the kind", what, id.Kind)
	}
	f.Doc.Identities = append(f.Doc.Identities, canonicalIdentity(id))
}

// identityComplete reports the required fields that are missing.
func (p *fileParser) identityComplete(n *yaml.Node, what string, id Identity) bool {
	ok := true
	if id.ID == "" && scalarField(n, "id") == "" {
		p.add(n, "%s: id is missing", what)
		ok = false
	}
	if id.Kind == "" && scalarField(n, "kind") == "" {
		p.add(n, "%s: kind is missing; want one of %s", what, joinKinds())
		ok = false
	}
	if id.State == "" && scalarField(n, "state") == "" {
		p.add(n, "%s: state is missing; want one of %s", what, joinStates())
		ok = false
	}
	return ok && id.ID != "" && id.Kind != "" && id.State != ""
}

// identityIDChars is what an identity id may be made of: it is typed as
// the SSH user (IDENTITY@TARGET, IDENTITY+TARGET) and the database user.
const identityIDChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

// maxIdentityID keeps ids within what SSH and database user names accept.
const maxIdentityID = 63

func (p *fileParser) identityID(n *yaml.Node, what string) string {
	s := p.str(n, what)
	bad := strings.ContainsFunc(s, func(r rune) bool { return !strings.ContainsRune(identityIDChars, r) })
	if s != "" && (bad || len(s) > maxIdentityID || strings.ContainsAny(s[:1], "._-")) {
		p.add(n, "%s: %q is not a valid identity id; use up to %d letters, digits, '.', '_' or '-', starting with a letter or digit", what, s, maxIdentityID)
		return ""
	}
	return s
}

func (p *fileParser) kind(n *yaml.Node, what string) Kind {
	k := Kind(p.str(n, what))
	if k != "" && !slices.Contains(Kinds, k) {
		p.add(n, "%s: unknown kind %q; want one of %s", what, k, joinKinds())
		return ""
	}
	return k
}

func (p *fileParser) state(n *yaml.Node, what string) State {
	s := State(p.str(n, what))
	if s != "" && !slices.Contains(States, s) {
		p.add(n, "%s: unknown state %q; want one of %s", what, s, joinStates())
		return ""
	}
	return s
}

// word reads a value that must not contain spaces (environments, logins, targets).
func (p *fileParser) word(n *yaml.Node, what string) string {
	s := p.str(n, what)
	if hasSpaceOrControl(s) {
		p.add(n, "%s: %q must not contain spaces or control characters", what, s)
		return ""
	}
	return s
}

func (p *fileParser) holders(n *yaml.Node, what string, lines *identityLines) []string {
	holders, at := p.strs(n, what)
	for i, h := range holders {
		lines.holders[h] = at[i]
	}
	return holders
}

func (p *fileParser) credentials(n *yaml.Node, what string) Credentials {
	var c Credentials
	p.fields(n, what, map[string]func(*yaml.Node){
		"ssh_keys": func(v *yaml.Node) { c.SSHKeys = p.sshKeys(v, what+": ssh_keys") },
		"oidc":     func(v *yaml.Node) { c.OIDC = p.oidcBindings(v, what+": oidc") },
	})
	return c
}

func (p *fileParser) sshKeys(n *yaml.Node, what string) []SSHKey {
	var keys []SSHKey
	seen := map[string]int{}
	p.eachItem(n, what, func(item *yaml.Node) {
		var k SSHKey
		p.fields(item, what, map[string]func(*yaml.Node){
			"key":     func(v *yaml.Node) { k.Key = p.sshKey(v, what) },
			"expires": func(v *yaml.Node) { k.Expires = p.date(v, what+": expires") },
		})
		if k.Key == "" {
			if item.Kind == yaml.MappingNode && scalarField(item, "key") == "" {
				p.add(item, "%s: key is missing; give the public key in authorized_keys form (ssh-ed25519 AAAA…)", what)
			}
			return
		}
		if first, dup := seen[keyBody(k.Key)]; dup {
			p.add(item, "%s: the same key is listed twice (first at line %d)", what, first)
			return
		}
		seen[keyBody(k.Key)] = item.Line
		keys = append(keys, k)
	})
	return keys
}

func (p *fileParser) sshKey(n *yaml.Node, what string) string {
	s := p.str(n, what+": key")
	if s == "" {
		return ""
	}
	key, err := canonicalSSHKey(s)
	if err != nil {
		p.add(n, "%s: %v", what, err)
		return ""
	}
	return key
}

func (p *fileParser) oidcBindings(n *yaml.Node, what string) []OIDCBinding {
	var out []OIDCBinding
	seen := map[OIDCBinding]int{}
	p.eachItem(n, what, func(item *yaml.Node) {
		var b OIDCBinding
		p.fields(item, what, map[string]func(*yaml.Node){
			"issuer":  func(v *yaml.Node) { b.Issuer = p.issuer(v, what+": issuer") },
			"subject": func(v *yaml.Node) { b.Subject = p.str(v, what+": subject") },
		})
		if item.Kind != yaml.MappingNode {
			return
		}
		if b.Issuer == "" || b.Subject == "" {
			p.add(item, "%s: a binding needs both issuer and subject (the token's iss and sub claims)", what)
			return
		}
		if first, dup := seen[b]; dup {
			p.add(item, "%s: the same issuer and subject are listed twice (first at line %d)", what, first)
			return
		}
		seen[b] = item.Line
		out = append(out, b)
	})
	return out
}

func (p *fileParser) issuer(n *yaml.Node, what string) string {
	s := p.str(n, what)
	if s != "" && !validIssuer(s) {
		p.add(n, "%s: %q is not an issuer URL; want the token's iss claim, e.g. https://token.actions.githubusercontent.com", what, s)
		return ""
	}
	return s
}

func (p *fileParser) entitlements(n *yaml.Node, who string, lines *identityLines) []Entitlement {
	what := who + ": entitlement"
	var out []Entitlement
	seen := map[[2]string]int{}
	p.eachItem(n, what, func(item *yaml.Node) {
		e, ok := p.entitlement(item, what)
		if !ok {
			return
		}
		key := [2]string{e.Target, e.Login}
		if first, dup := seen[key]; dup {
			p.add(item, "%s to %s as %s listed twice (first at line %d); merge their actions", what, e.Target, e.Login, first)
			return
		}
		seen[key] = item.Line
		if _, known := lines.targets[e.Target]; !known {
			lines.targets[e.Target] = item.Line
		}
		out = append(out, e)
	})
	return out
}

func (p *fileParser) entitlement(n *yaml.Node, what string) (Entitlement, bool) {
	var e Entitlement
	var actionsSeen bool
	commandsAt := 0
	p.fields(n, what, map[string]func(*yaml.Node){
		"commands": func(v *yaml.Node) { e.Commands, commandsAt = p.commands(v, what+": commands"), v.Line },
		"target":   func(v *yaml.Node) { e.Target = p.word(v, what+": target") },
		"login":    func(v *yaml.Node) { e.Login = p.word(v, what+": login") },
		"actions":  func(v *yaml.Node) { e.Actions, actionsSeen = p.actions(v, what+": actions"), true },
		"expires":  func(v *yaml.Node) { e.Expires = p.date(v, what+": expires") },
		"from":     func(v *yaml.Node) { e.From = p.cidrs(v, what+": from") },
	})
	if n.Kind != yaml.MappingNode {
		return e, false
	}
	missing := []string{}
	for _, f := range []struct {
		name  string
		empty bool
	}{{"target", e.Target == "" && scalarField(n, "target") == ""}, {"login", e.Login == "" && scalarField(n, "login") == ""}, {"actions", !actionsSeen}} {
		if f.empty {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		p.add(n, "%s: %s missing; an entitlement needs target, login and actions", what, strings.Join(missing, " and "))
		return e, false
	}
	p.commandsFit(e, commandsAt, what)
	return e, e.Target != "" && e.Login != ""
}

// commands reads an entitlement's allowed exec command lines, each checked
// by CheckCommandPattern.
func (p *fileParser) commands(n *yaml.Node, what string) []string {
	patterns, lines := p.strs(n, what)
	var out []string
	for i, c := range patterns {
		if err := CheckCommandPattern(c); err != nil {
			p.add(&yaml.Node{Line: lines[i]}, "%s: %v", what, err)
			continue
		}
		out = append(out, c)
	}
	if len(patterns) == 0 && !isNull(n) && n.Kind == yaml.SequenceNode {
		p.add(n, "%s: the list is empty; list the command lines exec may run, or remove commands to allow any", what)
	}
	return out
}

// commandsFit checks commands against the entitlement's actions: a shell
// runs anything, so restricting exec beside it would be a false comfort,
// and commands without exec restrict nothing.
func (p *fileParser) commandsFit(e Entitlement, line int, what string) {
	if line == 0 {
		return
	}
	at := &yaml.Node{Line: line}
	if slices.Contains(e.Actions, ActionShell) {
		p.add(at, "%s to %s as %s: commands together with shell; a shell runs any command, so give shell and the restricted exec to different logins or drop one", what, e.Target, e.Login)
	}
	if !slices.Contains(e.Actions, ActionExec) {
		p.add(at, "%s to %s as %s: commands without exec restrict nothing; add exec to actions or remove commands", what, e.Target, e.Login)
	}
}

func (p *fileParser) actions(n *yaml.Node, what string) []Action {
	names, lines := p.strs(n, what)
	var out []Action
	for i, s := range names {
		if !slices.Contains(Actions, Action(s)) {
			p.add(&yaml.Node{Line: lines[i]}, "%s: unknown action %q; want one of %s", what, s, joinActions())
			continue
		}
		out = append(out, Action(s))
	}
	if len(names) == 0 {
		p.add(n, "%s: the list is empty; name at least one of %s", what, joinActions())
	}
	return out
}

func (p *fileParser) cidrs(n *yaml.Node, what string) []string {
	blocks, lines := p.strs(n, what)
	var out []string
	for i, s := range blocks {
		c, err := canonicalCIDR(s)
		if err != nil {
			p.add(&yaml.Node{Line: lines[i]}, "%s: %v", what, err)
			continue
		}
		out = append(out, c)
	}
	return out
}

func (p *fileParser) certification(n *yaml.Node, who string) *Certification {
	what := who + ": certification"
	c := Certification{Decision: DecisionCertify}
	p.fields(n, what, map[string]func(*yaml.Node){
		"by":       func(v *yaml.Node) { c.By = p.str(v, what+": by") },
		"at":       func(v *yaml.Node) { c.At = p.date(v, what+": at") },
		"until":    func(v *yaml.Node) { c.Until = p.date(v, what+": until") },
		"note":     func(v *yaml.Node) { c.Note = p.str(v, what+": note") },
		"decision": func(v *yaml.Node) { c.Decision = p.decision(v, what+": decision") },
	})
	if n.Kind != yaml.MappingNode || isNull(n) {
		return nil
	}
	if !p.certificationComplete(n, what, c) {
		return nil
	}
	return &c
}

func (p *fileParser) decision(n *yaml.Node, what string) string {
	d := p.str(n, what)
	if d != DecisionCertify && d != DecisionRevoke {
		p.add(n, "%s: unknown decision %q; want certify (the default) or revoke", what, d)
	}
	return d
}

// certificationComplete checks the fields a certification needs together.
func (p *fileParser) certificationComplete(n *yaml.Node, what string, c Certification) bool {
	var missing []string
	if c.By == "" {
		missing = append(missing, "by")
	}
	if c.At.IsZero() && scalarField(n, "at") == "" {
		missing = append(missing, "at")
	}
	if c.Decision == DecisionCertify && c.Until.IsZero() && scalarField(n, "until") == "" {
		missing = append(missing, "until")
	}
	if len(missing) > 0 {
		p.add(n, "%s: %s missing; a certification says who certified it, when, and until when", what, strings.Join(missing, ", "))
		return false
	}
	switch {
	case c.At.IsZero() || (c.Decision == DecisionCertify && c.Until.IsZero()):
		return false // a bad date, already reported
	case c.Decision == DecisionRevoke && !c.Until.IsZero():
		p.add(n, "%s: a revoke decision has no until; remove it", what)
		return false
	case c.Decision == DecisionCertify && !c.Until.After(c.At):
		p.add(n, "%s: until %s is not after at %s", what, formatTime(c.Until), formatTime(c.At))
		return false
	}
	return true
}

func joinKinds() string   { return joinAs(Kinds) }
func joinStates() string  { return joinAs(States) }
func joinActions() string { return joinAs(Actions) }

func joinAs[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

// date reads a date; see parseTime for the accepted forms.
func (p *fileParser) date(n *yaml.Node, what string) time.Time {
	s := p.str(n, what)
	if s == "" {
		return time.Time{}
	}
	v, err := parseTime(s)
	if err != nil {
		p.add(n, "%s: %v", what, err)
	}
	return v
}

func hasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) })
}
