package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/auditexport"
	"github.com/sallyport/sallyport/auditexport/ocsftest"
	"github.com/sallyport/sallyport/deploy/sandbox"
)

// received is one exported OCSF event as a receiver got it.
type received struct {
	UID     string
	EventID int64
	Class   int
	Type    string
	JSON    []byte
}

// receiverLog keeps what a receiver accepted, in arrival order.
type receiverLog struct {
	mu   sync.Mutex
	evs  []received
	bad  []string // lines that did not parse or validate
	hdrs http.Header
}

func (l *receiverLog) add(line []byte) {
	var e struct {
		ClassUID int `json:"class_uid"`
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
		Unmapped struct {
			EventID   int64  `json:"event_id"`
			EventType string `json:"event_type"`
		} `json:"unmapped"`
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := json.Unmarshal(line, &e); err != nil {
		l.bad = append(l.bad, fmt.Sprintf("%v: %q", err, line))
		return
	}
	if err := ocsftest.Validate(line); err != nil {
		l.bad = append(l.bad, fmt.Sprintf("%v: %s", err, line))
	}
	l.evs = append(l.evs, received{UID: e.Metadata.UID, EventID: e.Unmapped.EventID, Class: e.ClassUID,
		Type: e.Unmapped.EventType, JSON: append([]byte{}, line...)})
}

func (l *receiverLog) snapshot() ([]received, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs), slices.Clone(l.bad)
}

// syslogReceiver is a TLS syslog server (RFC 5425 framing: octet counting).
type syslogReceiver struct {
	receiverLog
	addr  string
	tls   *tls.Config
	ln    net.Listener
	conns sync.WaitGroup
	open  []net.Conn
}

var rfc5424RE = regexp.MustCompile(`^<(\d{1,3})>1 (\S+) (\S+) sallyport (\d+) (\S+) - (\{.*\})$`)

func (s *syslogReceiver) start(t *testing.T) {
	t.Helper()
	ln, err := tls.Listen("tcp", s.addr, s.tls)
	require.NoError(t, err, "listen for syslog on %s", s.addr)
	s.ln, s.addr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			s.conns.Add(1)
			go s.read(c)
		}
	}()
}

// read takes octet-counted RFC 5424 messages off c.
func (s *syslogReceiver) read(c net.Conn) {
	defer s.conns.Done()
	br := bufio.NewReader(c)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil {
			s.mu.Lock()
			s.bad = append(s.bad, "bad frame length "+n)
			s.mu.Unlock()
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		m := rfc5424RE.FindSubmatch(msg)
		if m == nil {
			s.mu.Lock()
			s.bad = append(s.bad, "not RFC 5424: "+string(msg))
			s.mu.Unlock()
			continue
		}
		s.add(m[6])
	}
}

// stop closes the listener and every connection, as a receiver that goes away.
func (s *syslogReceiver) stop() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.open {
		c.Close()
	}
	s.open = nil
	s.mu.Unlock()
	s.conns.Wait()
}

// httpReceiver is an HTTP collector of gzip-compressed JSON lines.
type httpReceiver struct {
	receiverLog
	addr string
	srv  *http.Server
}

func (h *httpReceiver) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", h.addr)
	require.NoError(t, err, "listen for http on %s", h.addr)
	h.addr = ln.Addr().String()
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve)}
	go h.srv.Serve(ln)
}

func (h *httpReceiver) serve(w http.ResponseWriter, r *http.Request) {
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, "want gzip", http.StatusBadRequest)
		return
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		h.add(sc.Bytes())
	}
	h.mu.Lock()
	h.hdrs = r.Header.Clone()
	h.mu.Unlock()
}

func (h *httpReceiver) stop() { h.srv.Close() }

