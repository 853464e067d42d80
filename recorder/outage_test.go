package recorder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestS3RecordingSurvivesOutage records through minio-go to a real S3
// endpoint that goes away in the middle of the session and comes back on
// the same address: every chunk arrives, verify passes, nothing is lost.
func TestS3RecordingSurvivesOutage(t *testing.T) {
	s3 := startFakeS3(t)
	h := newHarness(t, t.TempDir(), s3.store(t), testKey(t), func(r *Recorder) { r.ChunkSize = 4096 })
	s, err := h.rec.Open(ctxT(t), testMeta("s-outage"))
	require.NoError(t, err)
	write := func(from, to int) {
		for i := from; i < to; i++ {
			require.NoError(t, s.Output(0, fmt.Appendf(nil, "marker %05d\r\n", i)))
		}
	}
	write(0, 1000)
	h.waitUploaded(t)

	s3.stop()
	write(1000, 2000)
	require.NoError(t, s.Event(Event{Type: EventNote, Text: "written while the store was down"}))
	require.Eventually(t, func() bool { return metricValue(t, h.rec.Metrics, "sallyport_recorder_upload_failures_total") > 0 },
		5*time.Second, 10*time.Millisecond, "upload failures must show in the metric")
	assert.Equal(t, 0.0, metricValue(t, h.rec.Metrics, "sallyport_recorder_store_up"), "store_up while the endpoint is down")
	assert.Contains(t, h.logs.String(), "level=WARN msg=\"recording store unreachable")
	time.Sleep(300 * time.Millisecond) // several flushes and retries while down
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0)}))
	chunks, _ := filepath.Glob(filepath.Join(h.rec.Config.SpoolDir(), "s-outage", "*.chunk"))
	assert.NotEmpty(t, chunks, "chunks wait in the spool while the store is down")

	s3.start()
	h.waitUploaded(t)
	assert.Equal(t, 1.0, metricValue(t, h.rec.Metrics, "sallyport_recorder_store_up"))
	assert.Empty(t, spoolEntries(t, h), "spool is emptied once the store confirmed")
	rep := h.verify(t, "s-outage")
	assert.Equal(t, StatusIntact, rep.Status, "report: %s", rep)

	src, err := FindSession(ctxT(t), h.store, "s-outage")
	require.NoError(t, err)
	var text bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{}))
	for i := 0; i < 2000; i++ {
		if !bytes.Contains(text.Bytes(), fmt.Appendf(nil, "marker %05d\n", i)) {
			t.Fatalf("marker %05d missing from the replay: data was lost", i)
		}
	}
	assert.Contains(t, text.String(), "note: written while the store was down")
	assert.Equal(t, []State{StateLive, StateUploading, StateStored}, h.states.of("s-outage"))
}

func TestSessionFailsWhenSpoolCannotKeepUp(t *testing.T) {
	for _, failClosed := range []bool{true, false} {
		t.Run(fmt.Sprintf("fail_closed=%v", failClosed), func(t *testing.T) {
			stall := make(chan struct{})
			h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) {
				r.Config.FailClosed = failClosed
				r.ChunkSize, r.BufferSize = 1024, 64<<10
				r.beforeChunk = func() { <-stall }
				r.MaxWriteWait = 300 * time.Millisecond
			})
			s, err := h.rec.Open(ctxT(t), testMeta("s-slow"))
			require.NoError(t, err)
			piece := bytes.Repeat([]byte("x"), 1024)
			start := time.Now()
			var werr error
			for i := 0; i < 1000 && werr == nil && s.Err() == nil; i++ {
				werr = s.Output(0, piece)
			}
			assert.Less(t, time.Since(start), 3*h.rec.MaxWriteWait, "a stalled spool must not block the relay for long")
			assert.ErrorIs(t, s.Err(), ErrCannotKeepUp)
			if failClosed {
				assert.ErrorIs(t, werr, ErrRecordingFailed)
				assert.ErrorIs(t, s.Output(0, piece), ErrRecordingFailed, "writes keep failing: the proxy must end the session")
				select {
				case <-s.Failed():
				default:
					t.Fatal("Failed() is not closed")
				}
			} else {
				assert.NoError(t, werr, "fail_closed=false: the session carries on")
				assert.NoError(t, s.Output(0, piece))
			}
			close(stall)
			require.NoError(t, s.Close(ctxT(t), End{Reason: "recording failed"}))
			h.waitUploaded(t)
			assert.Contains(t, h.states.of("s-slow"), StateDegraded)
			rep := h.verify(t, "s-slow")
			assert.Equal(t, StatusIncomplete, rep.Status, "a degraded recording is authentic but incomplete: %s", rep)
			assert.Contains(t, rep.Reason, "cannot keep up")
			assert.Positive(t, rep.Manifest.Counts.DroppedBytes)
			src, err := FindSession(ctxT(t), h.store, "s-slow")
			require.NoError(t, err)
			var text bytes.Buffer
			require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{}))
			assert.Contains(t, text.String(), "end: recording failed", "the end event is kept even after the failure")
		})
	}
}

