package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/recorder"
)

// TestLegalHoldOfLiveSession: recording hold during a live session on S3
// with Object Lock sets the S3 legal hold of the objects stored so far,
// and the objects stored after it (the later chunks and the manifest)
// reach S3 with the legal hold in their upload: at the end every object
// of the recording is held, and verify says so, without running hold
// again.
func TestLegalHoldOfLiveSession(t *testing.T) {
	e, lr := s3LockEnv(t)
	rec, s, id := liveRecording(t, e, nil)
	ctx := context.Background()
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
	require.NoError(t, rec.WaitIdle(ctxTimeout(t)))

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

// liveRecording starts the recorder serve builds from e's config, wired
// to the registry's holds as serve wires it (through wrap, when set, to
// watch the answers), and opens a live session in it.
func liveRecording(t *testing.T, e *env, wrap func(recorder.LegalHolds) recorder.LegalHolds) (*recorder.Recorder, *recorder.Session, string) {
	t.Helper()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	rec, err := newRecorder(cfg, testLogger(t), newMetrics())
	require.NoError(t, err)
	ctx := context.Background()
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { ap.Close() })
	rec.OnState = indexSessions(ap.store, testLogger(t))
	if wrap == nil {
		useLegalHolds(rec, ap.store) // as serve wires it
	} else {
		recorder.UseLegalHolds(rec.Store, wrap(retentionIndex{ap.store}))
	}
	require.NoError(t, rec.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		rec.Shutdown(sctx)
	})
	meta := recorderMetaForTest(sessionid.New(time.Now()))
	s, err := rec.Open(ctx, meta)
	require.NoError(t, err)
	return rec, s, meta.ID
}

// holdOnFirstAsk runs recording hold right after the first question about
// the session: the hold lands while that object is on its way to S3.
type holdOnFirstAsk struct {
	recorder.LegalHolds
	e    *env
	once sync.Once
	out  string
	code int
}

func (h *holdOnFirstAsk) Held(ctx context.Context, id string) (bool, error) {
	held, err := h.LegalHolds.Held(ctx, id)
	h.once.Do(func() {
		h.out, _, h.code = h.e.run("", "recording", "hold", id, "--reason", "hold landing mid-upload")
	})
	return held, err
}

// TestLegalHoldLandingMidUpload: recording hold written after an upload
// asked the registry (not held yet) and before the object was stored:
// hold does not list that object, and the upload carries no legal hold;
// the upload asks again once stored and sets the object's legal hold.
func TestLegalHoldLandingMidUpload(t *testing.T) {
	e, lr := s3LockEnv(t)
	h := &holdOnFirstAsk{e: e}
	rec, s, id := liveRecording(t, e, func(l recorder.LegalHolds) recorder.LegalHolds { h.LegalHolds = l; return h })
	require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
	require.NoError(t, s.Output(0, []byte("$ held while its first object was uploaded\r\n")))
	zero := 0
	require.NoError(t, s.Close(context.Background(), endForTest(&zero)))
	require.NoError(t, rec.WaitIdle(ctxTimeout(t)))
	require.Equal(t, 0, h.code, "recording hold: %s", h.out)
	assert.Contains(t, h.out, "S3 legal hold on for 0 objects", "the hold came before any object was stored")

	all := lr.uploads(id)
	require.GreaterOrEqual(t, len(all), 3)
	unheld := 0
	for _, hd := range all {
		if hd.Get("X-Amz-Object-Lock-Legal-Hold") == "" {
			unheld++
		}
	}
	assert.Equal(t, 1, unheld, "the object that asked before the hold was uploaded without the legal hold")
	holds := lr.holdsOf(id)
	assert.Len(t, holds, len(all), "yet every object is held: %v", holds)
	for key, st := range holds {
		assert.Equal(t, "ON", st, key)
	}
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
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
