package auditexport

import (
	"strconv"
	"strings"

	"github.com/sallyport/sallyport/iga"
)

// OCSF maps one audit event to the OCSF events that describe it (the table
// of docs/audit.md): one, or two or three for an admitted session (its
// admission, the per-session credential issued, the database session).
// Every event type maps to something: one it does not know becomes API
// Activity "Other", never dropped.
func (m Mapper) OCSF(ev iga.AuditEvent) []object {
	switch ev.Type {
	case "decision", "check":
		return m.decision(ev)
	case "login_failed":
		return []object{m.authentication(ev, false)}
	case "refusal":
		return []object{m.refusal(ev)}
	}
	if c, activity, entity, ok := entityChange(ev.Type); ok {
		return []object{m.entityManagement(ev, c, activity, entity)}
	}
	if f, ok := findingActivity(ev.Type); ok {
		return []object{m.finding(ev, f)}
	}
	return []object{m.apiActivity(ev)}
}

// decision maps an admission: Authentication for a connection, SSH
// Activity for a channel; an admitted one that issues a per-session
// certificate or database role adds Authorize Session, and a database
// connection adds Datastore Activity. A dry run (check) issues nothing.
func (m Mapper) decision(ev iga.AuditEvent) []object {
	var out []object
	kind := m.kind(ev)
	switch {
	case ev.Action == iga.ActionShell || ev.Action == iga.ActionExec || ev.Action == iga.ActionSFTP || ev.Action == iga.ActionForward:
		out = append(out, m.sshActivity(ev, ev.Allow))
	default:
		out = append(out, m.authentication(ev, ev.Allow))
	}
	if ev.Type == "check" {
		out[0]["unmapped"].(object)["dry_run"] = true
		return out
	}
	login := detailFields(ev)["login"]
	if ev.Allow && login != "" && ev.Action != iga.ActionConnect {
		out = append(out, m.authorizeSession(ev, login, kind))
	}
	if ev.Action == iga.ActionQuery {
		out = append(out, m.datastore(ev, ev.Allow))
	}
	return out
}

// refusal maps a request the bastion turned down on its own, by protocol.
func (m Mapper) refusal(ev iga.AuditEvent) object {
	switch m.kind(ev) {
	case "ssh":
		return m.sshActivity(ev, false)
	case "postgres", "mysql":
		return m.datastore(ev, false)
	}
	return m.authentication(ev, false)
}

// authentication is class 3002: the identity's logon to a target.
func (m Mapper) authentication(ev iga.AuditEvent, ok bool) object {
	o := m.event(ev, classAuthentication, 1, "")
	o["user"] = user(ev.Identity, "Service")
	o["src_endpoint"] = endpoint(ev.Source)
	o["dst_endpoint"] = m.target(ev)
	o["service"] = object{"name": "sallyport " + orUnknown(m.kind(ev))}
	o["logon_type_id"], o["logon_type"] = 3, "Network"
	setStatus(o, ok, ev)
	return o
}

// authorizeSession is class 3003: the per-session certificate (SSH) or
// database role the admitted session runs as.
func (m Mapper) authorizeSession(ev iga.AuditEvent, login, kind string) object {
	o := m.event(ev, classAuthorizeSession, 1, "authorize")
	o["user"] = user(ev.Identity, "Service")
	o["dst_endpoint"] = m.target(ev)
	credential := "per-session SSH certificate for login " + login
	if kind == "postgres" || kind == "mysql" {
		credential = "per-session database role " + login
	}
	o["privileges"] = []string{credential}
	setStatus(o, true, ev)
	return o
}

// sshActivity is class 4007: an SSH channel opened or refused.
func (m Mapper) sshActivity(ev iga.AuditEvent, ok bool) object {
	activity := 1
	if !ok {
		activity = 5
	}
	o := m.event(ev, classSSHActivity, activity, "")
	o["src_endpoint"] = endpoint(ev.Source)
	o["dst_endpoint"] = m.target(ev)
	o["actor"] = object{"user": user(ev.Identity, "Service")}
	setStatus(o, ok, ev)
	return o
}

