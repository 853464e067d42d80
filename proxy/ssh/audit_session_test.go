package ssh

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
)

// TestDecisionsNameTheRecordedSession: the login, an admitted exec and a
// refused exec on one SSH connection are audited under the id of the one
// session the connection recorded, and the admitted exec names its
// command; a second connection gets an id of its own.
func TestDecisionsNameTheRecordedSession(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	client := h.goSSHClient(t, "svc-backup-one")
	out, err := runOn(client, "/bin/echo exactly-this")
	require.NoError(t, err, "output %q", out)
	assert.Equal(t, "exactly-this\n", out)
	out, err = runOn(client, "id")
	require.Error(t, err, "id is not entitled; output %q", out)
	client.Close()

	srcs := h.recordings(ctx)
	require.Len(t, srcs, 1, "one connection, one recorded session")
	session := srcs[0].ID()
	evs, err := h.reg.Store.Audit(ctx, iga.AuditFilter{Identity: "svc-backup-one", Type: "decision"})
	require.NoError(t, err)
	var got []string
	for _, e := range evs {
		f := iga.AuditDetailFields(e.Detail)
		assert.Equal(t, session, f["session"], "%s decision (allow %v): detail %q", e.Action, e.Allow, e.Detail)
		got = append(got, string(e.Action)+" "+f["asked"])
	}
	assert.Equal(t, []string{"connect ", `exec "/bin/echo exactly-this"`, `exec "id"`}, got,
		"the login, the admitted exec naming its command, the refused one")

	out, err = h.goSSHRun("svc-backup-one", "/bin/echo exactly-this")
	require.NoError(t, err, "output %q", out)
	evs, err = h.reg.Store.Audit(ctx, iga.AuditFilter{Identity: "svc-backup-one", Type: "decision"})
	require.NoError(t, err)
	other := iga.AuditDetailFields(evs[len(evs)-1].Detail)["session"]
	assert.Len(t, other, 24)
	assert.NotEqual(t, session, other, "another connection, another session")
}

// goSSHClient logs in as identity with x/crypto's client, which opens
// several channels on one connection.
func (h *harness) goSSHClient(t *testing.T, identity string) *gossh.Client {
	t.Helper()
	pem, err := os.ReadFile(h.keys[identity])
	require.NoError(t, err)
	signer, err := gossh.ParsePrivateKey(pem)
	require.NoError(t, err)
	client, err := gossh.Dial("tcp", h.addr, &gossh.ClientConfig{User: identity + "@web",
		Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	return client
}

// runOn runs command on a new session channel of client.
func runOn(client *gossh.Client, command string) (string, error) {
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(command)
	return string(out), err
}
