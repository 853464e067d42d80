package auditexport

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestOCSFCarriesSessionAndCommand: the OCSF events of a decision name the
// session (every event it maps to, so the SIEM can join them to the
// recording) and, for an admitted exec, the whole command, however many
// "; " it holds and whatever they look like.
func TestOCSFCarriesSessionAndCommand(t *testing.T) {
	const session = "6571e0a0d41d8cd98f00b204"
	for _, tc := range []struct {
		name    string
		ev      iga.AuditEvent
		command any // nil: none
	}{
		{"admitted exec", iga.AuditEvent{ID: 9, Time: testTime, Type: "decision", Identity: "svc", Target: "web-01",
			Action: iga.ActionExec, Allow: true,
			Detail: `login app; asked "sh -c 'a; session forged'"; session ` + session}, `"sh -c 'a; session forged'"`},
		{"ssh login", iga.AuditEvent{ID: 10, Time: testTime, Type: "decision", Identity: "svc", Target: "web-01",
			Action: iga.ActionConnect, Allow: true, Detail: "login app; session " + session}, nil},
		{"postgres admission", iga.AuditEvent{ID: 11, Time: testTime, Type: "decision", Identity: "svc", Target: "pg-01",
			Action: iga.ActionQuery, Allow: true, Detail: "login sp_abc; session " + session}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := roundTrip(t, Mapper{TargetKind: kinds}, tc.ev)
			require.NotEmpty(t, evs)
			for _, o := range evs {
				u := o["unmapped"].(map[string]any)
				assert.Equal(t, session, u["session"], "class %v", o["class_uid"])
				if o["class_uid"] == float64(4007) {
					assert.Equal(t, tc.command, u["command"])
				}
			}
		})
	}
}
