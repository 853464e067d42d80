package mysql_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestAdmissionNamesTheSession: the audit event of a mariadb login's
// admission names the session the recording is filed under; a refused
// login names the id its session would have had, which no recording has.
func TestAdmissionNamesTheSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "-D", targetName, "--ssl", "-e", "SELECT 1")
	require.NoError(t, err, out)
	admitted := e.lastDecision(t)
	assert.True(t, admitted.Allow)
	assert.Equal(t, e.lastSession(t), iga.AuditDetailFields(admitted.Detail)["session"], "detail %q", admitted.Detail)

	id := failing()[iga.ReasonNotCertified].ID
	out, err = e.mariadb(t, id, e.token(id), "", "-D", targetName, "--ssl", "-e", "SELECT 1")
	require.Error(t, err, out)
	refused := e.lastDecision(t)
	assert.False(t, refused.Allow)
	session := iga.AuditDetailFields(refused.Detail)["session"]
	assert.Len(t, session, 24, "a refused login names its would-be session: %q", refused.Detail)
	assert.NotEqual(t, iga.AuditDetailFields(admitted.Detail)["session"], session, "each connection has its own id")
	assert.NotEqual(t, session, e.lastSession(t), "no recording is opened for a refused login")
}

// lastDecision is the newest decision in the audit trail.
func (e *env) lastDecision(t *testing.T) iga.AuditEvent {
	t.Helper()
	evs, err := e.store.Audit(context.Background(), iga.AuditFilter{Type: "decision"})
	require.NoError(t, err)
	require.NotEmpty(t, evs, "no decision was audited")
	return evs[len(evs)-1]
}
