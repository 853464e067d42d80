package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/internal/heapfloor"
	"github.com/sallyport/sallyport/web"
)

// shutdownGrace is the default of shutdown_grace: how long serve waits for
// the sessions in flight after SIGINT/SIGTERM before it closes them. Long
// enough for a command to finish; an interactive shell is closed anyway.
const shutdownGrace = 10 * time.Second

// finaliseTimeout is how long serve then waits for the recorder to seal and
// upload the recordings of the sessions that ended; what is left stays in
// the spool for the next start.
const finaliseTimeout = 10 * time.Second

func newServeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the bastion: every listener, the uploader, the janitor and the deadlines",
		Long: `serve runs until SIGINT or SIGTERM. On web.listen it answers /healthz and
Prometheus /metrics; the protocol listeners (ssh, postgres, mysql) start as
their proxies are configured.

SIGTERM drains: /healthz answers 503 {"status":"draining"} at once, so a load
balancer takes the replica out of rotation; the protocol listeners close, so
new sessions go to another replica; live sessions get shutdown_grace (default
10s) to finish before they are closed; then their recordings are sealed and
uploaded, and serve exits 0.`,
		Example: `  sallyport serve --config /etc/sallyport/sallyport.yaml`,
		Args:    args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			heapfloor.Set() // first: see the package for why
			cfg, err := LoadConfig(g.resolveConfigPath())
			if err != nil {
				return err
			}
			return serve(c.Context(), cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)), nil)
		},
	}
}

// serve runs the bastion until ctx ends. ready, when set, receives the web
// address once every listener is up.
func serve(ctx context.Context, cfg *Config, log *slog.Logger, ready func(webAddr string)) error {
	ap, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer ap.Close()
	d, err := newServeDeps(ctx, ap, log)
	if err != nil {
		return err
	}
	comps, err := d.components()
	if err != nil {
		return err
	}
	comps = append(comps, d.discoveryComponent()) // serve_discovery.go
	// Last, so that it is the first to stop after the listeners.
	comps = append(comps, d.sealComponent())
	return runComponents(ctx, log, comps, cfg.ShutdownGrace.D(), func() {
		log.Info("sallyport serving", "web", d.webAddr, "data_dir", cfg.DataDir, "registry", cfg.Registry.Driver)
		if ready != nil {
			ready(d.webAddr)
		}
	})
}

// sealPoll is how often shutdown looks whether the sessions closed at the
// end of the grace have sealed their recordings.
const sealPoll = 20 * time.Millisecond

// sealComponent waits, once the listeners are shut, until every session has
// ended and sealed its recording: sessions still live when the grace ran
// out were closed, but are still finishing their recordings, and the
// recorder must not stop before them.
func (d *serveDeps) sealComponent() *component {
	return &component{
		name: "recording seal",
		run:  func(ctx context.Context) error { <-ctx.Done(); return nil },
		shutdown: func(ctx context.Context) error {
			t := time.NewTicker(sealPoll)
			defer t.Stop()
			for len(d.live.Snapshot()) > 0 {
				select {
				case <-ctx.Done():
					return fmt.Errorf("%d sessions still sealing their recordings: %w", len(d.live.Snapshot()), ctx.Err())
				case <-t.C:
				}
			}
			return nil
		},
	}
}

// component is one long-running part of serve: a listener, the recorder's
// uploader, the session watcher.
type component struct {
	name string
	// run blocks until ctx ends or the component fails.
	run func(ctx context.Context) error
	// shutdown stops it gracefully within ctx; nil: cancelling run's ctx is enough.
	shutdown func(ctx context.Context) error
	// listener says the component accepts sessions: on shutdown every
	// listener closes at once, and their sessions drain together, before
	// the other components stop.
	listener bool
	// drain, when set, is told first that shutdown has begun, before any
	// listener closes (the web component turns /healthz to draining).
	drain func()
}

// runComponents runs every component until ctx ends or one fails, then
// drains: each component's drain hook hears of it, the listeners stop
// accepting at once and their live sessions get grace to finish, while the
// session watcher still applies kills and revocations; then the rest stop
// in reverse order, the recorder last.
func runComponents(ctx context.Context, log *slog.Logger, comps []*component, grace time.Duration, ready func()) error {
	// Not ctx's child: its end starts the drain, not the components' end,
	// which would close every session at once.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	errc := make(chan error, len(comps))
	for _, c := range comps {
		go func() {
			if err := c.run(rctx); err != nil && rctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", c.name, err)
			}
		}()
	}
	ready()
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
		log.Error("component failed; shutting down", "err", failed)
	}
	log.Info("sallyport shutting down: new sessions refused, live ones drain", "grace", grace)
	for _, c := range comps {
		if c.drain != nil {
			c.drain()
		}
	}
	drainListeners(log, comps, grace)
	sctx, scancel := context.WithTimeout(context.Background(), finaliseTimeout)
	defer scancel()
	for i := len(comps) - 1; i >= 0; i-- {
		if !comps[i].listener {
			shutdownComponent(sctx, log, comps[i])
		}
	}
	cancel()
	return failed
}

// drainListeners shuts every listener component down at once, so none
// accepts while another drains, and waits at most grace for all.
func drainListeners(log *slog.Logger, comps []*component, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range comps {
		if c.listener {
			wg.Go(func() { shutdownComponent(ctx, log, c) })
		}
	}
	wg.Wait()
}

func shutdownComponent(ctx context.Context, log *slog.Logger, c *component) {
	if c.shutdown == nil {
		return
	}
	if err := c.shutdown(ctx); err != nil && !errors.Is(err, web.ErrServerClosed) {
		log.Warn("shut down", "component", c.name, "err", err)
	}
}

// metrics are the bastion's Prometheus series, on a registry of its own.
type metrics struct {
	registry  *prometheus.Registry
	decisions *prometheus.CounterVec
	// loginFailures and refusals count every failed login and every request
	// a proxy turned down, also those the audit trail's rate limit left out.
	loginFailures *prometheus.CounterVec
	refusals      *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_decisions_total",
			Help: "Admission decisions by result and reason code (a denial counts once per reason).",
		}, []string{"result", "reason"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_login_failures_total",
			Help: "Logins refused before a credential was proven (unknown identity, wrong or expired key or token), by protocol and reason code.",
		}, []string{"protocol", "reason"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_refusals_total",
			Help: "Requests the proxies turned down on their own (remote or agent forwarding, forwards to other hosts, unknown channels), by protocol and reason code.",
		}, []string{"protocol", "reason"}),
	}
	ver, commit := buildVersion()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sallyport_build_info",
		Help: "Always 1; the labels say which sallyport is running.",
	}, []string{"version", "commit", "goversion"})
	build.WithLabelValues(ver, commit, runtime.Version()).Set(1)
	m.registry.MustRegister(build, m.decisions, m.loginFailures, m.refusals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeRefusal(f iga.Refusal) {
	counter := m.refusals
	if f.Login {
		counter = m.loginFailures
	}
	for _, r := range f.Reasons {
		counter.WithLabelValues(f.Protocol, r.Code).Inc()
	}
}

func (m *metrics) observeDecision(d iga.Decision) {
	if d.Allow {
		m.decisions.WithLabelValues("allow", "").Inc()
		return
	}
	for _, r := range d.Reasons {
		m.decisions.WithLabelValues("deny", r.Code).Inc()
	}
}
