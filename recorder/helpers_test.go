package recorder

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/stretchr/testify/require"
)

// testKey is a fresh recording key per test.
func testKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

// stateLog collects OnState calls.
type stateLog struct {
	mu     sync.Mutex
	states map[string][]State
}

func (l *stateLog) record(c StateChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.states == nil {
		l.states = map[string][]State{}
	}
	l.states[c.Meta.ID] = append(l.states[c.Meta.ID], c.State)
}

func (l *stateLog) of(id string) []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]State(nil), l.states[id]...)
}

// harness is a started Recorder over a store with its observations.
type harness struct {
	rec    *Recorder
	store  Store
	states *stateLog
	logs   *syncbuf.Buffer
	key    ed25519.PrivateKey
}

func newHarness(t *testing.T, dataDir string, store Store, key ed25519.PrivateKey, tune func(*Recorder)) *harness {
	t.Helper()
	h := &harness{store: store, states: &stateLog{}, logs: &syncbuf.Buffer{}, key: key}
	h.rec = &Recorder{
		Config:     Config{DataDir: dataDir, FlushInterval: 50 * time.Millisecond, FailClosed: true},
		Store:      store,
		Key:        key,
		Logger:     slog.New(slog.NewTextHandler(h.logs, nil)),
		OnState:    h.states.record,
		Metrics:    NewMetrics(),
		MaxBackoff: 200 * time.Millisecond,
	}
	if tune != nil {
		tune(h.rec)
	}
	require.NoError(t, h.rec.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.rec.Shutdown(ctx)
	})
	return h
}

func fileStore(t *testing.T) *FileStore {
	t.Helper()
	s, err := NewFileStore(filepath.Join(t.TempDir(), "store"))
	require.NoError(t, err)
	return s
}

func testMeta(id string) SessionMeta {
	return SessionMeta{ID: id, Identity: "svc-backup", Owner: "alice@example.com", Target: "web-01",
		Protocol: "ssh", Login: "backup", Source: "127.0.0.1:50000", CertSerial: "42",
		Decision: map[string]any{"allow": true}, StartedAt: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitUploaded waits for the uploader to ship everything so far.
func (h *harness) waitUploaded(t *testing.T) {
	t.Helper()
	require.NoError(t, h.rec.WaitIdle(ctxT(t)))
}

func (h *harness) verify(t *testing.T, id string) Report {
	t.Helper()
	src, err := FindSession(ctxT(t), h.store, id)
	require.NoError(t, err)
	rep, err := Verify(ctxT(t), src, h.key.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	return rep
}

func intp(i int) *int { return &i }

func spoolEntries(t *testing.T, h *harness) []string {
	ents, err := os.ReadDir(h.rec.Config.SpoolDir())
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// metricValue gathers the recorder's collectors as a registry would and
// returns the named gauge or counter.
func metricValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			metric := mf.GetMetric()[0]
			if c := metric.GetCounter(); c != nil {
				return c.GetValue()
			}
			return metric.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not exposed", name)
	return 0
}
