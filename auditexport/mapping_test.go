package auditexport

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/auditexport/ocsftest"
	"github.com/sallyport/sallyport/iga"
)

var testTime = time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)

func kinds(target string) string {
	return map[string]string{"web-01": "ssh", "pg-01": "postgres", "my-01": "mysql"}[target]
}

// TestOCSFMapping maps every audit event type sallyport writes (grep
// AuditEvent{ in iga) and checks the classes and that each OCSF event
// carries its class's required fields.
func TestOCSFMapping(t *testing.T) {
	denied := []iga.Reason{{Code: iga.ReasonActionNotEntitled, Message: "not entitled"}}
	cases := []struct {
		name  string
		ev    iga.AuditEvent
		want  []int // class uids, in order
		check func(t *testing.T, evs []map[string]any)
	}{
		{"ssh connect allowed", iga.AuditEvent{Type: "decision", Identity: "svc", Target: "web-01", Action: iga.ActionConnect,
			Source: "10.0.0.7", Allow: true, Detail: "login app; credential SHA256:abc"}, []int{3002}, nil},
		{"ssh exec allowed issues a certificate", iga.AuditEvent{Type: "decision", Identity: "svc", Target: "web-01",
			Action: iga.ActionExec, Source: "10.0.0.7", Allow: true, Detail: "login app"}, []int{4007, 3003}, nil},
		{"ssh exec refused names the command", iga.AuditEvent{Type: "decision", Identity: "svc", Target: "web-01",
			Action: iga.ActionExec, Source: "10.0.0.7", Reasons: denied, Detail: `login app; asked "rm -rf /"`}, []int{4007},
			func(t *testing.T, evs []map[string]any) {
				u := evs[0]["unmapped"].(map[string]any)
				assert.Equal(t, `"rm -rf /"`, u["command"], "the refused command in unmapped")
				assert.Equal(t, []any{iga.ReasonActionNotEntitled}, u["reason_codes"])
				assert.EqualValues(t, 5, evs[0]["activity_id"], "Refuse")
			}},
		{"postgres admission", iga.AuditEvent{Type: "decision", Identity: "svc", Target: "pg-01", Action: iga.ActionQuery,
			Source: "10.0.0.7", Allow: true, Detail: "login sp_abc"}, []int{3002, 3003, 6005}, nil},
		{"postgres denial", iga.AuditEvent{Type: "decision", Identity: "svc", Target: "pg-01", Action: iga.ActionQuery,
			Reasons: denied}, []int{3002, 6005}, nil},
		{"dry run issues nothing", iga.AuditEvent{Type: "check", Identity: "svc", Target: "pg-01", Action: iga.ActionQuery,
			Allow: true, Detail: "login sp"}, []int{3002}, nil},
		{"login failed", iga.AuditEvent{Type: "login_failed", Identity: "svc", Source: "10.0.0.9", Reasons: denied,
			Detail: "protocol ssh"}, []int{3002}, nil},
		{"ssh refusal", iga.AuditEvent{Type: "refusal", Identity: "svc", Target: "web-01", Action: iga.ActionForward,
			Detail: `protocol ssh; asked "tcpip-forward"`}, []int{4007}, nil},
		{"mysql refusal", iga.AuditEvent{Type: "refusal", Identity: "svc", Target: "my-01", Detail: "protocol mysql"}, []int{6005}, nil},
		{"apply", iga.AuditEvent{Type: "apply", Actor: "alice", Identity: "svc", Detail: "created"}, []int{3004}, nil},
		{"apply_force", iga.AuditEvent{Type: "apply_force", Actor: "alice", Identity: "svc"}, []int{3004}, nil},
		{"certify", iga.AuditEvent{Type: "certify", Actor: "bob", Identity: "svc"}, []int{3004}, nil},
		{"revoke", iga.AuditEvent{Type: "revoke", Actor: "bob", Identity: "svc"}, []int{3004}, nil},
		{"offboard", iga.AuditEvent{Type: "offboard", Actor: "sallyport", Identity: "svc"}, []int{3004}, nil},
		{"token_issue", iga.AuditEvent{Type: "token_issue", Actor: "alice", Identity: "svc"}, []int{3004}, nil},
		{"breakglass_open", iga.AuditEvent{Type: "breakglass_open", Actor: "alice", Identity: "svc", Target: "web-01"}, []int{3004}, nil},
		{"breakglass_close", iga.AuditEvent{Type: "breakglass_close", Actor: "sallyport", Identity: "svc"}, []int{3004}, nil},
		{"campaign_start", iga.AuditEvent{Type: "campaign_start", Actor: "carol"}, []int{3004}, nil},
		{"campaign_close", iga.AuditEvent{Type: "campaign_close", Actor: "carol"}, []int{3004}, nil},
		{"recording deletion", iga.AuditEvent{Type: "recording_delete", Actor: "sallyport", Target: "web-01"}, []int{3004}, nil},
		{"propose", iga.AuditEvent{Type: "propose", Actor: "alice", Identity: "disc-web-01-deploy", Target: "web-01"}, []int{3004}, nil},
		{"scim", iga.AuditEvent{Type: "scim", Actor: "scim", Detail: "scim request 1: deactivated bob"}, []int{3004}, nil},
		{"transfer_open", iga.AuditEvent{Type: "transfer_open", Actor: "scim", Identity: "svc"}, []int{3004}, nil},
		{"transfer_close", iga.AuditEvent{Type: "transfer_close", Actor: "carol", Identity: "svc"}, []int{3004}, nil},
		{"transfer", iga.AuditEvent{Type: "transfer", Actor: "carol", Identity: "svc"}, []int{3004}, nil},
		{"recording_hold", iga.AuditEvent{Type: "recording_hold", Actor: "carol", Identity: "svc", Target: "web-01"}, []int{3004}, nil},
		{"console watch", iga.AuditEvent{Type: "session_watch", Actor: "auditor@example.com", Identity: "svc", Target: "web-01"}, []int{6003},
			func(t *testing.T, evs []map[string]any) {
				assert.EqualValues(t, 2, evs[0]["activity_id"], "Read")
				assert.Equal(t, "auditor@example.com", evs[0]["actor"].(map[string]any)["user"].(map[string]any)["name"])
			}},
		{"review_open", iga.AuditEvent{Type: "review_open", Actor: "system", Identity: "svc"}, []int{2003}, nil},
		{"review_complete", iga.AuditEvent{Type: "review_complete", Actor: "bob", Identity: "svc"}, []int{2003}, nil},
		{"an unknown type is kept", iga.AuditEvent{Type: "console_kill", Actor: "alice", Source: "192.0.2.1"}, []int{6003},
			func(t *testing.T, evs []map[string]any) {
				assert.Equal(t, "console_kill", evs[0]["api"].(map[string]any)["operation"])
			}},
	}
	m := Mapper{Version: "1.2.3", TargetKind: kinds}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.ev.ID, c.ev.Time = int64(100+i), testTime
			evs := roundTrip(t, m, c.ev)
			var got []int
			uids := map[string]bool{}
			for _, e := range evs {
				got = append(got, int(e["class_uid"].(float64)))
				md := e["metadata"].(map[string]any)
				uids[md["uid"].(string)] = true
				assert.Equal(t, "1.8.0", md["version"])
				assert.EqualValues(t, testTime.UnixMilli(), e["time"])
			}
			assert.Equal(t, c.want, got, "OCSF classes")
			assert.Len(t, uids, len(evs), "each OCSF event of one audit event has its own uid")
			again := roundTrip(t, m, c.ev)
			assert.Equal(t, evs, again, "mapping the same event again gives the same events, uids included")
			if c.check != nil {
				c.check(t, evs)
			}
		})
	}
}

