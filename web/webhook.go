package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Webhook headers. The signature is "sha256=" and the hex HMAC-SHA256 of
// the request body under the shared secret, as GitHub signs its webhooks;
// a receiver recomputes it and compares in constant time.
const (
	SignatureHeader = "X-Sallyport-Signature"
	EventHeader     = "X-Sallyport-Event"    // the alert kind
	DeliveryHeader  = "X-Sallyport-Delivery" // the alert id: the same on every retry
)

const (
	// webhookTimeout bounds one POST: a receiver that hangs must not hold
	// the queue for long.
	webhookTimeout = 10 * time.Second
	// webhookQueue is how many alerts wait for delivery before Send drops
	// new ones (each is logged at WARN anyway).
	webhookQueue = 256
	// defaultAttempts and defaultBackoff retry for about half a minute in
	// all: 1+2+4+8+16 s between six attempts.
	defaultAttempts = 6
	defaultBackoff  = time.Second
	// maxBackoff caps the wait between two attempts.
	maxBackoff = time.Minute
)

// Webhook posts alerts as signed JSON to one URL in the background: Send
// never blocks, and Run delivers each alert, retrying with backoff.
type Webhook struct {
	// URL receives the POSTs. Required. It may hold a token, so it never
	// appears in logs or errors; only its host does.
	URL string
	// Secret keys the signature. Empty: the signature header is omitted.
	Secret []byte
	// Client sends the requests. Nil: a client with a 10 s timeout.
	Client *http.Client
	// Attempts is how often one alert is tried. Zero: 6.
	Attempts int
	// Backoff is the wait before the first retry, doubled after each.
	// Zero: 1 s.
	Backoff time.Duration
	// Logger receives delivery failures. Nil: slog.Default().
	Logger *slog.Logger
	// Done, when set, is called from Run once each alert's delivery ends:
	// err is nil when the receiver accepted it, else why it was not
	// (refused, attempts spent, or ctx ended). A caller that must know its
	// alerts arrived (a CLI before it exits) counts these. Nil: not called.
	Done func(id string, err error)

	once  sync.Once
	queue chan delivery
}

// delivery is one alert waiting to be posted.
type delivery struct {
	id, kind string
	body     []byte
}

func (w *Webhook) init() {
	w.once.Do(func() { w.queue = make(chan delivery, webhookQueue) })
}

// Send queues v, marshalled as JSON, for delivery as alert id of kind. It
// never blocks: it reports false when the queue is full or v cannot be
// marshalled, and logs why.
func (w *Webhook) Send(id, kind string, v any) bool {
	w.init()
	body, err := json.Marshal(v)
	if err != nil {
		w.logger().Warn("alert webhook: cannot encode alert", "alert", id, "err", err)
		return false
	}
	select {
	case w.queue <- delivery{id: id, kind: kind, body: body}:
		return true
	default:
		w.logger().Warn("alert webhook: queue full; alert not posted", "alert", id, "host", w.host())
		return false
	}
}

// Run delivers queued alerts until ctx ends.
func (w *Webhook) Run(ctx context.Context) error {
	w.init()
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-w.queue:
			err := w.deliver(ctx, d)
			if err != nil && ctx.Err() == nil {
				w.logger().Warn("alert webhook: giving up", "alert", d.id, "host", w.host(), "err", err)
			}
			if w.Done != nil {
				w.Done(d.id, err)
			}
		}
	}
}

// deliver posts d until the receiver accepts it, it refuses it for good,
// or the attempts run out.
func (w *Webhook) deliver(ctx context.Context, d delivery) error {
	wait := w.Backoff
	if wait <= 0 {
		wait = defaultBackoff
	}
	attempts := w.Attempts
	if attempts <= 0 {
		attempts = defaultAttempts
	}
	var err error
	for n := 1; n <= attempts; n++ {
		var retry bool
		if retry, err = w.post(ctx, d); err == nil || !retry {
			return err
		}
		if n == attempts {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
	return fmt.Errorf("%d attempts: %w", attempts, err)
}

// post makes one attempt; retry says whether another may succeed.
func (w *Webhook) post(ctx context.Context, d delivery) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(d.body))
	if err != nil {
		return false, fmt.Errorf("make request to %s: malformed webhook URL", w.host())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sallyport-alerts")
	req.Header.Set(EventHeader, d.kind)
	req.Header.Set(DeliveryHeader, d.id)
	if len(w.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.Secret, d.body))
	}
	resp, err := w.client().Do(req)
	if err != nil {
		return true, fmt.Errorf("post to %s: %w", w.host(), redactURL(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return true, fmt.Errorf("post to %s: %s", w.host(), resp.Status)
	}
	return false, fmt.Errorf("post to %s: refused with %s", w.host(), resp.Status)
}

// Sign returns the signature header value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// redactURL drops the URL from a client error: it may hold a token.
func redactURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func (w *Webhook) host() string {
	u, err := url.Parse(w.URL)
	if err != nil || u.Host == "" {
		return "(malformed URL)"
	}
	return u.Host
}

func (w *Webhook) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return &http.Client{Timeout: webhookTimeout}
}

func (w *Webhook) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}
