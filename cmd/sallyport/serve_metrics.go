package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/sallyport/proxy"
)

// Session states the sessions gauge reports. A session is ending once it
// was killed, refused on re-admission or told to stop by shutdown, until
// its connection has closed.
const (
	sessionLive   = "live"
	sessionEnding = "ending"
)

var sessionsDesc = prometheus.NewDesc("sallyport_sessions",
	"Sessions this process proxies now, by protocol and state (live, or ending: killed, refused or shutting down).",
	[]string{"protocol", "state"}, nil)

// liveSessions reads the live table at each scrape, so the gauge is never
// out of step with it. Every protocol serve listens for is reported, at 0
// when idle.
type liveSessions struct {
	live      *proxy.Live
	protocols []string
}

func (c liveSessions) Describe(ch chan<- *prometheus.Desc) { ch <- sessionsDesc }

func (c liveSessions) Collect(ch chan<- prometheus.Metric) {
	type key struct{ protocol, state string }
	n := map[key]int{}
	for _, p := range c.protocols {
		n[key{p, sessionLive}], n[key{p, sessionEnding}] = 0, 0
	}
	for _, s := range c.live.Snapshot() {
		state := sessionLive
		if s.Context().Err() != nil {
			state = sessionEnding
		}
		n[key{s.Protocol, state}]++
	}
	for k, v := range n {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(v), k.protocol, k.state)
	}
}

// servedProtocols are the protocols serve listens for: those of the
// config's targets.
func servedProtocols(cfg *Config) []string {
	var out []string
	for _, p := range []string{"ssh", "postgres", "mysql"} {
		if cfg.hasTargetKind(p) {
			out = append(out, p)
		}
	}
	return out
}