// auditIDs are the ids of every audit event in the registry, oldest first.
func auditIDs(t *testing.T, r *replica) []int64 {
	t.Helper()
	var evs []struct {
		ID int64 `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.ok("audit", "list", "--json")), &evs))
	ids := make([]int64, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	slices.Sort(ids)
	return ids
}

// checkDelivery asserts that got holds every audit event of want in order
// (first arrivals by event id ascending), that a repeated uid is the same
// event, and that no line was malformed or failed its class's required
// fields.
func checkDelivery(t *testing.T, what string, l *receiverLog, want []int64) {
	t.Helper()
	evs, bad := l.snapshot()
	assert.Empty(t, bad, "%s: malformed or invalid events", what)
	seen := map[string][]byte{}
	var order []int64
	for _, e := range evs {
		if prev, dup := seen[e.UID]; dup {
			assert.JSONEq(t, string(prev), string(e.JSON), "%s: uid %s delivered twice with different content", what, e.UID)
			continue
		}
		seen[e.UID] = e.JSON
		if len(order) == 0 || order[len(order)-1] != e.EventID {
			order = append(order, e.EventID)
		}
	}
	assert.True(t, slices.IsSorted(order), "%s: events out of order: %v", what, order)
	assert.Equal(t, want, slices.Compact(slices.Sorted(slices.Values(order))), "%s: every audit event once", what)
}

// delivered reports whether l has every event of want.
func delivered(l *receiverLog, want []int64) bool {
	evs, _ := l.snapshot()
	got := map[int64]bool{}
	for _, e := range evs {
		got[e.EventID] = true
	}
	for _, id := range want {
		if !got[id] {
			return false
		}
	}
	return true
}

// auditExportBlock is the audit block of the test's config.
const auditExportBlock = `audit:
  export:
    - {type: syslog, address: %q, tls: true, ca_file: %q}
    - {type: http, url: "http://%s/services/collector/raw", headers_env: {Authorization: TEST_HEC_TOKEN}}
    - {type: file, path: audit/audit.jsonl, max_size: 1MiB, keep: 3}
`

// withAuditExport restarts r with the audit block added.
func withAuditExport(t *testing.T, r *replica, block string) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Kill())
	_ = r.cmd.Wait()
	r.cfgText += block
	r.extraEnv = append(slices.Clone(r.extraEnv), "TEST_HEC_TOKEN=Splunk e2e-hec-token")
	r.restart(t)
}

// sessions runs one ssh exec and one psql query through r.
func runSessions(t *testing.T, ctx context.Context, r *replica, marker string) {
	t.Helper()
	res := e2eRun(t, r.ssh(ctx, "echo "+marker))
	require.Equalf(t, 0, res.code, "ssh: %s; logs: %s", res.stderr, r.logs)
	res = e2eRun(t, r.psqlThrough(ctx, "-c", "SELECT '"+marker+"'"))
	require.Equalf(t, 0, res.code, "psql: %s; logs: %s", res.stderr, r.logs)
}

// TestAuditExportEndToEnd: every audit event of an SSH and a psql session
// through serve reaches a TLS syslog receiver, an HTTP collector and a
// file in OCSF form valid for its class; with the receivers gone and serve
// restarted meanwhile, the events written then arrive once they are back,
// in order, none lost, a repeat only under the same uid.
func TestAuditExportEndToEnd(t *testing.T) {
	c := newReplicaCluster(t)
	tf := sandbox.TLSFilesT(t)
	serverCert, err := tls.LoadX509KeyPair(tf.CertFile, tf.KeyFile)
	require.NoError(t, err)
	sl := &syslogReceiver{addr: "127.0.0.1:0", tls: &tls.Config{Certificates: []tls.Certificate{serverCert}}}
	sl.start(t)
	hr := &httpReceiver{addr: "127.0.0.1:0"}
	hr.start(t)
	t.Cleanup(func() { sl.stop(); hr.stop() })
	r := c.start(t)
	withAuditExport(t, r, fmt.Sprintf(auditExportBlock, sl.addr, tf.CAFile, hr.addr))
	r.ok("iga", "apply", "-f", c.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	runSessions(t, ctx, r, "first-sessions")
	want := auditIDs(t, r)
	require.Eventually(t, func() bool { return delivered(&sl.receiverLog, want) && delivered(&hr.receiverLog, want) },
		20*time.Second, 100*time.Millisecond, "every audit event exported; logs: %s", r.logs)
	checkDelivery(t, "syslog", &sl.receiverLog, want)
	checkDelivery(t, "http", &hr.receiverLog, want)
	checkSessionClasses(t, &hr.receiverLog)
	assert.Equal(t, "Splunk e2e-hec-token", hr.hdrs.Get("Authorization"), "the header from the environment")
	assert.NotContains(t, r.logs.String(), "e2e-hec-token", "the token never reaches the log")

	sl.stop()
	hr.stop()
	runSessions(t, ctx, r, "while-receivers-are-down")
	require.Eventually(t, func() bool {
		v, _ := strconv.ParseFloat(r.metric(t, `sallyport_audit_export_failures_total{sink="syslog:`+sl.addr+`"}`), 64)
		return v > 0
	}, 10*time.Second, 100*time.Millisecond, "the failing syslog sink is counted")
	require.NoError(t, r.cmd.Process.Kill(), "serve dies while events wait")
	_ = r.cmd.Wait()
	r.restart(t)
	runSessions(t, ctx, r, "after-restart")
	name := auditexport.SinkConfig{Type: auditexport.TypeHTTP, URL: "http://" + hr.addr + "/services/collector/raw"}.SinkName()
	httpSink := `sallyport_audit_export_pending{sink="` + name + `"}`
	require.Eventually(t, func() bool {
		v, _ := strconv.ParseFloat(r.metric(t, httpSink), 64)
		return v > 0
	}, 10*time.Second, 100*time.Millisecond, "the restarted serve reports the events waiting for the collector")
	waiting := r.metric(t, httpSink)
	time.Sleep(2 * time.Second) // retries fail meanwhile
	sl.start(t)
	hr.start(t)
	want = auditIDs(t, r)
	require.Eventually(t, func() bool { return delivered(&sl.receiverLog, want) && delivered(&hr.receiverLog, want) },
		30*time.Second, 100*time.Millisecond, "every audit event exported after the outage; logs: %s", r.logs)
	checkDelivery(t, "syslog after outage", &sl.receiverLog, want)
	checkDelivery(t, "http after outage", &hr.receiverLog, want)
	auditFile := filepath.Join(r.dir, "data", "audit", "audit.jsonl")
	// The file sink polls the outbox on its own: it may write the last
	// events a moment after the collectors had them.
	require.Eventually(t, func() bool { return delivered(readSinkFile(auditFile), want) },
		10*time.Second, 100*time.Millisecond, "every audit event in the file sink")
	checkFile(t, auditFile, want)
	sevs, _ := sl.snapshot()
	hevs, _ := hr.snapshot()
	t.Logf("%d audit events; %s waited across the restart; syslog got %d OCSF events, http %d (repeats included)",
		len(want), waiting, len(sevs), len(hevs))
}

// checkSessionClasses asserts the classes an SSH exec and a psql session
// map to (admission, SSH channel, per-session credentials, database
// session, the token issued) and what a SOC analyst reads in them.
func checkSessionClasses(t *testing.T, l *receiverLog) {
	t.Helper()
	evs, _ := l.snapshot()
	byClass := map[int]map[string]any{}
	for _, e := range evs {
		var o map[string]any
		require.NoError(t, json.Unmarshal(e.JSON, &o))
		byClass[e.Class] = o
	}
	for _, want := range []int{3002, 3003, 3004, 4007, 6005} {
		require.Contains(t, byClass, want, "an event of class %d", want)
	}
	ssh := byClass[4007]
	assert.Equal(t, "web-01", ssh["dst_endpoint"].(map[string]any)["name"], "the SSH target")
	assert.Equal(t, "127.0.0.1", ssh["src_endpoint"].(map[string]any)["ip"], "the client address")
	assert.Equal(t, "svc-ops", ssh["actor"].(map[string]any)["user"].(map[string]any)["name"])
	db := byClass[6005]["database"].(map[string]any)
	assert.Equal(t, "analytics", db["name"])
	assert.Equal(t, "PostgreSQL", db["type"])
	assert.Contains(t, byClass[3003]["privileges"], "per-session database role analyst", "the role the psql session ran as")
}

// checkFile asserts the file sink holds every event in order.
func checkFile(t *testing.T, path string, want []int64) {
	t.Helper()
	_, err := os.Stat(path)
	require.NoError(t, err, "the file sink's file")
	checkDelivery(t, "file", readSinkFile(path), want)
}

// readSinkFile reads the file sink's lines as a receiver would have got
// them; a file not written yet holds none.
func readSinkFile(path string) *receiverLog {
	var l receiverLog
	data, _ := os.ReadFile(path)
	for line := range strings.Lines(string(data)) {
		l.add([]byte(strings.TrimSpace(line)))
	}
	return &l
}

// TestAuditExportHA: two replicas on one PostgreSQL registry export to
// one collector; each event arrives once, whichever replica wrote it, and
// when one replica dies the other goes on alone.
func TestAuditExportHA(t *testing.T) {
	c := newReplicaCluster(t)
	hr := &httpReceiver{addr: "127.0.0.1:0"}
	hr.start(t)
	t.Cleanup(hr.stop)
	block := fmt.Sprintf("audit:\n  export:\n    - {type: http, url: \"http://%s/ingest\", headers_env: {Authorization: TEST_HEC_TOKEN}}\n", hr.addr)
	a, b := c.start(t), c.start(t)
	withAuditExport(t, a, block)
	withAuditExport(t, b, block)
	a.ok("iga", "apply", "-f", c.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 2 {
		runSessions(t, ctx, a, fmt.Sprintf("through-a-%d", i))
		runSessions(t, ctx, b, fmt.Sprintf("through-b-%d", i))
	}
	want := auditIDs(t, a)
	require.Eventually(t, func() bool { return delivered(&hr.receiverLog, want) },
		20*time.Second, 100*time.Millisecond, "every audit event exported; A: %s\nB: %s", a.logs, b.logs)
	time.Sleep(2 * time.Second) // a duplicate from the other replica would arrive by now
	evs, _ := hr.snapshot()
	uids := map[string]int{}
	for _, e := range evs {
		uids[e.UID]++
	}
	for uid, n := range uids {
		assert.Equal(t, 1, n, "event %s delivered %d times by two replicas", uid, n)
	}
	checkDelivery(t, "http", &hr.receiverLog, want)

	require.NoError(t, a.cmd.Process.Kill(), "replica A dies; B exports alone")
	_ = a.cmd.Wait()
	runSessions(t, ctx, b, "after-a-died")
	want = auditIDs(t, b)
	require.Eventually(t, func() bool { return delivered(&hr.receiverLog, want) },
		20*time.Second, 100*time.Millisecond, "events after A died exported by B; B: %s", b.logs)
	checkDelivery(t, "http after A died", &hr.receiverLog, want)
}
