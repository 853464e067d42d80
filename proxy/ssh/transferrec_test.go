package ssh

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// transferEvents returns the events of one type across every recording
// so far, by "op path" ("direction mkdir path" for scp directories).
func transferEvents(t *testing.T, ctx context.Context, h *harness, typ string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, src := range h.recordings(ctx) {
		for _, e := range eventsOf(replayJSON(t, ctx, src), typ) {
			op, path := e["op"].(string), e["path"].(string)
			if op == "mkdir" && typ == "scp" {
				op = e["direction"].(string) + " mkdir"
			}
			out[op+" "+path] = e
		}
	}
	return out
}

// writeRandom writes n random bytes to path with mode.
func writeRandom(t *testing.T, path string, n int, mode os.FileMode) {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(path, data, mode))
	require.NoError(t, os.Chmod(path, mode))
}

// outcomeError is an event's outcome.error, "" for success; it fails the
// test when the event has no outcome.
func outcomeError(t *testing.T, e map[string]any) string {
	t.Helper()
	o, ok := e["outcome"].(map[string]any)
	require.True(t, ok, "event %v has an outcome", e)
	s, _ := o["error"].(string)
	return s
}

// TestSCPRecorded: legacy scp transfers both ways are recorded file by
// file, with the path on the target, size, mode and the SHA-256 that
// sha256sum gives, and failures with the target's message.
func TestSCPRecorded(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 120*time.Second)
	local, remote, down := filepath.Join(h.dir, "local"), filepath.Join(h.dir, "remote"), filepath.Join(h.dir, "down")
	for _, d := range []string{local, remote, down, filepath.Join(local, "tree", "sub")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	require.NoError(t, os.Chmod(filepath.Join(local, "tree", "sub"), 0o750))
	writeRandom(t, filepath.Join(local, "a.bin"), 300<<10, 0o640)
	writeRandom(t, filepath.Join(local, "b.txt"), 17, 0o644)
	writeRandom(t, filepath.Join(local, "tree", "x.txt"), 5000, 0o600)
	writeRandom(t, filepath.Join(local, "tree", "sub", "y.bin"), 70<<10, 0o644)
	scp := func(args ...string) result {
		a := append(h.opts("svc-sftp", "svc-sftp@web"), "-O", "-P", h.port)
		return run(t, exec.CommandContext(ctx, "scp", append(a, args...)...), "")
	}
	at := func(p string) string { return "127.0.0.1:" + p }

	r := scp(filepath.Join(local, "a.bin"), filepath.Join(local, "b.txt"), at(remote))
	require.Equal(t, 0, r.code, "upload two files: %s", r.stderr)
	r = scp("-r", filepath.Join(local, "tree"), at(remote))
	require.Equal(t, 0, r.code, "upload a tree: %s", r.stderr)
	r = scp(at(remote+"/a.bin"), at(remote+"/b.txt"), down)
	require.Equal(t, 0, r.code, "download two files: %s", r.stderr)
	r = scp("-r", at(remote+"/tree"), down)
	require.Equal(t, 0, r.code, "download a tree: %s", r.stderr)
	r = scp(filepath.Join(local, "b.txt"), at(remote+"/missing/b.txt"))
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "No such file or directory")
	r = scp(at(remote+"/nope.txt"), down)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "No such file or directory")

	events := transferEvents(t, ctx, h, "scp")
	for _, src := range h.recordings(ctx) {
		lines := replayJSON(t, ctx, src)
		for _, n := range eventsOf(lines, "note") {
			assert.NotContains(t, n["text"], "scp", "the parser lost a stream of real scp")
		}
		// An scp channel is an exec channel too: its streams are kept and summed.
		ends := eventsOf(lines, "exec_end")
		if assert.Len(t, ends, 1, "session %s", src.ID()) {
			streams := ends[0]["streams"].(map[string]any)
			assert.NotZero(t, streams["stdin"].(map[string]any)["bytes"].(float64)+streams["stdout"].(map[string]any)["bytes"].(float64))
		}
	}
	assert.Len(t, events, 14, "4 files and 2 directories each way, 2 failures: %v", keys(events))
	files := []struct{ rel, mode string }{{"a.bin", "0640"}, {"b.txt", "0644"}, {"tree/x.txt", "0600"}, {"tree/sub/y.bin", "0644"}}
	for _, op := range []string{"upload", "download"} {
		for _, f := range files {
			e, ok := events[op+" "+remote+"/"+f.rel]
			if !assert.True(t, ok, "no %s event for %s in %v", op, f.rel, keys(events)) {
				continue
			}
			st, err := os.Stat(filepath.Join(local, f.rel))
			require.NoError(t, err)
			assert.Equal(t, sha(t, filepath.Join(local, f.rel)), e["sha256"], "%s %s: sha256", op, f.rel)
			assert.Equal(t, float64(st.Size()), e["size"], "%s %s: size", op, f.rel)
			assert.Equal(t, float64(st.Size()), e["bytes"], "%s %s: bytes", op, f.rel)
			assert.Equal(t, f.mode, e["mode"], "%s %s: mode", op, f.rel)
			assert.Equal(t, op, e["direction"])
			assert.Equal(t, "", outcomeError(t, e), "%s %s: outcome", op, f.rel)
		}
		for _, d := range []string{"tree", "tree/sub"} {
			e, ok := events[op+" mkdir "+remote+"/"+d]
			if assert.True(t, ok, "no mkdir event for %s in %v", d, keys(events)) {
				assert.Equal(t, map[string]string{"tree": "0755", "tree/sub": "0750"}[d], e["mode"])
			}
		}
	}
	for path, op := range map[string]string{remote + "/missing/b.txt": "upload", remote + "/nope.txt": "download"} {
		e, ok := events[op+" "+path]
		if assert.True(t, ok, "no %s event for the failed %s in %v", op, path, keys(events)) {
			assert.Contains(t, outcomeError(t, e), "No such file or directory")
			assert.Empty(t, e["sha256"])
		}
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSFTPOutcomesRecorded: sftp put and get carry the file's SHA-256, and
// failed operations their error.
func TestSFTPOutcomesRecorded(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	local, remote := filepath.Join(h.dir, "a.bin"), filepath.Join(h.dir, "remote")
	require.NoError(t, os.MkdirAll(remote, 0o755))
	writeRandom(t, local, 1<<20+123, 0o644)
	batch := filepath.Join(h.dir, "batch")
	cmds := []string{
		"put " + local + " " + remote + "/a.bin",
		"get " + remote + "/a.bin " + h.dir + "/back.bin",
		"-rm " + remote + "/missing",
		"-mkdir " + remote,
		"-rename " + remote + "/a.bin " + remote + "/nodir/a.bin",
		"-get " + remote + "/nope " + h.dir + "/nope",
	}
	require.NoError(t, os.WriteFile(batch, []byte(strings.Join(cmds, "\n")+"\n"), 0o600))
	a := append(h.opts("svc-sftp", "svc-sftp@web"), "-P", h.port, "-b", batch, "127.0.0.1")
	r := run(t, exec.CommandContext(ctx, "sftp", a...), "")
	require.Equal(t, 0, r.code, "sftp: %s", r.stderr)
	require.Equal(t, sha(t, local), sha(t, h.dir+"/back.bin"))

	events := transferEvents(t, ctx, h, "sftp")
	want := sha(t, local)
	for op, dir := range map[string]string{"write": "upload", "read": "download"} {
		e, ok := events[op+" "+remote+"/a.bin"]
		if assert.True(t, ok, "no %s event in %v", op, keys(events)) {
			assert.Equal(t, want, e["sha256"], "%s: sha256", op)
			assert.Equal(t, float64(1<<20+123), e["bytes"], "%s: bytes", op)
			assert.Equal(t, dir, e["direction"])
		}
	}
	failed := []struct{ key, code string }{
		{"remove " + remote + "/missing", "no_such_file"},
		{"mkdir " + remote, "failure"},
		{"rename " + remote + "/a.bin", "no_such_file"},
	}
	for _, f := range failed {
		e, ok := events[f.key]
		if assert.True(t, ok, "no event %q in %v", f.key, keys(events)) {
			assert.Equal(t, f.code, e["outcome"].(map[string]any)["error_code"], f.key)
			assert.NotEmpty(t, outcomeError(t, e), f.key)
		}
	}
	assert.Equal(t, remote+"/nodir/a.bin", events["rename "+remote+"/a.bin"]["to"])
	missing := false
	for _, op := range []string{"stat", "lstat", "realpath", "open"} {
		if e, ok := events[op+" "+remote+"/nope"]; ok {
			missing = true
			assert.Equal(t, "no_such_file", e["outcome"].(map[string]any)["error_code"])
		}
	}
	assert.True(t, missing, "the get of a missing file left no trace in %v", keys(events))
}
