package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/producers/ingest"
)

// ingestMetrics are the metrics of a long-running `ingest --watch`: what
// each file gave, and when the last one came, so that a feed gone quiet
// can be alerted on.
type ingestMetrics struct {
	files     *prometheus.CounterVec
	rows      *prometheus.CounterVec
	seconds   prometheus.Histogram
	retries   prometheus.Counter
	lastFile  prometheus.Gauge
	lastError prometheus.Gauge
}

func newIngestMetrics(reg prometheus.Registerer) *ingestMetrics {
	m := &ingestMetrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_ingest_files_total", Help: "Files ingested from the drop folder, by outcome: completed, skipped (same bytes before), failed (unreadable past a line).",
		}, []string{"status"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_ingest_rows_total", Help: "Data rows of the files, by outcome: read, published, rejected (read = published + rejected).",
		}, []string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "usagestream_ingest_file_seconds", Help: "Time to ingest one file.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "usagestream_ingest_retries_total", Help: "Files left in the drop folder to retry because Kafka or the registry failed.",
		}),
		lastFile: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "usagestream_ingest_last_file_timestamp_seconds", Help: "When the last file was ingested (Unix time); 0 before the first.",
		}),
		lastError: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "usagestream_ingest_last_retry_timestamp_seconds", Help: "When an ingestion last had to be retried (Unix time); 0 if never.",
		}),
	}
	for _, s := range []ingest.Status{ingest.Completed, ingest.Skipped, ingest.Failed} {
		m.files.WithLabelValues(string(s))
	}
	for _, o := range []string{"read", "published", "rejected"} {
		m.rows.WithLabelValues(o)
	}
	reg.MustRegister(m.files, m.rows, m.seconds, m.retries, m.lastFile, m.lastError)
	return m
}

// observe records one file's result.
func (m *ingestMetrics) observe(res ingest.Result) {
	if m == nil {
		return
	}
	m.files.WithLabelValues(string(res.Status)).Inc()
	m.rows.WithLabelValues("read").Add(float64(res.Read))
	m.rows.WithLabelValues("published").Add(float64(res.Published))
	m.rows.WithLabelValues("rejected").Add(float64(res.Rejected))
	m.seconds.Observe(res.Elapsed.Seconds())
	m.lastFile.Set(float64(time.Now().Unix()))
}

// retry records an ingestion interrupted by Kafka or the registry.
func (m *ingestMetrics) retry() {
	if m == nil {
		return
	}
	m.retries.Inc()
	m.lastError.Set(float64(time.Now().Unix()))
}
