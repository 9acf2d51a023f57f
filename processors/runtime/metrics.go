package runtime

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the runtime's Prometheus metrics, labelled by processor.
type Metrics struct {
	recordsIn        *prometheus.CounterVec
	recordsOut       *prometheus.CounterVec
	processSeconds   *prometheus.HistogramVec
	commitSeconds    *prometheus.HistogramVec
	commits          *prometheus.CounterVec
	aborts           *prometheus.CounterVec
	lag              *prometheus.GaugeVec
	restoreRemaining *prometheus.GaugeVec
	restored         *prometheus.CounterVec
	storeBytes       *prometheus.GaugeVec
	timersFired      *prometheus.CounterVec
	quarantined      *prometheus.CounterVec
	skipped          *prometheus.CounterVec
	coalesced        *prometheus.CounterVec
	restarts         *prometheus.CounterVec

	// storeMu guards stores: the disk usage of each instance's store, by
	// processor, so that several instances of a stage in one process
	// (process --instances) report their sum.
	storeMu sync.Mutex
	stores  map[string]map[*Instance]int64
}

// setStoreBytes records the disk usage of in's store, n (-1: the instance
// is gone), and sets the stage's gauge to the sum over its instances.
func (m *Metrics) setStoreBytes(in *Instance, n int64) {
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	if m.stores == nil {
		m.stores = map[string]map[*Instance]int64{}
	}
	by := m.stores[in.name]
	if by == nil {
		by = map[*Instance]int64{}
		m.stores[in.name] = by
	}
	if n < 0 {
		delete(by, in)
	} else {
		by[in] = n
	}
	var sum int64
	for _, b := range by {
		sum += b
	}
	m.storeBytes.WithLabelValues(in.name).Set(float64(sum))
}

// NewMetrics creates the metrics and registers them on reg (nil: not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_records_in_total", Help: "Input records processed (committed or not).",
		}, []string{"processor", "topic"}),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_records_out_total", Help: "Output records produced (committed or not); changelog records are not counted.",
		}, []string{"processor", "topic"}),
		processSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "usagestream_processor_process_seconds", Help: "Time to process one poll of records, before the commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"processor"}),
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "usagestream_processor_commit_seconds", Help: "Time to commit a transaction and write its state to the local store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"processor"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_transactions_committed_total", Help: "Transactions committed.",
		}, []string{"processor"}),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_transactions_aborted_total", Help: "Transactions aborted, by reason: rebalance (routine: the records are processed again by their owner), produce_error (a record could not be produced; the instance stops), stage_error (the stage failed on an input; the instance stops).",
		}, []string{"processor", "reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "usagestream_processor_consumer_lag_records", Help: "Offsets between the last processed record and the partition's high watermark; 0 once a poll finds nothing left to read (the commit markers of transactional inputs and aborted records, never consumed, are not lag).",
		}, []string{"processor", "topic", "partition"}),
		restoreRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "usagestream_processor_restore_remaining_records", Help: "Changelog records left to restore into the local store.",
		}, []string{"processor", "partition"}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_restored_records_total", Help: "Changelog records applied to the local store during restore.",
		}, []string{"processor"}),
		storeBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "usagestream_processor_store_bytes", Help: "Size of the local state store on disk.",
		}, []string{"processor"}),
		timersFired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_timers_fired_total", Help: "Timers fired.",
		}, []string{"processor", "kind"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_records_quarantined_total", Help: "Input records that could not be decoded (poison) and went to the stage's quarantine topic instead of failing the stage (committed or not).",
		}, []string{"processor", "topic"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_records_skipped_total", Help: "Input records skipped because they are re-fed from a quarantine to another consumer (committed or not).",
		}, []string{"processor", "topic"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_records_coalesced_total", Help: "Output records not produced because a later output of the same transaction replaced or undid them (Out.Coalesce; committed or not).",
		}, []string{"processor"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_processor_restarts_total", Help: "Times a processor stopped on an error and was started again (run, process).",
		}, []string{"processor"}),
	}
	if reg != nil {
		reg.MustRegister(m.recordsIn, m.recordsOut, m.processSeconds, m.commitSeconds, m.commits, m.aborts,
			m.lag, m.restoreRemaining, m.restored, m.storeBytes, m.timersFired, m.quarantined, m.skipped, m.coalesced, m.restarts)
	}
	return m
}

// Restarted counts a restart of processor (its supervisor restarts it after
// a failure).
func (m *Metrics) Restarted(processor string) { m.restarts.WithLabelValues(processor).Inc() }
