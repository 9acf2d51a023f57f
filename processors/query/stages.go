package query

import (
	"net/http"

	dto "github.com/prometheus/client_model/go"
)

// StageStatus is what this process's metrics say of one stage.
type StageStatus struct {
	Stage string `json:"stage"`
	// RecordsIn and RecordsOut count since this process started, committed
	// or not.
	RecordsIn  float64 `json:"records_in"`
	RecordsOut float64 `json:"records_out"`
	// Lag is the records left to read over the partitions this process
	// owns (usagestream_processor_consumer_lag_records).
	Lag                   float64            `json:"lag"`
	RestoreRemaining      float64            `json:"restore_remaining"`
	Restored              float64            `json:"restored"`
	TransactionsCommitted float64            `json:"transactions_committed"`
	Aborted               map[string]float64 `json:"aborted"` // by reason
	Quarantined           float64            `json:"quarantined"`
	Restarts              float64            `json:"restarts"`
}

// SinkStatus is what this process's metrics say of one sink.
type SinkStatus struct {
	Sink        string  `json:"sink"`
	Events      float64 `json:"events"`
	Lag         float64 `json:"lag"`
	WriteErrors float64 `json:"write_errors"`
	Quarantined float64 `json:"quarantined"`
	Restarts    float64 `json:"restarts"`
}

// Stages is the answer of GET /v1/stages: the stages and sinks this process
// runs, from its own metrics (another instance's are on its own /v1/stages).
type Stages struct {
	Stages []StageStatus `json:"stages"`
	Sinks  []SinkStatus  `json:"sinks"`
}

func (s *Server) stages(w http.ResponseWriter, _ *http.Request) {
	out := Stages{Stages: []StageStatus{}, Sinks: []SinkStatus{}}
	if s.cfg.Gatherer == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	mfs, err := s.cfg.Gatherer.Gather()
	if err != nil {
		// Gather returns what it could with the error; the status shows what
		// there is.
		s.warnOnce("gather", "gathering the metrics for /v1/stages", "err", err)
	}
	stages := map[string]*StageStatus{}
	sinks := map[string]*SinkStatus{}
	stage := func(name string) *StageStatus {
		if stages[name] == nil {
			stages[name] = &StageStatus{Stage: name, Aborted: map[string]float64{}}
		}
		return stages[name]
	}
	sink := func(name string) *SinkStatus {
		if sinks[name] == nil {
			sinks[name] = &SinkStatus{Sink: name}
		}
		return sinks[name]
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := value(m)
			p, k := label(m, "processor"), label(m, "sink")
			switch mf.GetName() {
			case "usagestream_processor_records_in_total":
				stage(p).RecordsIn += v
			case "usagestream_processor_records_out_total":
				stage(p).RecordsOut += v
			case "usagestream_processor_consumer_lag_records":
				stage(p).Lag += v
			case "usagestream_processor_restore_remaining_records":
				stage(p).RestoreRemaining += v
			case "usagestream_processor_restored_records_total":
				stage(p).Restored += v
			case "usagestream_processor_transactions_committed_total":
				stage(p).TransactionsCommitted += v
			case "usagestream_processor_transactions_aborted_total":
				stage(p).Aborted[label(m, "reason")] += v
			case "usagestream_processor_records_quarantined_total":
				stage(p).Quarantined += v
			case "usagestream_processor_restarts_total":
				stage(p).Restarts += v
			case "usagestream_sink_events_total":
				sink(k).Events += v
			case "usagestream_sink_lag_records":
				sink(k).Lag += v
			case "usagestream_sink_write_errors_total":
				sink(k).WriteErrors += v
			case "usagestream_sink_records_quarantined_total":
				sink(k).Quarantined += v
			case "usagestream_sink_restarts_total":
				sink(k).Restarts += v
			}
		}
	}
	for _, n := range sortedKeys(stages) {
		out.Stages = append(out.Stages, *stages[n])
	}
	for _, n := range sortedKeys(sinks) {
		out.Sinks = append(out.Sinks, *sinks[n])
	}
	writeJSON(w, http.StatusOK, out)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}
