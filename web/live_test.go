package web_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/internal/sshtest"
	"github.com/sallyport/sallyport/proxy"
	sshproxy "github.com/sallyport/sallyport/proxy/ssh"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/web"
)

// liveBastion is the SSH proxy in front of a sandbox sshd, recording into
// the console's store and index, with the console's live view on its
// recorder: serve's wiring, in one process.
type liveBastion struct {
	port, known, key, login string
	rec                     *recorder.Recorder
}

// newLiveBastion registers svc-live (owned by owner, certified, a shell on
// web-01) with a fresh key and starts the proxy, the recorder and the
// console's live view.
func newLiveBastion(t *testing.T, c *console) *liveBastion {
	if _, err := exec.LookPath("ssh"); err != nil {
		sandbox.Need(t, fmt.Errorf("ssh not in PATH: install openssh-client: %w", sandbox.ErrNotInstalled))
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, caKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	userCA := &ca.SSHUserCA{Key: caKey}
	sshd := sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{userCA.AuthorizedKey()}})
	b := &liveBastion{key: filepath.Join(c.dir, "svc-live.key"), login: sshd.User}
	registerLiveIdentity(t, c, sshtest.WriteKey(t, b.key), sshd.User)
	b.rec = startRecorder(t, c)
	reg := c.ws.Workflows.(*iga.Registry)
	live := &proxy.Live{Gate: reg, Index: c.store, Logger: quietLogger()}
	go live.Watch(ctx)
	srv := &sshproxy.Server{Gate: reg, Live: live, Recorder: b.rec, CA: userCA, Logger: quietLogger(),
		Targets: func(name string) (sshproxy.Target, bool) {
			return sshproxy.Target{Name: name, Address: sshd.Addr(), HostKeys: []gossh.PublicKey{sshd.HostPublicKey()}}, name == "web-01"
		}}
	b.port, b.known = sshtest.Serve(ctx, t, srv, c.dir)
	c.ws.Live, c.ws.Audit = b.rec, func(ctx context.Context, e iga.AuditEvent) error {
		return c.store.Update(ctx, func(tx iga.Tx) error { return tx.AppendAudit(ctx, e) })
	}
	return b
}

func registerLiveIdentity(t *testing.T, c *console, pub, login string) {
	now := time.Now().UTC()
	require.NoError(t, c.store.Update(context.Background(), func(tx iga.Tx) error {
		if err := tx.PutIdentity(context.Background(), iga.Identity{ID: "svc-live", Kind: iga.KindServiceAccount, State: iga.StateActive,
			Owner: owner, Credentials: iga.Credentials{SSHKeys: []iga.SSHKey{{Key: pub}}},
			Entitlements: []iga.Entitlement{{Target: "web-01", Login: login, Actions: []iga.Action{iga.ActionShell, iga.ActionExec}}}}); err != nil {
			return err
		}
		return tx.AddCertification(context.Background(), "svc-live", iga.Certification{Decision: iga.DecisionCertify, By: owner,
			At: now.Add(-time.Hour), Until: now.Add(30 * 24 * time.Hour)})
	}))
}

// startRecorder is a recorder on the console's data dir indexing into its
// session index, as serve runs it.
func startRecorder(t *testing.T, c *console) *recorder.Recorder {
	cfg := recorder.Config{DataDir: c.dir, FailClosed: true}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	rstore, err := recorder.NewStore(cfg)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: cfg, Store: rstore, Key: key, Logger: quietLogger(), OnState: func(s recorder.StateChange) {
		m := s.Meta
		_ = c.store.PutSession(context.Background(), sqlstore.SessionRecord{ID: m.ID, Identity: m.Identity, Owner: m.Owner,
			Target: m.Target, Protocol: m.Protocol, Login: m.Login, Source: m.Source, BreakglassGrant: m.BreakglassGrant,
			State: string(s.State), Dir: s.Dir, StartedAt: m.StartedAt, EndedAt: s.EndedAt, Bytes: s.Bytes, Events: s.Events})
	}}
	require.NoError(t, rec.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rec.Shutdown(ctx)
	})
	return rec
}

