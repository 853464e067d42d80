package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/web"
)

// shutdownGrace is how long serve waits for requests and sessions in flight
// after SIGINT/SIGTERM before it closes them.
const shutdownGrace = 10 * time.Second

func newServeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the bastion: every listener, the uploader, the janitor and the deadlines",
		Long: `serve runs until SIGINT or SIGTERM. On web.listen it answers /healthz and
Prometheus /metrics; the protocol listeners (ssh, postgres, mysql) start as
their proxies are configured.`,
		Example: `  sallyport serve --config /etc/sallyport/sallyport.yaml`,
		Args:    args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
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
	reg := newMetrics()
	ap.reg.OnDecision = reg.observeDecision
	ln, err := net.Listen("tcp", cfg.Web.Listen)
	if err != nil {
		return fmt.Errorf("listen on web.listen %s: %w", cfg.Web.Listen, err)
	}
	ws := &web.Server{
		Metrics: promhttp.HandlerFor(reg.registry, promhttp.HandlerOpts{}),
		Health:  func(ctx context.Context) error { _, err := ap.store.People(ctx); return err },
		Logger:  log,
	}
	errc := make(chan error, 1)
	go func() { errc <- ws.Serve(ctx, ln) }()
	log.Info("sallyport serving", "web", ln.Addr().String(), "data_dir", cfg.DataDir, "registry", cfg.Registry.Driver)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("web server: %w", err)
	}
	log.Info("sallyport shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := ws.Shutdown(sctx); err != nil && !errors.Is(err, web.ErrServerClosed) {
		return fmt.Errorf("shut down web server: %w", err)
	}
	return nil
}

// metrics are the bastion's Prometheus series, on a registry of its own.
type metrics struct {
	registry  *prometheus.Registry
	decisions *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_decisions_total",
			Help: "Admission decisions by result and reason code (a denial counts once per reason).",
		}, []string{"result", "reason"}),
	}
	ver, commit := buildVersion()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sallyport_build_info",
		Help: "Always 1; the labels say which sallyport is running.",
	}, []string{"version", "commit", "goversion"})
	build.WithLabelValues(ver, commit, runtime.Version()).Set(1)
	m.registry.MustRegister(build, m.decisions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
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
