package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/recorder"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{"0": 0, "4096": 4096, "64KiB": 64 << 10, "16MiB": 16 << 20, "1GiB": 1 << 30, "2MB": 2e6, " 5 KB ": 5000} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, "ParseSize(%q)", in)
	}
	for _, bad := range []string{"", "-1", "16 MiBs", "1.5MiB", "16mib", "99999999999GiB", "lots"} {
		_, err := ParseSize(bad)
		assert.Error(t, err, "ParseSize(%q)", bad)
	}
}

// TestExecCaptureConfig: the YAML's exec capture keys reach the recorder:
// a size with its unit, 0 for counts and hashes only, stdin off globally or
// for one target.
func TestExecCaptureConfig(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sshPub, err := gossh.NewPublicKey(pub)
	require.NoError(t, err)
	testHostKey := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub)))
	load := func(rec, target string) recorder.Config {
		t.Helper()
		doc := "data_dir: " + t.TempDir() + "\nrecordings: {" + rec + "}\ntargets:\n  - {name: web-01, kind: ssh, address: \"127.0.0.1:22\", host_key: \"" + testHostKey + "\"" + target + "}\n"
		cfg, err := ParseConfig("sallyport.yaml", []byte(doc))
		require.NoError(t, err)
		rc, err := recorderConfig(cfg)
		require.NoError(t, err)
		return rc
	}
	rc := load("", "")
	assert.Equal(t, int64(0), rc.ExecCaptureLimit, "unset: the recorder's default, 16 MiB")
	assert.False(t, rc.ExecStdinOff)
	assert.Equal(t, int64(64<<10), load("exec_capture_limit: 64KiB", "").ExecCaptureLimit)
	assert.Equal(t, int64(-1), load("exec_capture_limit: 0", "").ExecCaptureLimit, "0 keeps counts and hashes only")
	assert.True(t, load("exec_capture_stdin: false", "").ExecStdinOff)
	assert.Equal(t, []string{"web-01"}, load("", ", exec_capture_stdin: false").ExecStdinOffTargets)
	_, err = ParseConfig("sallyport.yaml", []byte("recordings: {exec_capture_limit: 16 megs}\n"))
	assert.ErrorContains(t, err, "16 megs")
}

// TestMaxStatementBytesConfig: recordings.max_statement_bytes reaches the
// recorder as the cap the database proxies cut statements at.
func TestMaxStatementBytesConfig(t *testing.T) {
	load := func(rec string) *recorder.Recorder {
		t.Helper()
		cfg, err := ParseConfig("sallyport.yaml", []byte("data_dir: "+t.TempDir()+"\nrecordings: {"+rec+"}\n"))
		require.NoError(t, err)
		rc, err := recorderConfig(cfg)
		require.NoError(t, err)
		return &recorder.Recorder{Config: rc}
	}
	assert.Equal(t, 64<<10, load("").MaxStatementBytes(), "unset: 64 KiB")
	assert.Equal(t, 1<<20, load("max_statement_bytes: 1MiB").MaxStatementBytes())
	assert.Equal(t, 0, load("max_statement_bytes: 0").MaxStatementBytes(), "0: statements kept whole")
	_, err := ParseConfig("sallyport.yaml", []byte("recordings: {max_statement_bytes: lots}\n"))
	assert.ErrorContains(t, err, "lots")
}
