package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/web"
)

// This file lets a command that raises alerts (iga offboard) post them to
// alerts.webhook_url as serve does, through the same web.Webhook, and wait
// for the receiver to accept them before the process exits.

// cliAlertWait bounds how long a command waits for the webhook to accept
// its alerts: the webhook's first retries (after 1, 2 and 4 s) fit in it,
// and an operator at a terminal should not wait longer.
const cliAlertWait = 15 * time.Second

// cliAlerts is the alert webhook of one command, nil when none is set.
type cliAlerts struct {
	hook     *web.Webhook
	waitFor  time.Duration // cliAlertWait; tests shorten it
	stop     context.CancelFunc
	queued   int
	accepted int
	ended    chan error // one per alert whose delivery ended; nil when accepted
}

// newCLIAlerts starts delivering to the configured webhook; nil, nil when
// alerts.webhook_url is not set.
func newCLIAlerts(ctx context.Context, cfg *Config, log *slog.Logger) (*cliAlerts, error) {
	hook, err := alertWebhook(cfg, log)
	if hook == nil || err != nil {
		return nil, err
	}
	a := &cliAlerts{hook: hook, waitFor: cliAlertWait, ended: make(chan error)}
	ctx, a.stop = context.WithCancel(ctx)
	hook.Done = func(_ string, err error) {
		select {
		case a.ended <- err:
		case <-ctx.Done(): // wait gave up; nobody counts any more
		}
	}
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

// wait waits until every queued alert's delivery ended or waitFor passed,
// stops delivery, and returns how many the receiver accepted.
func (a *cliAlerts) wait() (accepted, queued int) {
	if a == nil {
		return 0, 0
	}
	defer a.stop()
	deadline := time.After(a.waitFor)
	for range a.queued {
		select {
		case err := <-a.ended:
			if err == nil {
				a.accepted++
			}
		case <-deadline:
			return a.accepted, a.queued
		}
	}
	return a.accepted, a.queued
}
