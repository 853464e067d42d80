package main

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/web"
)

// governanceSweep is how often the leading replica follows break-glass
// grants: a grant opened from any process is alerted within it, an ended
// one gets its review, an overdue review raises its alert. (Ending the
// live sessions of an ended grant is every replica's session watcher's
// job, within 5 s.)
const governanceSweep = time.Second

// governanceMetrics are the break-glass series serve exports.
type governanceMetrics struct {
	opened  prometheus.Counter
	reviews prometheus.Counter
	overdue prometheus.Gauge
}

func newGovernanceMetrics(reg prometheus.Registerer) *governanceMetrics {
	m := &governanceMetrics{
		opened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_breakglass_opened_total",
			Help: "Break-glass grants opened (counted once, by the replica that alerted).",
		}),
		reviews: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_breakglass_reviews_opened_total",
			Help: "Post-event reviews created for break-glass grants that ended.",
		}),
		overdue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sallyport_breakglass_reviews_overdue",
			Help: "Break-glass reviews pending past their due time (reported by the leading replica; 0 on the others).",
		}),
	}
	reg.MustRegister(m.opened, m.reviews, m.overdue)
	return m
}

func (m *governanceMetrics) observe(res iga.SweepResult) {
	m.opened.Add(float64(res.Opened))
	m.reviews.Add(float64(res.ReviewsOpened))
	m.overdue.Set(float64(res.Overdue))
}

// governanceComponent sweeps break-glass grants and reviews, and posts
// their alerts to alerts.webhook_url when one is set.
func (d *serveDeps) governanceComponent() *component {
	m := newGovernanceMetrics(d.metrics.registry)
	return &component{name: "governance", run: func(ctx context.Context) error {
		hook, err := alertWebhook(d.ap.cfg, d.log)
		if err != nil {
			return err
		}
		var alert func(iga.Alert)
		if hook != nil {
			go hook.Run(ctx)
			alert = func(a iga.Alert) { hook.Send(a.ID, a.Kind, a) }
		}
		return sweepGovernance(ctx, d.ap.oversight(alert), m, d)
	}}
}

// sweepGovernance sweeps until ctx ends, whenever this replica leads, so
// one replica at a time creates reviews and raises alerts; a failed sweep
// is logged and retried at the next tick.
func sweepGovernance(ctx context.Context, o *iga.Oversight, m *governanceMetrics, d *serveDeps) error {
	t := time.NewTicker(governanceSweep)
	defer t.Stop()
	for {
		if d.cluster.leading() {
			res, err := o.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				d.log.Warn("break-glass sweep failed; retrying", "err", err)
			}
			m.observe(res)
		} else {
			m.overdue.Set(0) // the leader reports them
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// alertWebhook is the configured alert webhook, nil when none is; its
// secret comes from the environment variable alerts.secret_env names.
func alertWebhook(cfg *Config, log *slog.Logger) (*web.Webhook, error) {
	a := cfg.Alerts
	if a.WebhookURL == "" {
		return nil, nil
	}
	if a.SecretEnv == "" {
		return nil, configErrorf("alerts.secret_env: name the environment variable holding the webhook signing secret")
	}
	secret := os.Getenv(a.SecretEnv)
	if secret == "" {
		return nil, configErrorf("alerts.secret_env: environment variable %s is empty; set it to the webhook signing secret", a.SecretEnv)
	}
	if err := checkWebhookURL(a.WebhookURL); err != nil {
		return nil, err
	}
	return &web.Webhook{URL: a.WebhookURL, Secret: []byte(secret), Logger: log}, nil
}

// checkWebhookURL wants an http(s) URL; the message leaves the URL out,
// as it may hold a token.
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return configErrorf("alerts.webhook_url: want an http:// or https:// URL")
	}
	return nil
}
