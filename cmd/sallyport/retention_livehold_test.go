package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/sessionid"
)

// TestLegalHoldOfLiveSession: recording hold during a live session on S3
// with Object Lock sets the S3 legal hold of the objects stored so far,
// and the objects stored after it (the later chunks and the manifest)
// reach S3 with the legal hold in their upload: at the end every object
// of the recording is held, and verify says so, without running hold
// again.
func TestLegalHoldOfLiveSession(t *testing.T) {
	e, lr := s3LockEnv(t)
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	rec, err := newRecorder(cfg, testLogger(t), newMetrics())
	require.NoError(t, err)
	ctx := context.Background()
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	defer ap.Close()
	rec.OnState = indexSessions(ap.store, testLogger(t))
	useLegalHolds(rec, ap.store) // as serve wires it
	require.NoError(t, rec.Start(ctx))
	meta := recorderMetaForTest(sessionid.New(time.Now()))
	id := meta.ID
	s, err := rec.Open(ctx, meta)
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
	require.NoError(t, s.Output(0, []byte("$ before the hold\r\n")))
	require.Eventually(t, func() bool { return chunksOf(lr.uploads(id)) > 0 }, 10*time.Second, 50*time.Millisecond,
		"a first chunk of the live session reaches the bucket")

	out := e.ok("recording", "hold", id, "--reason", "incident 4411, session under investigation")
	before := lr.uploads(id)
	assert.Contains(t, out, fmt.Sprintf("S3 legal hold on for %d objects", len(before)))
	assert.Contains(t, out, "its objects still to come get the S3 legal hold as they are stored")
	assert.NotContains(t, out, "run hold again")

	require.NoError(t, s.Output(0, []byte("$ after the hold\r\n")))
	require.Eventually(t, func() bool { return chunksOf(lr.uploads(id)) > chunksOf(before) }, 10*time.Second, 50*time.Millisecond,
		"a chunk written after the hold reaches the bucket while the session is live")
	zero := 0
	require.NoError(t, s.Close(ctx, endForTest(&zero)))
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, rec.Shutdown(sctx))

	all := lr.uploads(id)
	var later []string
	for key, h := range all {
		if _, ok := before[key]; !ok {
			later = append(later, key)
			assert.Equal(t, "ON", h.Get("X-Amz-Object-Lock-Legal-Hold"), "uploaded after the hold: %s", key)
			assert.Equal(t, "COMPLIANCE", h.Get("X-Amz-Object-Lock-Mode"), key)
		}
	}
	assert.Contains(t, strings.Join(later, " "), "/manifest.json", "the manifest is stored after the hold")
	holds := lr.holdsOf(id)
	assert.Len(t, holds, len(all), "every object is held: %v", holds)
	for key, st := range holds {
		assert.Equal(t, "ON", st, key)
	}
	out = e.ok("verify", id)
	assert.Contains(t, out, fmt.Sprintf("legal hold on %d of %d objects", len(all), len(all)))

	e.ok("recording", "release", id, "--reason", "investigation closed")
	for key, st := range lr.holdsOf(id) {
		assert.Equal(t, "OFF", st, "release clears the hold of every object, the later ones too: %s", key)
	}
}

func chunksOf(ups map[string]http.Header) int {
	n := 0
	for key := range ups {
		if strings.HasSuffix(key, ".chunk") {
			n++
		}
	}
	return n
}
