package recorder

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the recorder's Prometheus collectors. The caller registers
// Collectors() on its own registry; a nil *Metrics records nothing.
type Metrics struct {
	liveSessions   prometheus.Gauge
	recordedBytes  prometheus.Counter
	droppedBytes   prometheus.Counter
	uploadedBytes  prometheus.Counter
	uploadFailures prometheus.Counter
	storeUp        prometheus.Gauge
	spoolSessions  prometheus.Gauge
}

// NewMetrics creates the collectors, unregistered.
func NewMetrics() *Metrics {
	return &Metrics{
		liveSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sallyport_recorder_live_sessions", Help: "Sessions being recorded now."}),
		recordedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_recorder_recorded_bytes_total", Help: "Terminal bytes written to the spool."}),
		droppedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_recorder_dropped_bytes_total", Help: "Bytes not recorded because the spool failed or could not keep up."}),
		uploadedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_recorder_uploaded_bytes_total", Help: "Bytes the store confirmed."}),
		uploadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_recorder_upload_failures_total", Help: "Failed upload attempts; each is retried."}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sallyport_recorder_store_up", Help: "1 when the last upload succeeded, 0 while the store is unreachable."}),
		spoolSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sallyport_recorder_spool_sessions", Help: "Sessions with objects in the spool waiting for upload."}),
	}
}

// Collectors lists every collector, for prometheus.Registerer.MustRegister.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.liveSessions, m.recordedBytes, m.droppedBytes,
		m.uploadedBytes, m.uploadFailures, m.storeUp, m.spoolSessions}
}

func (m *Metrics) addLive(d float64) {
	if m != nil {
		m.liveSessions.Add(d)
	}
}

func (m *Metrics) recorded(n int) {
	if m != nil {
		m.recordedBytes.Add(float64(n))
	}
}

func (m *Metrics) dropped(n int) {
	if m != nil {
		m.droppedBytes.Add(float64(n))
	}
}

func (m *Metrics) uploaded(n int64) {
	if m != nil {
		m.uploadedBytes.Add(float64(n))
		m.storeUp.Set(1)
	}
}

func (m *Metrics) uploadFailed() {
	if m != nil {
		m.uploadFailures.Inc()
		m.storeUp.Set(0)
	}
}

func (m *Metrics) spooled(n int) {
	if m != nil {
		m.spoolSessions.Set(float64(n))
	}
}
