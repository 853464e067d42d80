package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browserTimeout bounds the whole browser test: chromium starts in a second
// or two, each page in well under one — on an idle machine. CI runs every
// package's tests at once on two cores, so the bound is generous.
const browserTimeout = 3 * time.Minute

// chromiumPath finds Debian's chromium; without it the test fails under CI
// and skips, loudly, elsewhere.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (make deps installs it); the browser test cannot run")
	}
	t.Skip("SKIPPED LOUDLY: chromium is not installed; run make deps to run the browser test")
	return ""
}

func newBrowser(t *testing.T) context.Context {
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromiumPath(t)), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 1000)}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	return bctx
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(t.ArtifactDir(), name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// TestBrowser signs in through a real OpenID provider (zitadel/oidc's op
// package with in-memory storage) in headless chromium,
// replays the recorded SSH session in asciinema-player, reads a database
// session's query timeline and completes a break-glass review. Run with
// `go test -artifacts` to keep the screenshots.
func TestBrowser(t *testing.T) {
	c := newConsole(t)
	withZitadelOP(t, c)
	ctx := newBrowser(t)
	zitadelSignIn(t, ctx, c, owner)

	t.Run("owner completes a break-glass review", func(t *testing.T) {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/reviews"),
			chromedp.WaitVisible(chromedp.CSS(`select[name=outcome]`)),
			chromedp.SetValue(chromedp.CSS(`select[name=outcome]`), "drill"),
			chromedp.SendKeys(chromedp.CSS(`input[name=note]`), "planned exercise, sessions as described")))
		screenshot(t, ctx, "reviews")
		require.NoError(t, chromedp.Do(ctx, chromedp.Submit(chromedp.CSS(`input[name=note]`)),
			chromedp.WaitVisible(`//h2[starts-with(., "Completed (1)")]`)))
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		require.NoError(t, err)
		assert.Contains(t, text, "No pending reviews.")
		assert.Contains(t, text, "planned exercise")
	})

	// Sign out and in again as the auditor.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`header form button`)),
		chromedp.WaitVisible(chromedp.CSS(`a.button`))))
	zitadelSignIn(t, ctx, c, auditor)

	t.Run("auditor replays the SSH session", func(t *testing.T) {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions/s-ssh"),
			chromedp.WaitVisible(chromedp.CSS(`#player .ap-player`))))
		badge, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#integrity`)))
		require.NoError(t, err)
		assert.Equal(t, "recording intact", badge)
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#player .ap-player`))))
		got := waitForText(t, ctx, `#player`, recordedText)
		assert.Contains(t, got, recordedText)
		screenshot(t, ctx, "session-ssh")

		// A new speed restarts the player where it was, at that speed.
		_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { window.before = window.sallyportPlayer; const s = document.querySelector("#speed select");
			s.value = "2"; s.dispatchEvent(new Event("change")); return true })()`))
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			replaced, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.sallyportPlayer !== window.before`))
			return err == nil && replaced
		}, 5*time.Second, 100*time.Millisecond)
		assert.Contains(t, waitForText(t, ctx, `#player`, recordedText), recordedText, "the terminal survives a speed change")
	})

	t.Run("auditor reads a database session's queries", func(t *testing.T) {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions/s-pg"),
			chromedp.WaitVisible(chromedp.CSS(`table.timeline`))))
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`table.timeline`)))
		require.NoError(t, err)
		assert.Contains(t, text, "SELECT name FROM customers WHERE id = $1")
		assert.Contains(t, text, "42")
		assert.Contains(t, text, "42501 permission denied")
		screenshot(t, ctx, "session-postgres")
	})

	t.Run("auditor reads an exec session's script and output", func(t *testing.T) {
		recordExecSession(t, c)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions/s-exec"),
			chromedp.WaitVisible(chromedp.CSS(`table.exec-io`))))
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`section.exec`)))
		require.NoError(t, err)
		assert.Contains(t, text, "Channel 0: bash -s")
		assert.Contains(t, text, "echo '<script>alert(1)</script>'", "the script reads as text")
		assert.Contains(t, text, "/dev/sda1    50G")
		assert.Contains(t, text, "exit status 0")
		players, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#player").length`))
		require.NoError(t, err)
		assert.Equal(t, 0, players, "no empty player")
		screenshot(t, ctx, "session-exec")
	})

	for _, page := range []string{"/", "/sessions", "/live", "/registry", "/campaigns"} {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+page), chromedp.WaitVisible(chromedp.CSS(`main h1`))))
		screenshot(t, ctx, "page"+strings.ReplaceAll(strings.TrimSuffix(page, "/"), "/", "-"))
	}
}

// waitForText polls the text of sel until it contains want.
func waitForText(t *testing.T, ctx context.Context, sel, want string) string {
	var got string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("`+sel+`").innerText`))
		if got = s; err == nil && strings.Contains(got, want) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
	return got
}
