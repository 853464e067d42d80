package ssh

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// typedCommands are the recording's command events, as command, source.
func typedCommands(lines []map[string]any) (cmds, sources []string) {
	for _, l := range eventsOf(lines, "command") {
		cmd, _ := l["command"].(string)
		src, _ := l["source"].(string)
		cmds, sources = append(cmds, cmd), append(sources, src)
	}
	return cmds, sources
}

// TestTerminalCommandsTypedAhead: a script piped into an interactive
// shell (ssh -tt < script) leaves one command event per line, rebuilt
// from the terminal's echo with keystrokes not recorded (the default).
func TestTerminalCommandsTypedAhead(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	r := run(t, h.ssh(ctx, "svc-ops", append([]string{"-tt"}, hostArgs()...)...), "PS1='$ '\necho one; echo two\nexit\n")
	require.Equal(t, 0, r.code, "stderr %q", r.stderr)
	require.Contains(t, r.stdout, "one\r\ntwo\r\n")

	srcs := h.recordings(ctx)
	require.Len(t, srcs, 1)
	lines := replayJSON(t, ctx, srcs[0])
	require.Empty(t, eventsOf(lines, "input"), "keystrokes are not recorded by default")
	cmds, sources := typedCommands(lines)
	assert.Equal(t, []string{"PS1='$ '", "echo one; echo two", "exit"}, cmds)
	assert.Equal(t, []string{"terminal", "terminal", "terminal"}, sources)
	for _, ev := range eventsOf(lines, "command") {
		assert.NotNil(t, ev["channel"], "a command event names its channel")
	}
}

// TestTerminalCommandsTyped: a person typing at the prompt, keystrokes
// recorded, answering a password prompt that does not echo: the commands
// are events, the password is not, though it is in the recorded input.
func TestTerminalCommandsTyped(t *testing.T) {
	h := newHarness(t, harnessOptions{tuneRecorder: func(r *recorder.Recorder) { r.Config.RecordInput = true }})
	ctx := testCtx(t, 20*time.Second)
	cmd := h.ssh(ctx, "svc-ops", append([]string{"-tt"}, hostArgs()...)...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	term := &screen{}
	cmd.Stdout, cmd.Stderr = term, io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	for _, step := range []struct{ prompt, line string }{
		{"# ", "PS1='$ '"}, {"$ ", "echo typed-$((6*7))"}, {"$ ", `read -s -p "Password: " pw`},
		{"Password: ", "hunter2"}, {"$ ", "uname -s"}, {"$ ", "exit"},
	} {
		term.waitPrompt(t, step.prompt) // a person reads the prompt, then types
		_, err := io.WriteString(stdin, step.line+"\n")
		require.NoError(t, err)
	}
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait(), "output %q", term.String())
	assert.Contains(t, term.String(), "typed-42")

	srcs := h.recordings(ctx)
	require.Len(t, srcs, 1)
	lines := replayJSON(t, ctx, srcs[0])
	var keys strings.Builder
	for _, l := range eventsOf(lines, "input") {
		keys.WriteString(l["data"].(string))
	}
	require.Contains(t, keys.String(), "hunter2", "keystrokes are recorded")
	cmds, sources := typedCommands(lines)
	assert.Equal(t, []string{"PS1='$ '", "echo typed-$((6*7))", `read -s -p "Password: " pw`, "uname -s", "exit"}, cmds)
	for i, c := range cmds {
		assert.NotContains(t, c, "hunter2")
		assert.Equal(t, "terminal", sources[i])
	}
}

// screen collects a terminal's output and tells when it went quiet.
type screen struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	last time.Time
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = time.Now()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitPrompt waits until the output ends with prompt (or, for the login
// shell's "# ", with "$ ": root's prompt or another user's) and then stays
// quiet for 200 ms, as long as a person takes to start typing.
func (s *screen) waitPrompt(t *testing.T, prompt string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		out := s.buf.String()
		ready := (strings.HasSuffix(out, prompt) || prompt == "# " && strings.HasSuffix(out, "$ ")) &&
			time.Since(s.last) >= 200*time.Millisecond
		s.mu.Unlock()
		if ready {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no prompt %q; output so far %q", prompt, s.String())
}
