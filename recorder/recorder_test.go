package recorder

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordSample writes a small ssh-like session: a terminal with a resize,
// a UTF-8 character split across two reads, and a few events.
func recordSample(t *testing.T, h *harness, id string) {
	t.Helper()
	s, err := h.rec.Open(ctxT(t), testMeta(id))
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 120, 40, "xterm-256color"))
	require.NoError(t, s.Output(0, []byte("$ echo grüß\r\n")))
	require.NoError(t, s.Output(0, []byte("gr\xc3")))
	require.NoError(t, s.Output(0, []byte("\xbc\xc3\x9f \x1b[1mbold\x1b[0m\r\n")))
	require.NoError(t, s.Resize(0, 100, 30))
	require.NoError(t, s.Input(0, []byte("secret-typed\r")))
	require.NoError(t, s.Event(Event{Type: EventExec, Command: "uptime"}))
	rows := int64(3)
	require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "SELECT $1::int", Params: []any{7},
		DurationMS: 1.5, Outcome: &Outcome{Tag: "SELECT 3", Rows: &rows}}))
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0), Reason: "client closed"}))
}

func TestRecordVerifyReplayExport(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	recordSample(t, h, "s-basic")
	h.waitUploaded(t)

	assert.Equal(t, []State{StateLive, StateUploading, StateStored}, h.states.of("s-basic"))
	assert.Empty(t, spoolEntries(t, h), "spool must be empty once the store confirmed everything")

	rep := h.verify(t, "s-basic")
	assert.Equal(t, StatusIntact, rep.Status, "report: %s", rep)
	assert.Equal(t, int64(3), rep.Manifest.Counts.Events, "exec, query and end events")

	src, err := FindSession(ctxT(t), h.store, "s-basic")
	require.NoError(t, err)
	var text bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{Format: FormatText}))
	for _, want := range []string{"$ echo grüß\n", "grüß bold\n", "exec: uptime", "query (1.5 ms): SELECT $1::int params=[7] -> SELECT 3 (3 rows)", "end: exit status 0 client closed"} {
		assert.Contains(t, text.String(), want)
	}
	assert.NotContains(t, text.String(), "secret-typed", "input is not recorded unless record_input")
	assert.NotContains(t, text.String(), "\x1b", "text replay strips escape sequences")

	var js bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &js, ReplayOptions{Format: FormatJSON}))
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	assert.Equal(t, "session", first["type"])
	var query map[string]any
	for _, l := range lines {
		if strings.Contains(l, `"type":"query"`) {
			require.NoError(t, json.Unmarshal([]byte(l), &query))
		}
	}
	require.NotNil(t, query, "json replay has the query event")
	assert.Equal(t, map[string]any{"tag": "SELECT 3", "rows": 3.0}, query["outcome"])
	assert.Equal(t, []any{7.0}, query["params"])

	var cast bytes.Buffer
	require.NoError(t, ExportCast(ctxT(t), src, &cast, 0))
	assert.True(t, strings.HasPrefix(cast.String(), `{"version":2,"width":120,"height":40,`), "got header %.60q", cast.String())
	assert.Contains(t, cast.String(), `"r", "100x30"`)
}

// TestAsciinemaCatPlaysExport checks compatibility with the real player:
// Debian's asciinema prints exactly what the session wrote.
func TestAsciinemaCatPlaysExport(t *testing.T) {
	bin := lookPathOrSkip(t, "asciinema")
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	recordSample(t, h, "s-cast")
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-cast")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "s.cast")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, ExportCast(ctxT(t), src, f, 0))
	require.NoError(t, f.Close())

	cmd := exec.CommandContext(ctxT(t), bin, "cat", path)
	withControllingTTY(t, cmd)
	out, err := cmd.Output()
	require.NoError(t, err, "asciinema cat %s", path)
	want := "$ echo grüß\r\ngrüß \x1b[1mbold\x1b[0m\r\n"
	assert.Equal(t, want, string(out))
}

func TestRecordInputWhenEnabled(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.Config.RecordInput = true })
	recordSample(t, h, "s-input")
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-input")
	require.NoError(t, err)
	var cast bytes.Buffer
	require.NoError(t, ExportCast(ctxT(t), src, &cast, 0))
	assert.Contains(t, cast.String(), `"i", "secret-typed\r"`)
}

func TestPublicKeyVerifiesElsewhere(t *testing.T) {
	// ssh-keygen -Y verify, as docs/recordings.md tells auditors.
	bin := lookPathOrSkip(t, "ssh-keygen")
	dir := t.TempDir()
	h := newHarness(t, dir, fileStore(t), testKey(t), nil)
	recordSample(t, h, "s-sig")
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-sig")
	require.NoError(t, err)
	manifest, err := src.readSmall(ctxT(t), manifestObject, maxManifestSize)
	require.NoError(t, err)
	sig, err := src.readSmall(ctxT(t), sigObject, maxManifestSize)
	require.NoError(t, err)
	signers := filepath.Join(dir, "allowed_signers")
	line := "sallyport " + PublicKeyLine(h.key.Public().(ed25519.PublicKey)) + "\n"
	require.NoError(t, os.WriteFile(signers, []byte(line), 0o600))
	sigPath := filepath.Join(dir, "manifest.json.sig")
	require.NoError(t, os.WriteFile(sigPath, sig, 0o600))

	for _, tc := range []struct {
		name   string
		body   []byte
		wantOK bool
	}{
		{"genuine manifest", manifest, true},
		{"altered manifest", bytes.Replace(manifest, []byte("complete"), []byte("completE"), 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-Y", "verify", "-f", signers, "-I", "sallyport", "-n", sigNamespace, "-s", sigPath)
			cmd.Stdin = bytes.NewReader(tc.body)
			out, err := cmd.CombinedOutput()
			if tc.wantOK {
				assert.NoError(t, err, "ssh-keygen: %s", out)
			} else {
				assert.Error(t, err, "ssh-keygen accepted an altered manifest: %s", out)
			}
		})
	}
}
