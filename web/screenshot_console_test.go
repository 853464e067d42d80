package web_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/recorder"
)

// consoleShots are docs/console.md's pictures, written beside the one
// $SALLYPORT_SCREENSHOT names.
var consoleShots = []struct {
	name  string
	shoot func(t *testing.T, c *console, ctx context.Context)
}{{"console-search.png", shootSearch}, {"console-live.png", shootLive}}

// shootConsole takes each of consoleShots into dir.
func shootConsole(t *testing.T, c *console, ctx context.Context, dir string) {
	for _, shot := range consoleShots {
		name := shot.name
		shot.shoot(t, c, ctx)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		out := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(out, png, 0o644))
		t.Logf("screenshot: %s (%d KiB)", out, len(png)/1024)
	}
}

// shootSearch searches for a table's name: queries and terminal output
// that mention it, the matches highlighted.
func shootSearch(t *testing.T, c *console, ctx context.Context) {
	recordSearchable(t, c)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions?q=payments"),
		chromedp.WaitVisible(chromedp.CSS(`table.hits`))))
}

// liveScreen is what the break-glass session of the live picture prints
// while it is watched.
var liveScreen = []string{
	"\x1b[31mroot@web-01\x1b[0m:\x1b[34m/var/log\x1b[0m# df -h /var\r\n",
	"Filesystem      Size  Used Avail Use% Mounted on\r\n",
	"/dev/nvme0n1p3   40G   40G     0 100% /var\r\n",
	"\x1b[31mroot@web-01\x1b[0m:\x1b[34m/var/log\x1b[0m# du -sh /var/log/app/* | sort -h | tail -3\r\n",
	"1.2G\t/var/log/app/access.log.2\r\n",
	"6.8G\t/var/log/app/access.log.1\r\n",
	"31G\t/var/log/app/debug.log\r\n",
	"\x1b[31mroot@web-01\x1b[0m:\x1b[34m/var/log\x1b[0m# truncate -s 0 /var/log/app/debug.log\r\n",
	"\x1b[31mroot@web-01\x1b[0m:\x1b[34m/var/log\x1b[0m# ",
}

// shootLive opens, as an admin, the page of a break-glass shell while it
// runs, and lets the session print liveScreen.
func shootLive(t *testing.T, c *console, ctx context.Context) {
	rec := startRecorder(t, c)
	c.ws.Live, c.ws.Audit = rec, func(ctx context.Context, e iga.AuditEvent) error {
		return c.store.Update(ctx, func(tx iga.Tx) error { return tx.AppendAudit(ctx, e) })
	}
	s, err := rec.Open(context.Background(), recorder.SessionMeta{ID: "s-oncall", Identity: "bg-root", Owner: owner, Target: "web-01",
		Protocol: "ssh", Login: "root", Source: "10.0.9.4:40022", BreakglassGrant: "bg-a591e4f8", StartedAt: time.Now().Add(-3 * time.Minute)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background(), recorder.End{}) })
	require.NoError(t, s.OpenTerminal(0, 80, 12, "xterm-256color"))
	c.op.SignInAs(admin, true) // the kill button is an admin's
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`header form button`)),
		chromedp.WaitVisible(chromedp.CSS(`a.button`)), chromedp.Navigate(c.srv.URL+"/sessions/s-oncall"),
		chromedp.WaitVisible(chromedp.CSS(`#live form.kill`))))
	require.Equal(t, "live", waitForText(t, ctx, `#live-state`, "live"))
	for _, line := range liveScreen {
		require.NoError(t, s.Output(0, []byte(line)))
		time.Sleep(50 * time.Millisecond)
	}
	require.Contains(t, waitForText(t, ctx, `#live-player`, "truncate -s 0"), "truncate -s 0")
	time.Sleep(500 * time.Millisecond) // the last frame settles
}
