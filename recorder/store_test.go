package recorder

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testBucket = "recordings"

// fakeS3 is a real S3 endpoint (gofakes3) on loopback that can be stopped
// and started again on the same address, keeping its objects.
type fakeS3 struct {
	t       *testing.T
	addr    string
	handler http.Handler
	mu      sync.Mutex
	srv     *http.Server
}

func startFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket(testBucket))
	f := &fakeS3{t: t, handler: gofakes3.New(backend).Server()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeS3) serve(ln net.Listener) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.srv = &http.Server{Handler: f.handler}
	go f.srv.Serve(ln)
}

// stop closes the listener and every connection: the endpoint is gone.
func (f *fakeS3) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		f.srv.Close()
		f.srv = nil
	}
}

// start listens again on the same address.
func (f *fakeS3) start() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly after close
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(f.t, err, "restart fake S3 on %s", f.addr)
	f.serve(ln)
}

func (f *fakeS3) config() S3Config {
	return S3Config{Endpoint: f.addr, Bucket: testBucket, Prefix: "rec/", AccessKey: "test-access", SecretKey: "test-secret-key"}
}

func (f *fakeS3) store(t *testing.T) *S3Store {
	s, err := NewS3Store(f.config())
	require.NoError(t, err)
	return s
}

func TestStoresRoundTrip(t *testing.T) {
	stores := map[string]func(t *testing.T) Store{
		"file": func(t *testing.T) Store {
			s, err := NewFileStore(t.TempDir())
			require.NoError(t, err)
			return s
		},
		"s3": func(t *testing.T) Store { return startFakeS3(t).store(t) },
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := mk(t)
			body := bytes.Repeat([]byte("terminal\x00bytes\n"), 70000) // > 1 MiB, binary-safe
			require.NoError(t, s.Put(ctx, "2026/11/28/s1/000001.chunk", bytes.NewReader(body), int64(len(body))))
			require.NoError(t, s.Put(ctx, "2026/11/28/s1/session.json", bytes.NewReader([]byte("{}")), 2))
			require.NoError(t, s.Put(ctx, "2026/11/28/s2/session.json", bytes.NewReader([]byte("{}")), 2))

			rc, err := s.Get(ctx, "2026/11/28/s1/000001.chunk")
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			rc.Close()
			require.NoError(t, err)
			assert.True(t, bytes.Equal(body, got), "got %d bytes back, want the %d put (no framing added)", len(got), len(body))

			keys, err := s.List(ctx, "2026/11/28/s1/")
			require.NoError(t, err)
			assert.Equal(t, []string{"2026/11/28/s1/000001.chunk", "2026/11/28/s1/session.json"}, keys)

			_, err = s.Get(ctx, "2026/11/28/s1/missing")
			assert.ErrorIs(t, err, ErrNotFound)
		})
	}
}

func TestFileStoreLinksOrCopiesSpoolFiles(t *testing.T) {
	cases := map[string]func(t *testing.T) string{
		"same filesystem: hard link": func(t *testing.T) string { return t.TempDir() },
		"other filesystem: copy":     memTempDir,
	}
	for name, dataDir := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, dataDir(t), fileStore(t), testKey(t), nil)
			recordSample(t, h, "s-link")
			h.waitUploaded(t)
			rep := h.verify(t, "s-link")
			assert.Equal(t, StatusIntact, rep.Status, "report: %s", rep)
			assert.Empty(t, spoolEntries(t, h))
			assert.Positive(t, metricValue(t, h.rec.Metrics, "sallyport_recorder_uploaded_bytes_total"))
		})
	}
}
