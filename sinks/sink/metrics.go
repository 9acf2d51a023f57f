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
			Name: "usagestream_sink_lag_records", Help: "Offsets between the last delivered record and the partition's high watermark. Transactional topics end with a commit marker that is never delivered, so a caught-up sink shows 1.",
		}, []string{"sink", "topic", "partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.batches, m.writeSeconds, m.writeErrors, m.delay, m.lag)
	}
	return m
}
