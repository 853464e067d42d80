package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy"
)

// TestSessionsGauge: the sessions gauge counts the live table by protocol
// and state at each scrape, with every served protocol present at 0.
func TestSessionsGauge(t *testing.T) {
	live := &proxy.Live{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(liveSessions{live: live, protocols: []string{"ssh", "postgres", "mysql"}})
	scrape := func() string {
		w := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		return w.Body.String()
	}
	begin := func(protocol string) *proxy.Session {
		return live.Begin(context.Background(), protocol, iga.Request{Identity: "svc-backup"}, iga.Decision{Allow: true}, time.Now())
	}
	a, _ := begin("ssh"), begin("ssh")
	pg := begin("postgres")
	require.True(t, live.Kill(pg.ID, "runaway query"))
	want := `# HELP sallyport_sessions Sessions this process proxies now, by protocol and state (live, or ending: killed, refused or shutting down).
# TYPE sallyport_sessions gauge
sallyport_sessions{protocol="mysql",state="ending"} 0
sallyport_sessions{protocol="mysql",state="live"} 0
sallyport_sessions{protocol="postgres",state="ending"} 1
sallyport_sessions{protocol="postgres",state="live"} 0
sallyport_sessions{protocol="ssh",state="ending"} 0
sallyport_sessions{protocol="ssh",state="live"} 2
`
	assert.Equal(t, want, scrape())

	live.End(a)
	live.End(pg)
	assert.Equal(t, strings.NewReplacer(`"postgres",state="ending"} 1`, `"postgres",state="ending"} 0`,
		`"ssh",state="live"} 2`, `"ssh",state="live"} 1`).Replace(want), scrape(), "ended sessions leave the gauge")
}
