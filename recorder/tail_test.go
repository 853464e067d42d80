package recorder

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/syncbuf"
)

// arrival is a Watched record and when the watcher got it.
type arrival struct {
	Watched
	at time.Time
}

// collect reads events until the channel closes, noting each arrival.
func collect(events <-chan Watched) <-chan []arrival {
	out := make(chan []arrival, 1)
	go func() {
		var got []arrival
		for ev := range events {
			got = append(got, arrival{ev, time.Now()})
		}
		out <- got
	}()
	return out
}

func wait(t *testing.T, c <-chan []arrival, within time.Duration) []arrival {
	t.Helper()
	select {
	case got := <-c:
		return got
	case <-time.After(within):
		t.Fatalf("the stream did not end within %s", within)
		return nil
	}
}

// inStore reports whether the recording's chunks in store hold stream.
func inStore(ctx context.Context, store Store, id string, started time.Time, stream string) bool {
	found := false
	_, err := Feed(ctx, SessionSource(store, id, started), FeedCursor{}, 0, func(it FeedItem) error {
		found = found || it.Stream == stream
		return nil
	})
	return err == nil && found
}

// shape is what a watcher shows of a record: everything but its time.
func shape(ev Watched) string {
	return fmt.Sprintf("%s ch%d %dx%d %s %q", ev.Kind, ev.Channel, ev.Cols, ev.Rows, ev.Stream, ev.Data)
}

// TestTailFollowsStore: a console on another replica follows a live SSH
// session through the store alone. Tail hands over the same records, in
// the same order, as the recorder's in-memory tap: the terminal, output,
// an exec command and its stdout and stderr over several flushes, a resize
// and the end; each within a flush interval and a poll (plus a margin for
// the upload) of when the session wrote it. Keystrokes never reach it. A
// watcher that joins later is shown the terminal's size and the exec
// command first, not the output before it joined.
func TestTailFollowsStore(t *testing.T) {
	for _, tc := range []struct {
		name        string
		store       func(t *testing.T) Store
		flush, poll time.Duration
	}{
		{"file", func(t *testing.T) Store {
			s, err := NewFileStore(t.TempDir())
			require.NoError(t, err)
			return s
		}, 300 * time.Millisecond, 100 * time.Millisecond},
		{"s3", func(t *testing.T) Store { // the HA shape, at the default intervals
			s3 := sandbox.S3T(t)
			s, err := NewS3Store(S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, Region: s3.Region, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey})
			require.NoError(t, err)
			return s
		}, defaultFlushInterval, DefaultTailPoll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testTail(t, tc.store(t), tc.flush, tc.poll)
		})
	}
}

func testTail(t *testing.T, store Store, flush, poll time.Duration) {
	ctx := context.Background()
	h := newHarness(t, t.TempDir(), store, testKey(t), func(r *Recorder) {
		r.Config.FlushInterval, r.Config.RecordInput = flush, true
	})
	started := time.Now().UTC()
	s, err := h.rec.Open(ctx, SessionMeta{ID: "s-tail", Identity: "svc-backup", Target: "web-01", Protocol: "ssh", StartedAt: started})
	require.NoError(t, err)
	mem, stopMem, ok := h.rec.Watch("s-tail")
	require.True(t, ok)
	defer stopMem()
	tail := StoreTail{Store: store, FlushInterval: flush, Options: TailOptions{Poll: poll}}
	events, stop := tail.WatchRecording(ctx, "s-tail", started)
	defer stop()
	memGot, tailGot := collect(mem), collect(events)

	var written []time.Time // when each record the watchers get was written
	step := func(err error) {
		t.Helper()
		require.NoError(t, err)
		written = append(written, time.Now())
		// Terminal records' times have microseconds (asciicast): writes
		// to two streams closer than that may be told apart out of order.
		time.Sleep(time.Millisecond)
	}
	one := 1
	step(s.OpenTerminal(0, 100, 30, "xterm"))
	step(s.Output(0, []byte("$ tar czf - /etc | ssh backup\r\n")))
	require.NoError(t, s.Input(0, []byte("hunter2-typed\r"))) // never watched
	time.Sleep(flush)
	step(s.Event(Event{Type: EventExec, Channel: &one, Command: "tar czf - /etc"}))
	step(s.Data(1, StreamStdout, []byte("etc/passwd\netc/hosts\n")))
	require.Eventually(t, func() bool { return inStore(ctx, store, "s-tail", started, "exec-1.stdout") }, 5*flush, 20*time.Millisecond)
	late, stopLate := tail.WatchRecording(ctx, "s-tail", started)
	defer stopLate()
	lateGot := collect(late)
	time.Sleep(flush + poll)
	step(s.Data(1, StreamStderr, []byte("tar: removing leading '/'\n")))
	step(s.Output(0, []byte("backup done\r\n")))
	time.Sleep(flush)
	step(s.Resize(0, 120, 40))
	time.Sleep(flush / 2)
	status := 0
	step(s.Close(ctx, End{ExitStatus: &status}))

	want := wait(t, memGot, 5*time.Second)
	got := wait(t, tailGot, 5*flush+5*time.Second)
	require.Len(t, want, len(written), "the in-memory tap gets one record per write")
	require.Len(t, got, len(want), "got %v", got)
	bound := flush + poll + 1500*time.Millisecond // the margin: upload, and 2 cores shared with other test packages
	var worst time.Duration
	for i := range want {
		assert.Equal(t, shape(want[i].Watched), shape(got[i].Watched), "record %d", i)
		lag := got[i].at.Sub(written[i])
		worst = max(worst, lag)
		assert.LessOrEqual(t, lag, bound, "record %d (%s) arrived %s after it was written", i, got[i].Kind, lag)
		assert.NotContains(t, string(got[i].Data), "hunter2", "keystrokes are never watched")
	}
	t.Logf("flush %s, poll %s: records reached the store's watcher %s after they were written at worst (bound %s)", flush, poll, worst, bound)
	assert.Equal(t, WatchEnd, got[len(got)-1].Kind)

	joined := wait(t, lateGot, 5*time.Second)
	require.GreaterOrEqual(t, len(joined), 3)
	assert.Equal(t, "terminal ch0 100x30  \"\"", shape(joined[0].Watched), "a late watcher is told the terminal's size first")
	assert.Contains(t, string(joined[1].Data), `"command":"tar czf - /etc"`, "and the exec command so far")
	for _, ev := range joined {
		assert.False(t, bytes.Contains(ev.Data, []byte("etc/passwd")), "output from before it joined: %s", shape(ev.Watched))
	}
	assert.Equal(t, shape(got[len(got)-1].Watched), shape(joined[len(joined)-1].Watched), "it ends with the end event")
}

