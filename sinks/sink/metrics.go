package sink

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the loop's Prometheus metrics, labelled by sink, shared by
// every sink of a process.
type Metrics struct {
	events       *prometheus.CounterVec
	batches      *prometheus.CounterVec
	writeSeconds *prometheus.HistogramVec
	writeErrors  *prometheus.CounterVec
	delay        *prometheus.HistogramVec
	lag          *prometheus.GaugeVec
	quarantined  *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	restarts     *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_sink_events_total", Help: "Events delivered and committed, redeliveries included.",
		}, []string{"sink", "topic"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_sink_batches_total", Help: "Batches written and committed.",
		}, []string{"sink"}),
		writeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "usagestream_sink_write_seconds", Help: "Time of one write attempt of a batch to the destination.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"sink"}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_sink_write_errors_total", Help: "Failed write attempts (each retried, unless permanent).",
		}, []string{"sink"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "usagestream_sink_delay_seconds", Help: "From the oldest event of a batch being produced to its offsets being committed after the write.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"sink"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "usagestream_sink_lag_records", Help: "Offsets between the last delivered record and the partition's high watermark; 0 once a poll finds nothing left to read (the commit markers of transactional topics, never delivered, are not lag).",
		}, []string{"sink", "topic", "partition"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_sink_records_quarantined_total", Help: "Records that could not be decoded, sent to the sink's quarantine topic (re-feed with replay --quarantine sink-NAME).",
		}, []string{"sink", "topic"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_sink_records_skipped_total", Help: "Re-fed records addressed to another consumer (replay --quarantine), skipped.",
		}, []string{"sink", "topic"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_sink_restarts_total", Help: "Times a sink stopped on an error and was started again after a back-off (run, sink).",
		}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.batches, m.writeSeconds, m.writeErrors, m.delay, m.lag, m.quarantined, m.skipped, m.restarts)
	}
	return m
}

// Restarted counts a restart of sink (its supervisor starts it again after
// a failure).
func (m *Metrics) Restarted(sink string) { m.restarts.WithLabelValues(sink).Inc() }