func TestSessionFailsWhenSpoolFails(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-diskfail"))
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(filepath.Join(h.rec.Config.SpoolDir(), "s-diskfail")))
	require.NoError(t, s.Output(0, []byte("hello\r\n")))
	select {
	case <-s.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("a failing spool did not fail the session within 5s")
	}
	assert.ErrorIs(t, s.Output(0, []byte("more")), ErrRecordingFailed)
	assert.Contains(t, s.Err().Error(), "chunk 1")
	assert.Error(t, s.Close(ctxT(t), End{}), "sealing into a removed spool must fail")
}

// TestSpoolSurvivesRestartWhileStoreIsDown seals a session while the store
// is down, stops the bastion, and starts a new one once the store is back:
// the spooled recording is uploaded intact.
func TestSpoolSurvivesRestartWhileStoreIsDown(t *testing.T) {
	s3 := startFakeS3(t)
	s3.stop()
	dataDir, key := t.TempDir(), testKey(t)
	first := newHarness(t, dataDir, s3.store(t), key, func(r *Recorder) { r.ChunkSize = 512 })
	s, err := first.rec.Open(ctxT(t), testMeta("s-restart"))
	require.NoError(t, err)
	for i := range 100 {
		require.NoError(t, s.Output(0, fmt.Appendf(nil, "kept %03d\r\n", i)))
	}
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0)}))
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	assert.Error(t, first.rec.Shutdown(short), "shutdown cannot drain while the store is down")
	assert.FileExists(t, filepath.Join(first.rec.Config.SpoolDir(), "s-restart", manifestObject))

	s3.start()
	second := newHarness(t, dataDir, s3.store(t), key, nil)
	second.waitUploaded(t)
	assert.Equal(t, []State{StateStored}, second.states.of("s-restart"))
	rep := second.verify(t, "s-restart")
	assert.Equal(t, StatusIntact, rep.Status, "report: %s", rep)
	assert.Equal(t, int64(100*len("kept 000\r\n")), rep.Manifest.Counts.OutputBytes)
}

// TestShutdownKeepsItsDeadlineWithABacklog: a store that comes back to a
// large backlog must not hold a stopping process past its deadline (the
// platform would SIGKILL it); what is not uploaded stays in the spool and
// the next start ships it.
func TestShutdownKeepsItsDeadlineWithABacklog(t *testing.T) {
	s3 := startFakeS3(t)
	s3.stop()
	dataDir, key := t.TempDir(), testKey(t)
	first := newHarness(t, dataDir, s3.store(t), key, nil)
	const sessions = 300
	for i := range sessions {
		s, err := first.rec.Open(ctxT(t), testMeta(fmt.Sprintf("s-backlog-%03d", i)))
		require.NoError(t, err)
		require.NoError(t, s.Output(0, fmt.Appendf(nil, "session %03d\r\n", i)))
		require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0)}))
	}
	s3.start()
	require.Eventually(t, func() bool { return len(spoolEntries(t, first)) < sessions }, 10*time.Second, 10*time.Millisecond,
		"the uploader starts on the backlog once the store is back")

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := first.rec.Shutdown(short)
	took := time.Since(start)
	left := len(spoolEntries(t, first))
	require.Positive(t, left, "the backlog was gone before Shutdown was called: make it bigger")
	assert.Error(t, err, "shutdown reports that uploads did not drain")
	assert.Less(t, took, time.Second, "got Shutdown after %s with a 100ms deadline", took)

	second := newHarness(t, dataDir, s3.store(t), key, nil)
	second.waitUploaded(t)
	for _, i := range []int{0, sessions / 2, sessions - 1} {
		rep := second.verify(t, fmt.Sprintf("s-backlog-%03d", i))
		assert.Equal(t, StatusIntact, rep.Status, "report: %s", rep)
	}
	assert.Empty(t, spoolEntries(t, second), "the next start shipped the rest of the backlog")
	t.Logf("Shutdown took %s and left %d of %d sessions in the spool", took, left, sessions)
}