// TestTailStopsAtDamage: a chunk that was changed in the store breaks the
// hash chain; Tail says so (WatchFailed, naming the chunk) instead of
// showing what it holds, and ends without an end record.
func TestTailStopsAtDamage(t *testing.T) {
	ctx := context.Background()
	store, err := NewFileStore(t.TempDir())
	require.NoError(t, err)
	h := newHarness(t, t.TempDir(), store, testKey(t), nil)
	s, err := h.rec.Open(ctx, SessionMeta{ID: "s-damaged", Identity: "svc-backup", Target: "web-01", Protocol: "ssh"})
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 80, 24, ""))
	require.NoError(t, s.Output(0, []byte("first\r\n")))
	require.Eventually(t, func() bool { return inStore(ctx, store, "s-damaged", s.Meta().StartedAt, "pty-0.cast") }, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, s.Output(0, []byte("second\r\n")))
	require.NoError(t, s.Close(ctx, End{}))
	require.NoError(t, h.rec.WaitIdle(ctx))
	key := SessionDir("s-damaged", s.Meta().StartedAt) + chunkName(1)
	rc, err := store.Get(ctx, key)
	require.NoError(t, err)
	body, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	body = bytes.Replace(body, []byte(`"seq":1`), []byte(`"seq":1 `), 1) // same chunk, another hash
	require.NoError(t, store.Put(ctx, key, bytes.NewReader(body), int64(len(body))))

	events, stop := Tail(ctx, SessionSource(store, "s-damaged", s.Meta().StartedAt), TailOptions{Poll: 50 * time.Millisecond})
	defer stop()
	got := wait(t, collect(events), 5*time.Second)
	require.NotEmpty(t, got)
	last := got[len(got)-1]
	assert.Equal(t, WatchFailed, last.Kind, "got %v", got)
	assert.Contains(t, string(last.Data), "chunk 2: breaks the hash chain")
	for _, ev := range got {
		assert.NotEqual(t, WatchEnd, ev.Kind)
	}
}

// TestTailRidesOutStoreOutage: while the S3 endpoint is down, Tail keeps
// polling (and says so in the log once); when it is back, the records
// written meanwhile arrive, in order, and the end.
func TestTailRidesOutStoreOutage(t *testing.T) {
	ctx := context.Background()
	s3 := sandbox.S3T(t)
	store, err := NewS3Store(S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, Region: s3.Region, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey})
	require.NoError(t, err)
	h := newHarness(t, t.TempDir(), store, testKey(t), nil)
	s, err := h.rec.Open(ctx, SessionMeta{ID: "s-outage", Identity: "svc-backup", Target: "web-01", Protocol: "ssh"})
	require.NoError(t, err)
	logs := &syncbuf.Buffer{}
	events, stop := Tail(ctx, SessionSource(store, "s-outage", s.Meta().StartedAt),
		TailOptions{Poll: 50 * time.Millisecond, MaxPoll: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer stop()
	got := collect(events)
	require.NoError(t, s.OpenTerminal(0, 80, 24, ""))
	require.NoError(t, s.Output(0, []byte("before the outage\r\n")))
	require.Eventually(t, func() bool { return inStore(ctx, store, "s-outage", s.Meta().StartedAt, "pty-0.cast") }, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, s3.Stop())
	require.NoError(t, s.Output(0, []byte("during the outage\r\n")))
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, s3.Restart(ctx))
	require.NoError(t, s.Close(ctx, End{}))
	var text []string
	for _, ev := range wait(t, got, 10*time.Second) {
		if ev.Kind == WatchOutput || ev.Kind == WatchEnd {
			text = append(text, ev.Kind+" "+string(bytes.TrimSpace(ev.Data)))
		}
	}
	require.Len(t, text, 3, "got %q", text)
	assert.Equal(t, []string{"output before the outage", "output during the outage"}, text[:2])
	assert.Contains(t, text[2], `"type":"end"`)
	assert.Contains(t, logs.String(), "reading the recording from the store failed; retrying")
}

