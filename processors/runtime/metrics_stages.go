package runtime

// Declare creates the series of a stage at zero: its per-stage metrics, and
// the per-topic counters for its inputs and declared outputs. A series that
// exists before its first event lets a dashboard or an alert tell "none
// yet" from "this stage is not running", and rate() sees the first
// increment. The labels come from the topology (processors/topology), so
// every stage and topic has its series whether or not it has seen records.
func (m *Metrics) Declare(stage string, inputs, outputs []string) {
	m.commits.WithLabelValues(stage)
	for _, r := range abortReasons {
		m.aborts.WithLabelValues(stage, r)
	}
	m.restored.WithLabelValues(stage)
	m.restarts.WithLabelValues(stage)
	m.processSeconds.WithLabelValues(stage)
	m.commitSeconds.WithLabelValues(stage)
	for _, in := range inputs {
		m.recordsIn.WithLabelValues(stage, in)
		m.quarantined.WithLabelValues(stage, in)
		m.skipped.WithLabelValues(stage, in)
	}
	for _, out := range outputs {
		m.recordsOut.WithLabelValues(stage, out)
	}
}
