package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/recorder"
)

// lockRecorder is a real HTTP hop in front of the sandbox's gofakes3: it
// records the Object Lock headers every upload carries and passes the
// requests on. gofakes3 v1.2.0 implements no Object Lock at all: it does
// not route ?object-lock, ?retention or ?legal-hold (a PUT ?legal-hold
// would overwrite the object with the XML). So this hop answers those
// requests itself, from what it recorded: the bucket's Object Lock
// configuration (enabled or not, as the test sets), each object's
// retention as its upload asked, and the legal hold as last set.
type lockRecorder struct {
	bucket string
	next   http.Handler

	mu          sync.Mutex
	lockEnabled bool
	puts        map[string]http.Header // object key → headers of its upload
	holds       map[string]string      // object key → ON or OFF
}

func newLockRecorder(t *testing.T, s3 *sandbox.S3) (*lockRecorder, string) {
	u, err := url.Parse(s3.URL())
	require.NoError(t, err)
	lr := &lockRecorder{bucket: s3.Bucket, next: httputil.NewSingleHostReverseProxy(u), lockEnabled: true,
		puts: map[string]http.Header{}, holds: map[string]string{}}
	srv := httptest.NewServer(lr)
	t.Cleanup(srv.Close)
	return lr, strings.TrimPrefix(srv.URL, "http://")
}

func (lr *lockRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !lr.serveLock(w, r) {
		lr.next.ServeHTTP(w, r)
	}
}

// serveLock answers the Object Lock requests and records uploads; false
// for every request gofakes3 is to answer.
func (lr *lockRecorder) serveLock(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	key := strings.TrimPrefix(r.URL.Path, "/"+lr.bucket+"/")
	lr.mu.Lock()
	defer lr.mu.Unlock()
	switch {
	case q.Has("object-lock"):
		lr.lockConfig(w)
	case q.Has("legal-hold") && r.Method == http.MethodPut:
		var lh struct{ Status string }
		if err := xml.NewDecoder(r.Body).Decode(&lh); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return true
		}
		lr.holds[key] = lh.Status
	case q.Has("legal-hold"):
		lr.answer(w, lr.holds[key] != "", "<LegalHold><Status>"+lr.holds[key]+"</Status></LegalHold>")
	case q.Has("retention"):
		h := lr.puts[key]
		lr.answer(w, h != nil && h.Get("X-Amz-Object-Lock-Mode") != "", fmt.Sprintf("<Retention><Mode>%s</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>",
			h.Get("X-Amz-Object-Lock-Mode"), h.Get("X-Amz-Object-Lock-Retain-Until-Date")))
	default:
		if r.Method == http.MethodPut && len(q) == 0 {
			lr.puts[key] = r.Header.Clone()
			if st := r.Header.Get("X-Amz-Object-Lock-Legal-Hold"); st != "" {
				lr.holds[key] = st // the legal hold an upload asks for
			}
		}
		return false
	}
	return true
}

// lockConfig answers GetObjectLockConfiguration as S3 does: the
// configuration, or 404 ObjectLockConfigurationNotFoundError.
func (lr *lockRecorder) lockConfig(w http.ResponseWriter) {
	if !lr.lockEnabled {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<Error><Code>ObjectLockConfigurationNotFoundError</Code><Message>Object Lock configuration does not exist for this bucket</Message></Error>`)
		return
	}
	io.WriteString(w, `<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`)
}

func (lr *lockRecorder) answer(w http.ResponseWriter, ok bool, body string) {
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<Error><Code>NoSuchObjectLockConfiguration</Code><Message>The specified object does not have a ObjectLock configuration</Message></Error>`)
		return
	}
	io.WriteString(w, body)
}

func (lr *lockRecorder) uploads(prefix string) map[string]http.Header {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	out := map[string]http.Header{}
	for k, h := range lr.puts {
		if strings.Contains(k, prefix) {
			out[k] = h
		}
	}
	return out
}

func (lr *lockRecorder) holdsOf(prefix string) map[string]string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	out := map[string]string{}
	for k, s := range lr.holds {
		if strings.Contains(k, prefix) {
			out[k] = s
		}
	}
	return out
}

func (lr *lockRecorder) setLockEnabled(on bool) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.lockEnabled = on
}

// s3LockEnv is a bastion config storing recordings in the bucket behind
// the recording hop, with COMPLIANCE Object Lock for 30 days.
func s3LockEnv(t *testing.T) (*env, *lockRecorder) {
	s3 := sandbox.S3T(t)
	lr, endpoint := newLockRecorder(t, s3)
	block := fmt.Sprintf(`recordings:
  store: s3
  retention: 400d
  s3: {endpoint: %q, bucket: %q, region: %q, secure: false, access_key_env: TEST_S3_ACCESS, secret_key_env: TEST_S3_SECRET,
       object_lock: {mode: COMPLIANCE, days: 30}}`, endpoint, s3.Bucket, s3.Region)
	e := newEnv(t, block)
	e.extraEnv = []string{"TEST_S3_ACCESS=" + s3.AccessKey, "TEST_S3_SECRET=" + s3.SecretKey}
	for _, kv := range e.extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // for the recorder this process builds
	}
	return e, lr
}