// FuzzTailChunk: whatever a chunk's payload holds, Tail's decoding returns
// records of the kinds a watcher knows, or an error; it never panics, and
// a keystroke line never becomes a record.
func FuzzTailChunk(f *testing.F) {
	f.Add(0, []byte("{\"version\":2,\"width\":80,\"height\":24}\n[0.5, \"o\", \"hi\\r\\n\"]\n[0.7, \"r\", \"100x30\"]\n"))
	f.Add(0, []byte("[0.1, \"i\", \"hunter2\"]\n[1e308, \"r\", \"0x-1\"]\n[\"x\"]\n"))
	f.Add(1, []byte(`{"time":"2026-12-07T10:00:00Z","type":"exec","channel":1,"command":"ls"}`+"\n"+`{"time":"2026-12-07T10:00:01Z","type":"end"}`+"\n"))
	f.Add(1, []byte("{\"time\":1}\nnot json\n"))
	f.Add(2, []byte("etc/passwd\n\xff\xfe"))
	streams := []string{"pty-0.cast", eventsStream, "exec-1.stdout", "pty-x.cast"}
	f.Fuzz(func(t *testing.T, which int, payload []byte) {
		stream := streams[uint(which)%uint(len(streams))]
		tl := &tailer{live: true}
		h := ChunkHeader{Stream: stream, First: time.Unix(1e9, 0)}
		if err := tl.chunk(h, bufio.NewReader(bytes.NewReader(payload))); err != nil {
			return
		}
		for _, ev := range tl.batch {
			switch ev.Kind {
			case WatchTerminal, WatchResize, WatchOutput, WatchEvent, WatchData:
			default:
				t.Fatalf("record of kind %q", ev.Kind)
			}
			if ev.Kind == WatchResize && (ev.Cols <= 0 || ev.Rows <= 0) {
				t.Fatalf("resize to %dx%d", ev.Cols, ev.Rows)
			}
			if ev.Kind == WatchOutput && bytes.Contains(payload, []byte(`"i"`)) && !bytes.Contains(payload, []byte(`"o"`)) {
				t.Fatalf("keystrokes became output: %q", ev.Data)
			}
		}
	})
}

// TestTailBigExecStream: an exec channel's stdout of 12 MiB (within the capture limit), more than one
// poll holds, reaches the watcher whole and in order.
func TestTailBigExecStream(t *testing.T) {
	ctx := context.Background()
	store, err := NewFileStore(t.TempDir())
	require.NoError(t, err)
	h := newHarness(t, t.TempDir(), store, testKey(t), nil)
	s, err := h.rec.Open(ctx, SessionMeta{ID: "s-big", Identity: "svc-backup", Target: "web-01", Protocol: "ssh"})
	require.NoError(t, err)
	events, stop := Tail(ctx, SessionSource(store, "s-big", s.Meta().StartedAt), TailOptions{Poll: 50 * time.Millisecond})
	defer stop()
	got := collect(events)
	time.Sleep(100 * time.Millisecond) // Tail's first poll: the stream comes after it
	var want bytes.Buffer
	for i := 0; want.Len() < 12<<20; i++ {
		line := []byte(fmt.Sprintf("line %08d of a large tar listing\n", i))
		want.Write(line)
		if i%1000 == 999 || want.Len() >= 12<<20 {
			require.NoError(t, s.Data(0, StreamStdout, want.Bytes()[want.Len()-len(line)*(i%1000+1):]))
		}
	}
	require.NoError(t, s.Close(ctx, End{}))
	var stdout bytes.Buffer
	for _, ev := range wait(t, got, 30*time.Second) {
		if ev.Kind == WatchData {
			stdout.Write(ev.Data)
		}
	}
	assert.Equal(t, want.Len(), stdout.Len())
	if !bytes.Equal(want.Bytes(), stdout.Bytes()) {
		i := 0
		for i < min(want.Len(), stdout.Len()) && want.Bytes()[i] == stdout.Bytes()[i] {
			i++
		}
		t.Fatalf("the stream differs from byte %d: got %.80q, want %.80q", i, stdout.Bytes()[i:], want.Bytes()[i:])
	}
}
