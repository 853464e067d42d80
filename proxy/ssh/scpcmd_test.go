package ssh

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
)

func TestParseSCPCommand(t *testing.T) {
	tests := []struct {
		command string
		want    scpCommand
		err     string // empty: a transfer
	}{
		{command: "scp -t /tmp/x", want: scpCommand{Upload: true, Path: "/tmp/x"}},
		{command: "scp -f data.csv", want: scpCommand{Path: "data.csv"}},
		{command: "scp -v -r -p -d -t /srv/in", want: scpCommand{Upload: true, Verbose: true, Recursive: true, Preserve: true, Dir: true, Path: "/srv/in"}},
		{command: "scp -t -- -odd-name", want: scpCommand{Upload: true, Path: "-odd-name"}},
		{command: "scp -f '/tmp/with space'", want: scpCommand{Path: "/tmp/with space"}},
		{command: "scp -f ~/report_2026-12.csv", want: scpCommand{Path: "~/report_2026-12.csv"}},
		{command: "scp -f 'é€'", want: scpCommand{Path: "é€"}},
		{command: "ls -la", err: "not an scp command"},
		{command: "scp", err: "not an scp command"},
		{command: "scp\n-f x", err: "not an scp command"},
		{command: "scp -f\nid", err: "neither -t nor -f"},
		{command: "scp -f \nid", err: "one word"},
		{command: "scp -f x\nid", err: "one word"},
		{command: "scp -t --\nbash", err: "one word"},
		{command: "scp -t -- \nbash", err: "one word"},
		{command: "scp -f x\rid", err: "one word"},
		{command: "scp -f x\tid", err: "one word"},
		{command: "scp -f x\x00id", err: "one word"},
		{command: "scp -f 'x\nid'", err: "U+000A"},
		{command: "scp -f 'x\u2028id'", err: "U+2028"},
		{command: "scp -f 'x\u202eid'", err: "U+202E"},
		{command: "scp -f x\u2028id", err: "one word"},
		{command: "scp -f x;id", err: "one word"},
		{command: "scp -f $(id)", err: "one word"},
		{command: "scp -f `id`", err: "one word"},
		{command: "scp -f a && id", err: "one word"},
		{command: "scp -f a b", err: "one word"},
		{command: "scp -f *.log", err: "one word"},
		{command: "scp -f 'a'\\''b'", err: "one word"},
		{command: "scp -f ''", err: "one word"},
		{command: "scp -f -oProxyCommand=id", err: "must follow --"},
		{command: "scp -S /tmp/evil -f x", err: "is not one scp sends"},
		{command: "scp -t -f x", err: "more than one of -t and -f"},
		{command: "scp -r -r -t x", err: "given twice"},
		{command: "scp -r x", err: "neither -t nor -f"},
		{command: "scp  -t x", err: "neither -t nor -f"},
		{command: "scp -t x ", err: "one word"},
		{command: "scp -t \xff", err: "not valid UTF-8"},
		{command: "scp -t " + strings.Repeat("a", 5000), err: "longer than"},
	}
	for _, tt := range tests {
		t.Run(strings.ToValidUTF8(tt.command, "?"), func(t *testing.T) {
			got, err := parseSCPCommand(tt.command)
			if tt.err != "" {
				require.Error(t, err, "got a transfer %+v, want refused", got)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzSCPCommand: whatever the command line, one that parses as a transfer
// holds nothing a POSIX shell would act on: outside one trailing
// single-quoted path only plain path characters and single spaces, and
// nowhere a control character or line separator.
func FuzzSCPCommand(f *testing.F) {
	for _, s := range []string{"scp -t /tmp/x", "scp -f 'a b'", "scp -f\nid", "scp -t --\nbash", "scp -r -p -t -- -x",
		"scp -f 'x\u2028id'", "scp -f x;id", "scp -f '$(id)'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, command string) {
		c, err := parseSCPCommand(command)
		if err != nil {
			return
		}
		if strings.IndexFunc(command, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }) >= 0 {
			t.Fatalf("%q parsed as a transfer but holds a control character", command)
		}
		head := command
		if i := strings.IndexByte(command, '\''); i >= 0 {
			head = command[:i]
			quoted := command[i:]
			if len(quoted) < 3 || quoted[len(quoted)-1] != '\'' || strings.Contains(quoted[1:len(quoted)-1], "'") {
				t.Fatalf("%q parsed as a transfer with quoting other than one trailing single-quoted word", command)
			}
		}
		if strings.Trim(head, scpPlain+" ") != "" || strings.Contains(head, "  ") {
			t.Fatalf("%q parsed as a transfer but holds shell syntax outside quotes", command)
		}
		if c.Path == "" {
			t.Fatalf("%q parsed as a transfer of no path", command)
		}
	})
}

// TestSCPCommandInjection runs the review's commands with the real ssh
// client as an identity entitled to sftp only: none runs anything on the
// target, each is refused as action_not_entitled with a line that says the
// command is not a file transfer, and each refusal is a deny decision in
// the audit trail naming the command. Legacy scp itself still works (see
// TestSCPAndSFTP).
func TestSCPCommandInjection(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 90*time.Second)
	marker := filepath.Join(h.dir, "pwned")
	script := "touch " + marker + "\n"
	for _, command := range []string{
		"scp -f\nid",
		"scp -t --\nbash",
		"scp -f x\rtouch " + marker,
		"scp -f x\ttouch " + marker,
		"scp -t x\u2028touch " + marker,
		"scp -f x;touch " + marker,
		"scp -f 'x'\ntouch " + marker,
		"scp -f x && touch " + marker,
	} {
		t.Run(strings.ToValidUTF8(command, "?"), func(t *testing.T) {
			r := run(t, h.ssh(ctx, "svc-sftp", hostArgs(command)...), script)
			assert.Equal(t, 1, r.code, "stderr %q", r.stderr)
			assert.NotContains(t, r.stdout, "uid=", "the target ran id")
			assert.Contains(t, r.stderr, "sallyport: access denied (action_not_entitled): svc-sftp may not exec on web")
			assert.Contains(t, r.stderr, "not a legacy scp file transfer")
			assert.NoFileExists(t, marker, "the target ran the injected command")
		})
	}
	// NUL cannot pass through a command-line argument: the x/crypto client sends it.
	t.Run("NUL", func(t *testing.T) {
		out, err := h.goSSHRun("svc-sftp", "scp -f x\x00touch "+marker)
		require.Error(t, err)
		assert.Contains(t, out, "action_not_entitled")
		assert.NoFileExists(t, marker)
	})
	events, err := h.reg.Store.Audit(ctx, iga.AuditFilter{Identity: "svc-sftp", Type: "decision"})
	require.NoError(t, err)
	denied := 0
	for _, e := range events {
		if !e.Allow && e.Action == iga.ActionExec && strings.Contains(e.Detail, `asked "scp -`) {
			denied++
		}
	}
	assert.Equal(t, 9, denied, "every refused command is a deny decision naming it: %+v", events)
}

// goSSHRun runs command as identity through the bastion with the x/crypto
// client, which can send any bytes, and returns stdout and stderr together.
func (h *harness) goSSHRun(identity, command string) (string, error) {
	pem, err := os.ReadFile(h.keys[identity])
	if err != nil {
		return "", err
	}
	signer, err := gossh.ParsePrivateKey(pem)
	if err != nil {
		return "", err
	}
	client, err := gossh.Dial("tcp", h.addr, &gossh.ClientConfig{User: identity + "@web",
		Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return "", err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(command)
	return string(out), err
}

var _ = context.Background
