package ssh

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

func TestExecThroughBastion(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	tests := []struct {
		name       string
		user       string
		cmd        string
		stdin      string
		wantOut    string
		wantErrOut string
		wantCode   int
	}{
		{"output and exit 0", "svc-ops@web", "echo hello; whoami", "", "hello\n" + h.sshd.User + "\n", "", 0},
		{"stdin reaches cat and EOF ends it", "svc-ops@web", "cat", "line one\nline two\n", "line one\nline two\n", "", 0},
		{"exit status passes through", "svc-ops@web", "echo oops >&2; exit 7", "", "", "oops\n", 7},
		{"plus form of the login", "svc-ops+web", "echo plus", "", "plus\n", "", 0},
		{"exec-only identity runs commands", "svc-exec@web", "echo exec-only", "", "exec-only\n", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.user[:len(tt.user)-4]
			r := run(t, h.sshAs(ctx, id, tt.user, hostArgs(tt.cmd)...), tt.stdin)
			assert.Equal(t, tt.wantOut, r.stdout, "stdout")
			assert.Equal(t, tt.wantErrOut, r.stderr, "stderr")
			assert.Equal(t, tt.wantCode, r.code, "got exit %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
		})
	}
	t.Run("recorded with command and exit status, and verifies", func(t *testing.T) {
		srcs := h.recordings(ctx)
		require.Len(t, srcs, len(tests))
		var commands []string
		var exits []float64
		for _, src := range srcs {
			rep, err := recorder.Verify(ctx, src, h.recKey.Public().(ed25519.PublicKey))
			require.NoError(t, err)
			assert.True(t, rep.OK(), "recording %s: %s", src.ID(), rep)
			lines := replayJSON(t, ctx, src)
			for _, e := range eventsOf(lines, "exec") {
				commands = append(commands, e["command"].(string))
			}
			for _, e := range eventsOf(lines, "end") {
				if s, ok := e["exit_status"].(float64); ok {
					exits = append(exits, s)
				}
			}
		}
		assert.ElementsMatch(t, []string{"echo hello; whoami", "cat", "echo oops >&2; exit 7", "echo plus", "echo exec-only"}, commands)
		assert.Contains(t, exits, float64(7))
	})
}
