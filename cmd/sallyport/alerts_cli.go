package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/web"
)

// This file lets a command that raises alerts (iga offboard) post them to
// alerts.webhook_url as serve does, through the same web.Webhook, and wait
// for the receiver to accept them before the process exits.

const (
	// cliAlertWait bounds how long a command waits for the webhook to
	// accept its alerts: the webhook's first retries (after 1, 2 and 4 s)
	// fit in it, and an operator at a terminal should not wait longer.
	cliAlertWait = 15 * time.Second
	// cliAlertTimeout bounds one POST, as serve's webhook does.
	cliAlertTimeout = 10 * time.Second
)

// cliAlerts is the alert webhook of one command, nil when none is set.
type cliAlerts struct {
	hook     *web.Webhook
	waitFor  time.Duration // cliAlertWait; tests shorten it
	stop     context.CancelFunc
	queued   int
	accepted atomic.Int64
	notify   chan struct{} // a receiver accepted one more alert
}

// newCLIAlerts starts delivering to the configured webhook; nil, nil when
// alerts.webhook_url is not set.
func newCLIAlerts(ctx context.Context, cfg *Config, log *slog.Logger) (*cliAlerts, error) {
	hook, err := alertWebhook(cfg, &serveDeps{log: log})
	if hook == nil || err != nil {
		return nil, err
	}
	a := &cliAlerts{hook: hook, waitFor: cliAlertWait, notify: make(chan struct{}, 1)}
	hook.Client = &http.Client{Timeout: cliAlertTimeout, Transport: acceptCounter{a}}
	ctx, a.stop = context.WithCancel(ctx)
	go hook.Run(ctx)
	return a, nil
}

// sink is what the registry hands its alerts to; nil (log them) without a
// webhook.
func (a *cliAlerts) sink() func(iga.Alert) {
	if a == nil {
		return nil
	}
	return func(al iga.Alert) {
		if a.hook.Send(al.ID, al.Kind, al) {
			a.queued++
		}
	}
}

// wait waits until the receiver accepted every queued alert or
// waitFor passed, stops delivery, and returns how many it accepted.
func (a *cliAlerts) wait() (accepted, queued int) {
	if a == nil {
		return 0, 0
	}
	defer a.stop()
	deadline := time.After(a.waitFor)
	for int(a.accepted.Load()) < a.queued {
		select {
		case <-a.notify:
		case <-deadline:
			return int(a.accepted.Load()), a.queued
		}
	}
	return a.queued, a.queued
}

// acceptCounter counts the webhook's posts that the receiver accepted.
type acceptCounter struct{ a *cliAlerts }

func (c acceptCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && resp.StatusCode < 300 {
		c.a.accepted.Add(1)
		select {
		case c.a.notify <- struct{}{}:
		default:
		}
	}
	return resp, err
}