// roundTrip maps ev, validates each event against its class and returns
// them as JSON objects.
func roundTrip(t *testing.T, m Mapper, ev iga.AuditEvent) []map[string]any {
	t.Helper()
	recs, err := Encoder{Mapper: m}.Encode([]iga.AuditEvent{ev})
	require.NoError(t, err)
	var out []map[string]any
	for _, r := range recs {
		require.NoError(t, ocsftest.Validate(r.JSON), "%s", r.JSON)
		var o map[string]any
		require.NoError(t, json.Unmarshal(r.JSON, &o))
		assert.Equal(t, r.UID, o["metadata"].(map[string]any)["uid"])
		out = append(out, o)
	}
	return out
}

func TestNativeFormat(t *testing.T) {
	ev := iga.AuditEvent{ID: 7, Time: testTime, Type: "decision", Actor: "sallyport", Identity: "svc", Target: "web-01"}
	recs, err := Encoder{Format: FormatNative}.Encode([]iga.AuditEvent{ev})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "7", recs[0].UID)
	assert.JSONEq(t, `{"id":7,"time":"2026-12-07T16:00:00Z","type":"decision","actor":"sallyport","identity":"svc",
		"target":"web-01","allow":false}`, string(recs[0].JSON))
}

// FuzzOCSF maps events of any content: every one maps, and each OCSF event
// validates against its class.
func FuzzOCSF(f *testing.F) {
	f.Add("decision", "svc", "web-01", "exec", "10.0.0.1", true, `login app; asked "ls"`)
	f.Add("refusal", "", "", "", "", false, "protocol postgres")
	f.Add("", "", "", "", "not an ip", false, "; ; login ")
	f.Add("hygiene_dormant", "x", "y", "query", "::ffff:1.2.3.4", false, "asked")
	f.Fuzz(func(t *testing.T, typ, identity, target, action, source string, allow bool, detail string) {
		ev := iga.AuditEvent{ID: 1, Time: testTime, Type: typ, Identity: identity, Target: target,
			Action: iga.Action(action), Source: source, Allow: allow, Detail: detail}
		recs, err := Encoder{Mapper: Mapper{TargetKind: kinds}}.Encode([]iga.AuditEvent{ev})
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if len(recs) == 0 {
			t.Fatal("an event mapped to nothing")
		}
		for _, r := range recs {
			if err := ocsftest.Validate(r.JSON); err != nil {
				t.Fatalf("%v: %s", err, r.JSON)
			}
		}
	})
}
