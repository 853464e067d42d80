package web_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// screenshotEnv names the PNG TestSessionPageScreenshot writes; `make
// screenshot` sets it to docs/console-session.png, the README's picture.
const screenshotEnv = "SALLYPORT_SCREENSHOT"

// readmeSession is the terminal of the session the README shows: a backup
// run, in the colours a real shell would print.
var readmeSession = []string{
	"\x1b[32mbackup@web-01\x1b[0m:\x1b[34m~\x1b[0m$ ./backup.sh --to s3://acme-backups/web-01\r\n",
	"[10:53:04] snapshot /var/lib/app ............ \x1b[32mok\x1b[0m  (1.2 GiB)\r\n",
	"[10:53:06] dump postgres://analytics ........ \x1b[32mok\x1b[0m  (318 MiB)\r\n",
	"[10:53:09] encrypt (age, 2 recipients) ...... \x1b[32mok\x1b[0m\r\n",
	"[10:53:14] upload 42 files .................. \x1b[32mok\x1b[0m  (1.5 GiB, 97 MiB/s)\r\n",
	"[10:53:15] prune snapshots older than 30d ... \x1b[33m3 removed\x1b[0m\r\n",
	recordedText + "\r\n",
	"\x1b[32mbackup@web-01\x1b[0m:\x1b[34m~\x1b[0m$ df -h /var/lib/app\r\n",
	"Filesystem      Size  Used Avail Use% Mounted on\r\n",
	"/dev/nvme1n1    200G  121G   80G  61% /var/lib/app\r\n",
	"\x1b[32mbackup@web-01\x1b[0m:\x1b[34m~\x1b[0m$ exit\r\n",
}

// TestSessionPageScreenshot renders the session page of a recorded SSH
// session in headless chromium, plays it to the end and saves the page as
// the PNG $SALLYPORT_SCREENSHOT names, and docs/console.md's pictures of
// search and live view beside it. Without it, the test skips.
func TestSessionPageScreenshot(t *testing.T) {
	out := os.Getenv(screenshotEnv)
	if out == "" {
		t.Skip(screenshotEnv + " is not set; `make screenshot` sets it to refresh docs/console-session.png")
	}
	c := newConsole(t)
	recordREADMESession(t, c)
	ctx := newBrowser(t)
	c.op.SignInAs(auditor, true)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1100, 1000),
		chromedp.Navigate(c.srv.URL+"/sessions/s-readme"), chromedp.WaitVisible(chromedp.CSS(`#player .ap-player`)),
		chromedp.Click(chromedp.CSS(`#player .ap-player`))))
	require.Contains(t, waitForText(t, ctx, `#player`, "61% /var/lib/app"), "61% /var/lib/app", "the player never reached the end")
	time.Sleep(time.Second) // the player's last frame and its controls settle
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	abs, _ := filepath.Abs(out)
	require.NoError(t, os.WriteFile(abs, png, 0o644))
	t.Logf("screenshot: %s (%d KiB)", abs, len(png)/1024)
	shootConsole(t, c, ctx, filepath.Dir(abs)) // docs/console.md's pictures
}

// recordREADMESession records readmeSession with the real recorder into the
// console's store, about a second between lines, and indexes it.
func recordREADMESession(t *testing.T, c *console) {
	ctx := context.Background()
	var mu sync.Mutex
	clock := time.Now().Add(-20 * time.Minute)
	cfg := recorder.Config{DataDir: c.dir, FailClosed: true}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	rstore, err := recorder.NewStore(cfg)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: cfg, Store: rstore, Key: key,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock },
		OnState: func(s recorder.StateChange) {
			m := s.Meta
			require.NoError(t, c.store.PutSession(ctx, sqlstore.SessionRecord{ID: m.ID, Identity: m.Identity, Owner: m.Owner,
				Target: m.Target, Protocol: m.Protocol, Login: m.Login, Source: m.Source, State: string(s.State), Dir: s.Dir,
				StartedAt: m.StartedAt, EndedAt: s.EndedAt, Bytes: s.Bytes, Events: s.Events}))
		}}
	require.NoError(t, rec.Start(ctx))
	ssh, err := rec.Open(ctx, recorder.SessionMeta{ID: "s-readme", Identity: "svc-backup", Owner: owner, Target: "web-01",
		Protocol: "ssh", Login: "backup", CertSerial: "4711", Source: "10.0.4.17:52344", StartedAt: clock})
	require.NoError(t, err)
	require.NoError(t, ssh.OpenTerminal(0, 80, 14, "xterm-256color"))
	for _, line := range readmeSession {
		mu.Lock()
		clock = clock.Add(300 * time.Millisecond)
		mu.Unlock()
		require.NoError(t, ssh.Output(0, []byte(line)))
	}
	status := 0
	require.NoError(t, ssh.Close(ctx, recorder.End{ExitStatus: &status}))
	require.NoError(t, rec.Shutdown(ctx))
}
