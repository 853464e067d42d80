// Package rectest is the recorder the database proxies' tests share: one
// started in a temporary directory with a buffer as small as a test needs,
// the statements a stored recording holds, and a stored session.json.
package rectest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// Open starts a recorder in a temporary directory whose sessions buffer
// bufferSize bytes and flush only when the test makes them (the flush
// interval is an hour), and opens session id of protocol on it. The test
// closes the session and shuts the recorder down.
func Open(ctx context.Context, t testing.TB, id, protocol string, bufferSize int) (*recorder.Recorder, recorder.Store, *recorder.Session) {
	t.Helper()
	cfg := recorder.Config{DataDir: t.TempDir(), FailClosed: true, FlushInterval: time.Hour}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	store, err := recorder.NewStore(cfg)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: cfg, Store: store, Key: key, BufferSize: bufferSize}
	require.NoError(t, rec.Start(ctx))
	s, err := rec.Open(ctx, recorder.SessionMeta{ID: id, Identity: "svc", Target: "db",
		Protocol: protocol, Login: "sp_test", StartedAt: time.Now()})
	require.NoError(t, err)
	return rec, store, s
}

// Queries is the SQL of every query event in the stored recording of
// session id, in the order recorded.
func Queries(ctx context.Context, t testing.TB, store recorder.Store, id string) []string {
	t.Helper()
	src, err := recorder.FindSession(ctx, store, id)
	require.NoError(t, err)
	var js bytes.Buffer
	require.NoError(t, recorder.Replay(ctx, src, &js, recorder.ReplayOptions{Format: recorder.FormatJSON}))
	var got []string
	for _, line := range strings.Split(js.String(), "\n") {
		var ev recorder.Event
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Type == recorder.EventQuery {
			got = append(got, ev.SQL)
		}
	}
	return got
}

// StoredMeta waits up to 10 s for session id's session.json to reach
// store and returns it.
func StoredMeta(t testing.TB, store recorder.Store, id string) recorder.SessionMeta {
	t.Helper()
	ctx := context.Background()
	var meta recorder.SessionMeta
	require.Eventually(t, func() bool {
		keys, err := store.List(ctx, "")
		require.NoError(t, err)
		for _, k := range keys {
			if strings.HasSuffix(k, "/"+id+"/session.json") {
				r, err := store.Get(ctx, k)
				require.NoError(t, err)
				defer r.Close()
				require.NoError(t, json.NewDecoder(r).Decode(&meta))
				return true
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "session.json of %s never stored", id)
	return meta
}
