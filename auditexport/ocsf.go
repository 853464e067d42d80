package auditexport

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// OCSFVersion is the OCSF schema version the events follow.
const OCSFVersion = "1.8.0"

// class is one OCSF event class sallyport writes.
type class struct {
	uid      int
	name     string
	category int
	catName  string
	activity map[int]string
}

// The OCSF classes of the mapping (docs/audit.md), with the activities used.
var (
	classAuthentication = class{3002, "Authentication", 3, "Identity & Access Management",
		map[int]string{1: "Logon"}}
	classAuthorizeSession = class{3003, "Authorize Session", 3, "Identity & Access Management",
		map[int]string{1: "Assign Privileges"}}
	classEntityManagement = class{3004, "Entity Management", 3, "Identity & Access Management",
		map[int]string{1: "Create", 3: "Update", 4: "Delete", 9: "Disable", 11: "Deactivate", 99: "Other"}}
	classSSHActivity = class{4007, "SSH Activity", 4, "Network Activity",
		map[int]string{1: "Open", 5: "Refuse"}}
	classAPIActivity = class{6003, "API Activity", 6, "Application Activity",
		map[int]string{1: "Create", 2: "Read", 3: "Update", 99: "Other"}}
	classDatastoreActivity = class{6005, "Datastore Activity", 6, "Application Activity",
		map[int]string{3: "Connect"}}
	classComplianceFinding = class{2003, "Compliance Finding", 2, "Findings",
		map[int]string{1: "Create", 3: "Close"}}
)

// OCSF severity_id values used.
const (
	severityInformational = 1
	severityMedium        = 3
)

// OCSF status_id values.
const (
	statusSuccess = 1
	statusFailure = 2
)

// object is one JSON object of an OCSF event.
type object = map[string]any

// Mapper turns audit events into OCSF events.
type Mapper struct {
	// Version is sallyport's version, in metadata.product.version. Empty: "dev".
	Version string
	// TargetKind returns a target's kind (ssh, postgres, mysql) from the
	// config, which tells an SSH session from a database one. Nil, or an
	// empty answer: the kind is taken from the event's action.
	TargetKind func(target string) string
}

// event starts an OCSF event of c and activity for ev. part tells apart
// the events one audit event maps to: "" for the first, so its uid is the
// audit event's id alone.
func (m Mapper) event(ev iga.AuditEvent, c class, activity int, part string) object {
	uid := "sallyport-audit-" + strconv.FormatInt(ev.ID, 10)
	if part != "" {
		uid += "-" + part
	}
	version := m.Version
	if version == "" {
		version = "dev"
	}
	o := object{
		"class_uid": c.uid, "class_name": c.name, "category_uid": c.category, "category_name": c.catName,
		"activity_id": activity, "activity_name": c.activity[activity],
		"type_uid": c.uid*100 + activity, "type_name": c.name + ": " + c.activity[activity],
		"time": ev.Time.UnixMilli(), "time_dt": ev.Time.UTC().Format(time.RFC3339Nano),
		"severity_id": severityInformational, "severity": "Informational",
		"metadata": object{
			"uid": uid, "version": OCSFVersion, "log_name": "audit", "event_code": ev.Type,
			"product": object{"name": "sallyport", "vendor_name": "sallyport", "version": version},
		},
		"unmapped": unmapped(ev),
	}
	if ev.Detail != "" {
		o["message"] = ev.Detail
	}
	return o
}

// unmapped is what OCSF has no field for: our event type and id, reason
// codes and the parts of the detail.
func unmapped(ev iga.AuditEvent) object {
	u := object{"event_id": ev.ID, "event_type": ev.Type}
	if ev.Action != "" {
		u["action"] = string(ev.Action)
	}
	if len(ev.Reasons) > 0 {
		codes := make([]string, len(ev.Reasons))
		for i, r := range ev.Reasons {
			codes[i] = r.Code
		}
		u["reason_codes"] = codes
		u["reasons"] = ev.Reasons
	}
	for k, v := range detailFields(ev) {
		u[k] = v
	}
	return u
}

// detailKeys are the "key value" parts decisions and refusals write in
// their detail (iga decisionEvent, refusalEvent).
var detailKeys = []string{"login", "breakglass_grant", "credential", "asked", "protocol", "session"}

// detailFields splits a decision's or refusal's detail ("login app;
// asked \"ls\"; session 6571…") into its parts, as iga reads it (a
// command with "; " in it stays whole). Other events' detail is free text.
func detailFields(ev iga.AuditEvent) map[string]string {
	out := map[string]string{}
	parts := iga.AuditDetailFields(ev.Detail)
	for _, k := range detailKeys {
		if v, ok := parts[k]; ok {
			out[k] = v
		}
	}
	if asked, ok := out["asked"]; ok && ev.Action == iga.ActionExec {
		out["command"] = asked // the schema has no field for an exec command line
	}
	return out
}

// setStatus records whether the event's request succeeded.
func setStatus(o object, ok bool, ev iga.AuditEvent) {
	if ok {
		o["status_id"], o["status"] = statusSuccess, "Success"
		return
	}
	o["status_id"], o["status"] = statusFailure, "Failure"
	o["severity_id"], o["severity"] = severityMedium, "Medium"
	if len(ev.Reasons) > 0 {
		o["status_detail"] = ev.Reasons[0].Message
		o["status_code"] = ev.Reasons[0].Code
	}
}

// endpoint is a network endpoint: an address when s is one, else a name;
// "unknown" when empty, since some classes require the object.
func endpoint(s string) object {
	if a, err := netip.ParseAddr(s); err == nil {
		return object{"ip": a.Unmap().String()}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return object{"ip": ap.Addr().Unmap().String(), "port": ap.Port()}
	}
	if s == "" {
		s = "unknown"
	}
	return object{"name": s}
}

// target is the destination endpoint of a session to a target.
func (m Mapper) target(ev iga.AuditEvent) object {
	o := object{"name": ev.Target}
	if ev.Target == "" {
		o["name"] = "unknown"
	}
	if k := m.kind(ev); k != "" {
		o["svc_name"] = k
	}
	return o
}

// kind is the event's target kind: from the config, else from its action
// or the refusal's protocol.
func (m Mapper) kind(ev iga.AuditEvent) string {
	if m.TargetKind != nil && ev.Target != "" {
		if k := m.TargetKind(ev.Target); k != "" {
			return k
		}
	}
	if p := detailFields(ev)["protocol"]; p != "" {
		return p
	}
	switch ev.Action {
	case iga.ActionQuery:
		return "postgres"
	case iga.ActionShell, iga.ActionExec, iga.ActionSFTP, iga.ActionForward:
		return "ssh"
	}
	return ""
}

// user is an OCSF user: a machine identity or a person.
func user(name, typ string) object {
	if name == "" {
		name = "unknown"
	}
	return object{"name": name, "uid": name, "type": typ}
}

// actor is who did it: a person, or sallyport itself.
func actor(ev iga.AuditEvent) object {
	if ev.Actor == "" || ev.Actor == "sallyport" || ev.Actor == "system" {
		return object{"app_name": "sallyport"}
	}
	return object{"user": user(ev.Actor, "User")}
}

// errUnknownFormat is the error of a format that is neither ocsf nor native.
func errUnknownFormat(f string) error {
	return fmt.Errorf("format %q: want %s or %s", f, FormatOCSF, FormatNative)
}
