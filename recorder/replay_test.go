package recorder

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable Recorder.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestReplayPTYTiming(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.Now = clock.Now })
	s, err := h.rec.Open(ctxT(t), testMeta("s-pty"))
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
	require.NoError(t, s.Output(0, []byte("one ")))
	clock.advance(2 * time.Second)
	require.NoError(t, s.Output(0, []byte("\x1b[32mtwo\x1b[0m ")))
	clock.advance(30 * time.Second)
	require.NoError(t, s.Output(0, []byte("three\r\n")))
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-pty")
	require.NoError(t, err)

	cases := []struct {
		name   string
		opts   ReplayOptions
		sleeps []time.Duration
	}{
		{"real time", ReplayOptions{}, []time.Duration{2 * time.Second, 30 * time.Second}},
		{"double speed", ReplayOptions{Speed: 2}, []time.Duration{time.Second, 15 * time.Second}},
		{"idle limit", ReplayOptions{IdleLimit: 3 * time.Second}, []time.Duration{2 * time.Second, 3 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var slept []time.Duration
			tc.opts.Format = FormatPTY
			tc.opts.Sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
			var out bytes.Buffer
			require.NoError(t, Replay(ctxT(t), src, &out, tc.opts))
			assert.Equal(t, "one \x1b[32mtwo\x1b[0m three\r\n", out.String(), "pty replay writes the raw terminal bytes")
			assert.Equal(t, tc.sleeps, slept)
		})
	}
}

func TestReplayDatabaseTimeline(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.Now = clock.Now })
	meta := testMeta("s-db")
	meta.Protocol = "postgres"
	s, err := h.rec.Open(ctxT(t), meta)
	require.NoError(t, err)
	rows := int64(2)
	require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "SELECT *\n  FROM accounts WHERE id = $1", Params: []any{"42"},
		DurationMS: 3.25, Outcome: &Outcome{Tag: "SELECT 2", Rows: &rows}}))
	clock.advance(5 * time.Second)
	require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "DROP TABLE accounts", DurationMS: 0.5,
		Outcome: &Outcome{ErrorCode: "42501", Error: "permission denied for table accounts"}}))
	require.NoError(t, s.Close(ctxT(t), End{Reason: "client terminated"}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-db")
	require.NoError(t, err)

	var slept []time.Duration
	var out bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &out, ReplayOptions{Format: FormatPTY,
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}))
	want := "10:00:00.000 query (3.2 ms): SELECT * FROM accounts WHERE id = $1 params=[\"42\"] -> SELECT 2 (2 rows)\r\n" +
		"10:00:05.000 query (0.5 ms): DROP TABLE accounts -> error 42501: permission denied for table accounts\r\n" +
		"10:00:05.000 end: client terminated\r\n"
	assert.Equal(t, want, out.String(), "a session without a terminal replays as a query timeline")
	assert.Equal(t, []time.Duration{5 * time.Second}, slept)

	var text bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{Format: FormatText}))
	assert.True(t, strings.HasPrefix(text.String(), "# session s-db: svc-backup on web-01 (postgres, login backup)"), "got %q", text.String())
}

func TestReplayRejectsUnknownFormat(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	recordSample(t, h, "s-fmt")
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-fmt")
	require.NoError(t, err)
	err = Replay(ctxT(t), src, &bytes.Buffer{}, ReplayOptions{Format: "html"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"html" is not pty, text or json`)
	err = ExportCast(ctxT(t), src, &bytes.Buffer{}, 3)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no terminal recorded on channel 3")
}

func TestANSIStripper(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "hello\n", "hello\n"},
		{"crlf", "a\r\nb\r\n", "a\nb\n"},
		{"colour", "\x1b[01;34mbin\x1b[0m", "bin"},
		{"osc title", "\x1b]0;user@host: ~\x07$ ", "$ "},
		{"osc with ST", "\x1b]2;t\x1b\\x", "x"},
		{"lone CR redraws", "50%\r100%", "50%\n100%"},
		{"bell and backspace", "a\x07b\x08c", "abc"},
		{"keypad mode", "\x1b=ok", "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a ansiStripper
			assert.Equal(t, tc.want, string(a.strip([]byte(tc.in))))
		})
	}
	t.Run("sequence split across writes", func(t *testing.T) {
		var a ansiStripper
		first := string(a.strip([]byte("x\x1b[3")))
		second := string(a.strip([]byte("1mred")))
		assert.Equal(t, "xred", first+second)
	})
}

func TestVerifyLiveSessionIsUnsealed(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-live"))
	require.NoError(t, err)
	require.NoError(t, s.Output(0, []byte("still running\r\n")))
	require.Eventually(t, func() bool {
		keys, _ := h.store.List(ctxT(t), SessionDir("s-live", testMeta("").StartedAt))
		return len(keys) >= 2
	}, 5*time.Second, 20*time.Millisecond, "chunks are uploaded while the session runs")
	rep := h.verify(t, "s-live")
	assert.Equal(t, StatusUnsealed, rep.Status, "report: %s", rep)
	assert.Empty(t, rep.Problems)
	require.NoError(t, s.Close(ctxT(t), End{}))
}
