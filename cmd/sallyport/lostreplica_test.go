package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/recorder"
)

// verifyOut is what `verify --json` prints that the lost-replica test reads.
type verifyOut struct {
	Status       string `json:"status"`
	Reason       string `json:"reason"`
	Signer       string `json:"signer"`
	Chunks       int    `json:"chunks"`
	Continuation *struct {
		FirstSeq int    `json:"first_seq"`
		LastSeq  int    `json:"last_seq"`
		Reason   string `json:"reason"`
	} `json:"continuation"`
}

func (r *replica) verifyJSON(t *testing.T, id string) (verifyOut, int) {
	t.Helper()
	out, errOut, code := r.run("", "verify", "--json", id)
	var v verifyOut
	require.NoError(t, json.Unmarshal([]byte(out), &v), "verify --json %s: %s %s", id, out, errOut)
	return v, code
}

// TestLostReplicaSealed: replica A is killed with -9 while it runs a live
// SSH session and a live psql session, with the last of the SSH session's
// output still in its spool (the store was down for a moment). Within the
// lease and its grace B seals both recordings from what reached the store:
// verify says incomplete, signed, naming A and when its lease ended; they
// replay; cutting the last sealed chunk makes verify fail. When A comes
// back on its data_dir it stores the rest of the SSH session as a signed
// continuation, which verify and replay join.
func TestLostReplicaSealed(t *testing.T) {
	c := newReplicaCluster(t)
	a, b := c.start(t), c.start(t)
	a.ok("iga", "apply", "-f", c.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var sshOut, psqlOut syncbuf.Buffer
	sshCmd := a.ssh(ctx, "echo lost-ssh-first-$((40+4)); sleep 3; echo lost-ssh-second-$((40+5)); sleep 60")
	sshCmd.Stdout, sshCmd.Stderr = &sshOut, &sshOut
	require.NoError(t, sshCmd.Start())
	t.Cleanup(func() { _ = sshCmd.Process.Kill() })
	psql := a.psqlThrough(ctx, "-c", "SELECT 'lost-psql-marker-' || (40+6)", "-c", "SELECT pg_sleep(60)")
	psql.Stdout, psql.Stderr = &psqlOut, &psqlOut
	require.NoError(t, psql.Start())
	t.Cleanup(func() { _ = psql.Process.Kill() })
	byProto := map[string]string{}
	require.Eventually(t, func() bool {
		for _, s := range b.sessions("--live") {
			byProto[s.Protocol] = s.ID
		}
		return len(byProto) == 2 && strings.Contains(sshOut.String(), "lost-ssh-first-44") &&
			strings.Contains(psqlOut.String(), "lost-psql-marker-46")
	}, 20*time.Second, 100*time.Millisecond, "both sessions through A live: ssh %q psql %q\nA: %s", &sshOut, &psqlOut, a.logs)
	sshID, pgID := byProto["ssh"], byProto["postgres"]
	time.Sleep(time.Second) // flush_interval is 200ms: the first output is in the store

	// The store goes down: what the SSH session prints now stays in A's spool.
	require.NoError(t, c.s3.Stop())
	require.Eventually(t, func() bool { return strings.Contains(sshOut.String(), "lost-ssh-second-45") },
		10*time.Second, 50*time.Millisecond, "the second ssh marker never came: %s", &sshOut)
	time.Sleep(600 * time.Millisecond) // flushed to A's spool, not uploaded
	require.NoError(t, a.cmd.Process.Kill())
	_ = a.cmd.Wait()
	killed := time.Now()
	require.NoError(t, c.s3.Restart(ctx))

	var ss []sessionOut
	require.Eventually(t, func() bool {
		ss = b.sessions()
		sealed := 0
		for _, s := range ss {
			if s.State == "incomplete" && strings.Contains(s.Reason, "it was lost; sealed from the recording store") {
				sealed++
			}
		}
		return sealed == 2
	}, 2*time.Second+2*time.Second+time.Minute, 200*time.Millisecond, "B never sealed A's recordings: %+v\nB: %s", &ss, b.logs)
	t.Logf("B sealed both of A's recordings %s after A's SIGKILL (lease 2s, grace 2s, rounds every 1s)", time.Since(killed).Round(100*time.Millisecond))
	aID := ss[0].Replica
	for _, s := range ss {
		assert.Contains(t, s.Reason, "replica "+aID+" stopped renewing its lease at ", "sessions list names the lost replica")
	}
	assert.Contains(t, b.ok("sessions", "list"), "  incomplete: replica "+aID+" stopped renewing its lease at ",
		"the text listing says why under the session")

	pub := recorder.Fingerprint(mustPub(t, b))
	for _, id := range []string{sshID, pgID} {
		v, code := b.verifyJSON(t, id)
		assert.Equal(t, "incomplete", v.Status, "session %s verifies as incomplete", id)
		assert.Equal(t, 1, code, "verify exits 1 for an incomplete recording")
		assert.Equal(t, pub, v.Signer, "signed with the shared recording key")
		assert.Contains(t, v.Reason, "replica "+aID+" stopped renewing its lease at ")
		assert.Contains(t, v.Reason, "did not come back within 2s")
	}
	sshReplay := b.ok("replay", sshID, "--format", "text")
	assert.Contains(t, sshReplay, "lost-ssh-first-44", "the sealed SSH recording replays")
	assert.NotContains(t, sshReplay, "lost-ssh-second-45", "what stayed in A's spool is not in the store yet")
	assert.Contains(t, b.ok("replay", pgID, "--format", "text"), "lost-psql-marker-", "the sealed psql recording replays")

	cutLastChunk(t, c, pgID)
	v, code := b.verifyJSON(t, pgID)
	assert.Equal(t, "tampered", v.Status, "cutting the last sealed chunk is caught")
	assert.Equal(t, 1, code)

	a.restart(t)
	require.Eventually(t, func() bool {
		for _, s := range b.sessions() {
			if s.ID == sshID && strings.Contains(s.Reason, "the lost replica came back and stored chunks") {
				return true
			}
		}
		return false
	}, 20*time.Second, 200*time.Millisecond, "A's restart never stored the continuation: %+v\nA: %s", b.sessions(), a.logs)
	v, _ = b.verifyJSON(t, sshID)
	assert.Equal(t, "incomplete", v.Status)
	require.NotNil(t, v.Continuation, "verify reports the continuation")
	assert.Equal(t, v.Continuation.LastSeq, v.Chunks, "verify counts the continuation's chunks")
	assert.Contains(t, v.Continuation.Reason, "continues the recording sealed in this replica's absence")
	sshReplay = b.ok("replay", sshID, "--format", "text")
	assert.Contains(t, sshReplay, "lost-ssh-first-44")
	assert.Contains(t, sshReplay, "lost-ssh-second-45", "replay joins the continuation")
	assert.Contains(t, sshReplay, fmt.Sprintf("# chunks %d-%d are a continuation", v.Continuation.FirstSeq, v.Continuation.LastSeq))
}

// mustPub is the recording public key as `ca export --type recording` prints it.
func mustPub(t *testing.T, r *replica) []byte {
	t.Helper()
	pub, err := recorder.ParsePublicKey([]byte(r.ok("ca", "export", "--type", "recording")))
	require.NoError(t, err)
	return pub
}

// cutLastChunk cuts five bytes off the last chunk of session id in the
// test's S3 store, as someone who can write to the bucket might.
func cutLastChunk(t *testing.T, c *replicaCluster, id string) {
	t.Helper()
	store, err := recorder.NewS3Store(recorder.S3Config{Endpoint: c.s3.Endpoint, Bucket: c.s3.Bucket, Region: c.s3.Region,
		AccessKey: c.s3.AccessKey, SecretKey: c.s3.SecretKey})
	require.NoError(t, err)
	keys, err := store.List(t.Context(), "")
	require.NoError(t, err)
	last := ""
	for _, k := range keys {
		if strings.Contains(k, "/"+id+"/") && strings.HasSuffix(k, ".chunk") && !strings.Contains(k, "/continuation/") {
			last = k // keys are sorted, chunk numbers fixed-width
		}
	}
	require.NotEmpty(t, last, "no chunk of %s in %v", id, keys)
	rc, err := store.Get(t.Context(), last)
	require.NoError(t, err)
	data, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	cut := data[:len(data)-5]
	require.NoError(t, store.Put(t.Context(), last, bytes.NewReader(cut), int64(len(cut))))
}
