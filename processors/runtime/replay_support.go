package runtime

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// This file is what a replay (processors/replay) needs from the runtime's
// metrics: the record counts of a run. Deleting a stage's state through its
// changelog is ChangelogTombstone and ChangelogCleared (changelog.go).

// RecordTotals sums the input records processed and the output records
// produced (changelog records not counted) over every processor, committed
// or not.
func (m *Metrics) RecordTotals() (in, out float64) {
	return sumCounter(m.recordsIn), sumCounter(m.recordsOut)
}

func sumCounter(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	total := 0.0
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err == nil {
			total += d.GetCounter().GetValue()
		}
	}
	return total
}
