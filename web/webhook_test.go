package web_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/web"
)

// hookReceiver is an alert receiver: it answers each POST with the next
// status of its script (200 once the script runs out) and keeps what came.
type hookReceiver struct {
	mu       sync.Mutex
	statuses []int
	got      []hookRequest
	done     chan struct{}
	want     int // requests after which done closes
}

type hookRequest struct {
	body              []byte
	sig, event, deliv string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, hookRequest{body, r.Header.Get(web.SignatureHeader), r.Header.Get(web.EventHeader), r.Header.Get(web.DeliveryHeader)})
	status := http.StatusOK
	if len(h.statuses) > 0 {
		status, h.statuses = h.statuses[0], h.statuses[1:]
	}
	w.WriteHeader(status)
	if len(h.got) == h.want {
		close(h.done)
	}
}

// TestWebhookDelivery: each alert arrives as JSON with a signature the
// receiver can check, is retried on server errors and not on refusals.
func TestWebhookDelivery(t *testing.T) {
	secret := []byte("s3cret-for-tests")
	for _, tc := range []struct {
		name      string
		statuses  []int
		attempts  int // requests the receiver sees
		wantWarns int // "giving up" lines
	}{
		{"accepted at once", nil, 1, 0},
		{"retried after 503 and 429", []int{503, 429}, 3, 0},
		{"refused for good on 400", []int{400}, 1, 1},
		{"gives up after its attempts", []int{500, 500, 500}, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := &hookReceiver{statuses: tc.statuses, done: make(chan struct{}), want: tc.attempts}
			srv := httptest.NewServer(rcv)
			t.Cleanup(srv.Close)
			var logs bytes.Buffer
			done := make(chan error, 1)
			w := &web.Webhook{URL: srv.URL + "/hook?token=url-token", Secret: secret, Attempts: 3, Backoff: 10 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				Done: func(id string, err error) {
					assert.Equal(t, "breakglass_opened/bg-1", id)
					done <- err
				}}
			ctx, cancel := context.WithCancel(context.Background())
			stopped := make(chan struct{})
			go func() { w.Run(ctx); close(stopped) }()

			alert := map[string]string{"id": "breakglass_opened/bg-1", "kind": "breakglass_opened"}
			require.True(t, w.Send("breakglass_opened/bg-1", "breakglass_opened", alert))
			select {
			case <-rcv.done:
			case <-time.After(5 * time.Second):
				t.Fatalf("got %d requests in 5s, want %d", len(rcv.got), tc.attempts)
			}
			time.Sleep(50 * time.Millisecond) // a retry too many would arrive by now
			cancel()
			<-stopped

			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			require.Lenf(t, rcv.got, tc.attempts, "got %d requests, want %d", len(rcv.got), tc.attempts)
			for _, r := range rcv.got {
				assert.True(t, hmac.Equal([]byte(web.Sign(secret, r.body)), []byte(r.sig)), "got signature %q, want the body's HMAC", r.sig)
				assert.Equal(t, "breakglass_opened", r.event)
				assert.Equal(t, "breakglass_opened/bg-1", r.deliv, "the delivery id is the alert's, on every retry")
				var got map[string]string
				require.NoError(t, json.Unmarshal(r.body, &got))
				assert.Equal(t, alert, got)
			}
			assert.Equal(t, tc.wantWarns, bytes.Count(logs.Bytes(), []byte("giving up")), "logs: %s", logs.String())
			select {
			case err := <-done:
				assert.Equal(t, tc.wantWarns == 1, err != nil, "Done got %v", err)
			default:
				t.Error("Done was not called when the delivery ended")
			}
			assert.NotContains(t, logs.String(), "url-token", "the URL's token stays out of the logs")
			assert.NotContains(t, logs.String(), string(secret))
		})
	}
}

// TestWebhookSendNeverBlocks: a receiver that hangs delays delivery, never
// the caller of Send.
func TestWebhookSendNeverBlocks(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	t.Cleanup(func() { close(hang); srv.Close() })
	w := &web.Webhook{URL: srv.URL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go w.Run(ctx)

	start := time.Now()
	for i := range 300 {
		w.Send("a", "k", i) // beyond the queue: dropped, not waited for
	}
	assert.Less(t, time.Since(start), time.Second, "300 sends against a hung receiver")
}