// TestObjectLockUploadsAndHolds: with recordings.s3.object_lock, every
// object of a recording reaches S3 with the lock headers (mode and a
// retain-until 30 days on); recording hold sets the S3 legal hold of each
// object and release clears it; verify reports the lock and the hold; a
// deletion before the retain-until date is refused and says until when.
func TestObjectLockUploadsAndHolds(t *testing.T) {
	e, lr := s3LockEnv(t)
	before := time.Now().UTC()
	id := recordSession(t, e)

	ups := lr.uploads(id)
	require.GreaterOrEqual(t, len(ups), 3, "session.json, a chunk and the manifest")
	var until time.Time
	for key, h := range ups {
		assert.Equal(t, "COMPLIANCE", h.Get("X-Amz-Object-Lock-Mode"), key)
		u, err := time.Parse(time.RFC3339, h.Get("X-Amz-Object-Lock-Retain-Until-Date"))
		require.NoError(t, err, key)
		assert.WithinDuration(t, before.AddDate(0, 0, 30), u, 2*time.Minute, key)
		assert.NotEmpty(t, h.Get("Content-Md5"), "S3 wants Content-MD5 on a locked upload: %s", key)
		if until.IsZero() || u.Before(until) {
			until = u
		}
	}

	out := e.ok("recording", "hold", id, "--reason", "regulator request 88")
	assert.Contains(t, out, fmt.Sprintf("S3 legal hold on for %d objects", len(ups)))
	for key, st := range lr.holdsOf(id) {
		assert.Equal(t, "ON", st, key)
	}
	assert.Len(t, lr.holdsOf(id), len(ups), "every object is held")
	out = e.ok("verify", id)
	assert.Contains(t, out, "intact")
	assert.Contains(t, out, "object lock COMPLIANCE until "+until.Format(time.RFC3339))
	assert.Contains(t, out, fmt.Sprintf("legal hold on %d of %d objects", len(ups), len(ups)))
	assert.Contains(t, out, "legal hold since")

	r := retentionFor(t, e)
	_, err := recorder.DeleteRecording(t.Context(), r.Store, listedSessions(t, e)[id].dir(), time.Now())
	var retained *recorder.RetainedError
	require.True(t, errors.As(err, &retained), "got %v, want a refusal", err)
	assert.Contains(t, err.Error(), "under retention until "+lastUntil(ups).Format(time.RFC3339))
	assert.Len(t, lr.uploads(id), len(ups))

	e.ok("recording", "release", id, "--reason", "request withdrawn")
	for key, st := range lr.holdsOf(id) {
		assert.Equal(t, "OFF", st, key)
	}
	assert.NotContains(t, e.ok("verify", id), "legal hold on")

	n, err := r.Sweep(t.Context(), time.Now().AddDate(0, 0, 401))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "past retention and Object Lock, the recording goes")
	keys, err := r.Store.List(t.Context(), listedSessions(t, e)[id].dir())
	require.NoError(t, err)
	assert.Empty(t, keys, "every object is deleted from the bucket")
	assert.Equal(t, "deleted", listedSessions(t, e)[id].State)
}

func lastUntil(ups map[string]http.Header) time.Time {
	var last time.Time
	for _, h := range ups {
		if u, err := time.Parse(time.RFC3339, h.Get("X-Amz-Object-Lock-Retain-Until-Date")); err == nil && u.After(last) {
			last = u
		}
	}
	return last
}

// dir is the session's key prefix in the store.
func (s sessionOut) dir() string { return recorder.SessionDir(s.ID, s.StartedAt) }

// TestServeRefusesBucketWithoutObjectLock: when the config asks for
// Object Lock and the bucket reports none, serve exits at start and says
// so; with the bucket reporting it enabled, serve starts.
func TestServeRefusesBucketWithoutObjectLock(t *testing.T) {
	e, lr := s3LockEnv(t)
	lr.setLockEnabled(false)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--config", e.config, "serve")
	cmd.Env = append(os.Environ(), e.extraEnv...)
	logs := &syncbuf.Buffer{}
	cmd.Stderr = logs
	err := cmd.Run()
	require.Error(t, err, "serve must not start")
	require.NoError(t, ctx.Err(), "serve kept running instead of refusing: %s", logs)
	assert.Contains(t, logs.String(), "does not have Object Lock enabled")
	assert.Contains(t, logs.String(), "recordings.s3.object_lock")

	lr.setLockEnabled(true)
	startServe(t, e)
}
