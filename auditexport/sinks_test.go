package auditexport

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

func TestFileSinkRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	s, err := NewSink(SinkConfig{Type: TypeFile, Path: path, MaxSize: 100, Keep: 2})
	require.NoError(t, err)
	defer s.Close()
	for i := range 10 {
		rec := Record{JSON: []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", 20)))} // 40 bytes a line
		require.NoError(t, s.Send(context.Background(), []Record{rec}))
	}
	lines := func(p string) []string {
		b, err := os.ReadFile(p)
		require.NoError(t, err, "read %s", p)
		return strings.Fields(string(b))
	}
	assert.Len(t, lines(path), 2, "the live file holds what fits in max_size")
	assert.Len(t, lines(path+".1"), 2)
	assert.Len(t, lines(path+".2"), 2)
	assert.NoFileExists(t, path+".3", "keep: 2 keeps two rotated files")
	assert.Contains(t, lines(path + ".2")[0], `"n":4`, "the oldest kept file holds the oldest kept lines")
	assert.Contains(t, lines(path)[1], `"n":9`, "the live file ends with the newest line")
}

// collector is an HTTP receiver that answers 500 for a while, or hangs,
// and keeps what it accepted.
type collector struct {
	mu      sync.Mutex
	fail    int           // answer 500 to this many requests
	hang    time.Duration // then hang this long once
	uids    []string
	headers http.Header
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	fail, hang := c.fail, c.hang
	if fail > 0 {
		c.fail--
	} else {
		c.hang = 0
	}
	c.mu.Unlock()
	if fail > 0 {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	if hang > 0 {
		time.Sleep(hang)
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, "not gzip", http.StatusBadRequest)
		return
	}
	sc := bufio.NewScanner(zr)
	var got []string
	for sc.Scan() {
		got = append(got, uidOf(sc.Bytes()))
	}
	io.Copy(io.Discard, zr)
	c.mu.Lock()
	if hang == 0 { // a hung request's batch times out on our side: the collector drops it too
		c.uids = append(c.uids, got...)
	}
	c.headers = r.Header.Clone()
	c.mu.Unlock()
}

func uidOf(line []byte) string {
	var md struct {
		Metadata struct{ UID string } `json:"metadata"`
	}
	if err := json.Unmarshal(line, &md); err != nil {
		return "malformed: " + string(line)
	}
	return md.Metadata.UID
}

func (c *collector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string{}, c.uids...)
}

func TestExporterOutageInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "registry.db")})
	require.NoError(t, err)
	defer store.Close()
	col := &collector{fail: 3, hang: 2 * time.Second}
	srv := httptest.NewServer(col)
	defer srv.Close()
	sink, err := NewSink(SinkConfig{Type: TypeHTTP, URL: srv.URL + "/hec", Headers: map[string]string{"Authorization": "Splunk s3cret"}})
	require.NoError(t, err)
	var want []string
	for i := range 450 { // three batches
		require.NoError(t, store.Update(ctx, func(tx iga.Tx) error {
			return tx.AppendAudit(ctx, iga.AuditEvent{Type: "apply", Actor: "alice", Identity: fmt.Sprintf("svc-%d", i)})
		}))
		want = append(want, fmt.Sprintf("sallyport-audit-%d", i+1))
	}
	x := &Exporter{Outbox: store, Destinations: []Destination{{Sink: sink}}, Metrics: NewMetrics(), SendTimeout: 500 * time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) { time.Sleep(min(d, 50*time.Millisecond)) }}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- x.Run(runCtx) }()
	require.Eventually(t, func() bool { return len(col.got()) >= len(want) }, 30*time.Second, 50*time.Millisecond,
		"every event arrives after 3 failures and a hang")
	stop()
	require.NoError(t, <-done)
	assert.Equal(t, want, col.got(), "every event once, in order")
	assert.Equal(t, "Splunk s3cret", col.headers.Get("Authorization"))
	assert.Equal(t, "gzip", col.headers.Get("Content-Encoding"))
	assert.GreaterOrEqual(t, counterValue(t, x.Metrics.failures.WithLabelValues(sink.Name())), 4.0,
		"three 500s and a timeout counted as failures")
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// TestHTTPSinkKeepsSecretsOutOfErrors: neither a header value nor a token
// in the URL's query appears in the error of a failed POST.
func TestHTTPSinkKeepsSecretsOutOfErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	for name, u := range map[string]string{
		"token in the query": "http://" + addr + "/ingest?token=url-secret",
		// The client masks the password, so the error's URL is not the configured one.
		"and a password": "http://user:pass-secret@" + addr + "/ingest?token=url-secret",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := SinkConfig{Type: TypeHTTP, URL: u, Headers: map[string]string{"Authorization": "Splunk header-secret"}}
			s, err := NewSink(cfg)
			require.NoError(t, err)
			err = s.Send(context.Background(), []Record{{JSON: []byte(`{}`)}})
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "url-secret")
			assert.NotContains(t, err.Error(), "pass-secret")
			assert.NotContains(t, err.Error(), "header-secret")
			assert.Contains(t, err.Error(), "http:"+addr+"#", "the error names the sink")
			assert.Contains(t, err.Error(), cfg.SinkName(), "the error names the sink")
		})
	}
}
