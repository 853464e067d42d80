package auditexport

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the export series, labelled by sink name.
type Metrics struct {
	pending   *prometheus.GaugeVec
	oldest    *prometheus.GaugeVec
	failures  *prometheus.CounterVec
	exported  *prometheus.CounterVec
	collector []prometheus.Collector
}

// NewMetrics makes the series; register Collectors on the registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sallyport_audit_export_pending",
			Help: "Audit events waiting in the outbox for the sink (read every few seconds by the replica that runs it).",
		}, []string{"sink"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sallyport_audit_export_oldest_pending_seconds",
			Help: "Age of the oldest audit event the sink has not had yet; 0 when none waits.",
		}, []string{"sink"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_audit_export_failures_total",
			Help: "Deliveries to the sink that failed (and are retried).",
		}, []string{"sink"}),
		exported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_audit_export_events_total",
			Help: "Audit events this process delivered to the sink.",
		}, []string{"sink"}),
	}
	m.collector = []prometheus.Collector{m.pending, m.oldest, m.failures, m.exported}
	return m
}

// Collectors returns the series to register.
func (m *Metrics) Collectors() []prometheus.Collector { return m.collector }

// Init reports every sink at zero before its first delivery.
func (m *Metrics) Init(sinks []string) {
	if m == nil {
		return
	}
	for _, s := range sinks {
		m.failures.WithLabelValues(s)
		m.exported.WithLabelValues(s)
		m.pending.WithLabelValues(s)
		m.oldest.WithLabelValues(s)
	}
}

func (m *Metrics) lag(sink string, n int, oldest time.Time) {
	m.pending.WithLabelValues(sink).Set(float64(n))
	age := 0.0
	if !oldest.IsZero() {
		age = time.Since(oldest).Seconds()
	}
	m.oldest.WithLabelValues(sink).Set(age)
}

func (m *Metrics) failed(sink string) {
	if m != nil {
		m.failures.WithLabelValues(sink).Inc()
	}
}

func (m *Metrics) delivered(sink string, n int) {
	if m != nil && n > 0 {
		m.exported.WithLabelValues(sink).Add(float64(n))
	}
}
