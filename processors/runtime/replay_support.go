package runtime

import (
	"encoding/binary"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// This file is what a replay (processors/replay) needs from the runtime's
// private formats: deleting a stage's state through its changelog, and the
// record counts of a run. The changelog key layout stays in changelog.go.

// ChangelogHolds reports whether the changelog record (key, value) holds
// state a recompute must delete: a state, a timer, or an event time other
// than zero. Compaction keeps the latest record per key, so a replay reads
// the changelog, keeps the last record of each key, and tombstones those
// this reports.
func ChangelogHolds(key, value []byte) bool {
	if value == nil {
		return false
	}
	if len(key) == 1 && key[0] == clWM {
		// An event time back at zero is what a tombstone left (see
		// ChangelogTombstone); any other value is one to delete.
		return len(value) != 8 || binary.BigEndian.Uint64(value) != 0
	}
	return true
}

// ChangelogTombstone is the record value that deletes key from a stage's
// state when the changelog is restored: nil, except for the event time,
// which goes back to zero (its restore ignores a nil value).
func ChangelogTombstone(key []byte) []byte {
	if len(key) == 1 && key[0] == clWM {
		return make([]byte, 8)
	}
	return nil
}

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