// ssh starts the real ssh client as svc-live on web-01 through the
// bastion with the given options and command (ssh -tt and none: a
// shell); the test types into stdin.
func (b *liveBastion) ssh(t *testing.T, args ...string) io.WriteCloser {
	cmd := exec.Command("ssh", sshtest.ClientArgs(b.key, b.known, append([]string{"-p", b.port, "-l", "svc-live@web-01"}, args...)...)...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return stdin
}

// waitLive waits for svc-live's session to be in the index, live.
func waitLive(t *testing.T, c *console) string {
	var id string
	require.Eventually(t, func() bool {
		rs, err := c.store.Sessions(context.Background(), sqlstore.SessionFilter{Identity: "svc-live", Live: true})
		if err != nil || len(rs) == 0 {
			return false
		}
		id = rs[len(rs)-1].ID
		return true
	}, 15*time.Second, 50*time.Millisecond, "svc-live's session never went live")
	return id
}

// TestLiveViewBrowser: an admin opens the page of a running ssh -tt
// session in headless chromium; a marker the session prints after the page
// opened appears in the terminal view within a second or so, the kill
// button is beside it, watching is in the audit trail, and the page says
// when the session ended.
func TestLiveViewBrowser(t *testing.T) {
	c := newConsole(t)
	b := newLiveBastion(t, c)
	ctx := newBrowser(t)
	stdin := b.ssh(t, "-tt", "127.0.0.1")
	id := waitLive(t, c)

	c.op.SignInAs(admin, true)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions/"+id),
		chromedp.WaitVisible(chromedp.CSS(`#live form.kill button`))))
	require.Equal(t, "live", waitForText(t, ctx, `#live-state`, "live"), "the stream is open")
	typed := time.Now()
	_, err := io.WriteString(stdin, "echo LIVE-MARK-$((6*7))\n")
	require.NoError(t, err)
	got := waitForText(t, ctx, `#live-player`, "LIVE-MARK-42")
	assert.Contains(t, got, "LIVE-MARK-42", "the marker's output reaches the live view")
	t.Logf("marker typed to shown in the browser: %v", time.Since(typed))

	events, err := c.store.Audit(context.Background(), iga.AuditFilter{Type: web.AuditWatch})
	require.NoError(t, err)
	require.Len(t, events, 1, "one watch, one audit event")
	assert.Equal(t, admin, events[0].Actor)
	assert.Equal(t, "svc-live", events[0].Identity)
	assert.Contains(t, events[0].Detail, id)

	_, err = io.WriteString(stdin, "exit\n")
	require.NoError(t, err)
	assert.Contains(t, waitForText(t, ctx, `#live-state`, "ended"), "ended", "the page says the session ended")
}

// TestLiveViewExecBrowser: the live view of an exec session (no terminal)
// shows what the command reads and prints after the page opened, and its
// command in the event list.
func TestLiveViewExecBrowser(t *testing.T) {
	c := newConsole(t)
	b := newLiveBastion(t, c)
	ctx := newBrowser(t)
	stdin := b.ssh(t, "127.0.0.1", "read x; echo EXEC-MARK-$x-$((6*7))")
	id := waitLive(t, c)

	c.op.SignInAs(auditor, true)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions/"+id), chromedp.WaitVisible(chromedp.CSS(`#live`))))
	require.Equal(t, "live", waitForText(t, ctx, `#live-state`, "live"))
	kills, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#live form.kill").length`))
	require.NoError(t, err)
	assert.Equal(t, 0, kills, "no kill button for an auditor")
	_, err = io.WriteString(stdin, "typed\n")
	require.NoError(t, err)
	assert.Contains(t, waitForText(t, ctx, `#live-player`, "EXEC-MARK-typed-42"), "EXEC-MARK-typed-42", "the command's output")
	assert.Contains(t, waitForText(t, ctx, `#live-events`, "read x"), "read x", "the exec command in the event list")
	assert.Contains(t, waitForText(t, ctx, `#live-state`, "ended"), "ended")
}