// datastore is class 6005: a database session opened (or refused).
func (m Mapper) datastore(ev iga.AuditEvent, ok bool) object {
	part := "datastore"
	if ev.Type == "refusal" {
		part = ""
	}
	o := m.event(ev, classDatastoreActivity, 3, part)
	o["actor"] = object{"user": user(ev.Identity, "Service")}
	o["src_endpoint"] = endpoint(ev.Source)
	o["dst_endpoint"] = m.target(ev)
	db := object{"name": orUnknown(ev.Target), "type_id": 1, "type": "Relational"}
	if k := m.kind(ev); k == "postgres" || k == "mysql" {
		db["type"] = map[string]string{"postgres": "PostgreSQL", "mysql": "MySQL"}[k]
		db["type_id"] = 1
	}
	o["database"] = db
	setStatus(o, ok, ev)
	return o
}

// entityChange names the Entity Management activity and entity type of a
// registry, certification, break-glass or recording change.
func entityChange(typ string) (class, int, string, bool) {
	changes := map[string]struct {
		activity int
		entity   string
	}{
		"apply": {3, "identity"}, "apply_force": {3, "identity"}, "certify": {3, "certification"},
		"revoke": {3, "certification"}, "offboard": {9, "person"}, "token_issue": {1, "token"},
		"breakglass_open": {1, "breakglass_grant"}, "breakglass_close": {11, "breakglass_grant"},
		"campaign_start": {1, "certification_campaign"}, "campaign_close": {3, "certification_campaign"},
		"propose": {1, "identity"}, "scim": {3, "person"}, "transfer": {3, "identity"},
		"transfer_open": {1, "ownership_transfer"}, "transfer_close": {3, "ownership_transfer"},
	}
	if c, ok := changes[typ]; ok {
		return classEntityManagement, c.activity, c.entity, true
	}
	if rest, ok := strings.CutPrefix(typ, "recording_"); ok { // retention and legal hold (issue 23)
		activity := 3
		if rest == "delete" || rest == "deleted" {
			activity = 4
		}
		return classEntityManagement, activity, "recording", true
	}
	return class{}, 0, "", false
}

// entityManagement is class 3004.
func (m Mapper) entityManagement(ev iga.AuditEvent, c class, activity int, entity string) object {
	o := m.event(ev, c, activity, "")
	name := ev.Identity
	if name == "" {
		name = orUnknown(ev.Target)
	}
	o["entity"] = object{"name": name, "type": entity}
	o["actor"] = actor(ev)
	if ev.Type == "breakglass_open" || ev.Type == "apply_force" {
		o["severity_id"], o["severity"] = severityMedium, "Medium"
	}
	return o
}

// findingActivity says whether typ is a finding (a review a break-glass
// use opened, a hygiene finding) and its Compliance Finding activity.
func findingActivity(typ string) (int, bool) {
	switch {
	case typ == "review_open":
		return 1, true
	case typ == "review_complete":
		return 3, true
	case strings.HasPrefix(typ, "hygiene"):
		return 1, true
	}
	return 0, false
}

// finding is class 2003.
func (m Mapper) finding(ev iga.AuditEvent, activity int) object {
	o := m.event(ev, classComplianceFinding, activity, "")
	title := strings.ReplaceAll(ev.Type, "_", " ") + " " + ev.Identity
	o["finding_info"] = object{"uid": "sallyport-audit-" + strconv.FormatInt(ev.ID, 10), "title": strings.TrimSpace(title), "desc": ev.Detail}
	compliance := object{"control": "sallyport break-glass oversight", "status_id": 2, "status": "Warning"}
	if activity == 3 {
		compliance["status_id"], compliance["status"] = 1, "Pass"
	}
	o["compliance"] = compliance
	o["actor"] = actor(ev)
	return o
}

// consoleActions are the console's own audit event types and their API
// Activity activity.
var consoleActions = map[string]int{
	"session_watch": 2, // an auditor watching a live session: Read
}

// apiActivity is class 6003: a console action, or an action of a type
// this mapping does not know (activity Other).
func (m Mapper) apiActivity(ev iga.AuditEvent) object {
	activity, ok := consoleActions[ev.Type]
	if !ok {
		activity = 99
	}
	o := m.event(ev, classAPIActivity, activity, "")
	o["actor"] = actor(ev)
	o["api"] = object{"operation": orUnknown(ev.Type), "service": object{"name": "sallyport"}}
	o["src_endpoint"] = endpoint(ev.Source)
	return o
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
