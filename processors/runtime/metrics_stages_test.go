package runtime

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDeclareCreatesEveryStageSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Declare("interval", []string{"billing.v1", "intervals.v1"}, []string{"anomalies.v1"})
	if n := testutil.CollectAndCount(m.recordsIn); n != 2 {
		t.Errorf("records_in series: %d, want one per input", n)
	}
	if n := testutil.CollectAndCount(m.recordsOut); n != 1 {
		t.Errorf("records_out series: %d, want one per output", n)
	}
	if v := testutil.ToFloat64(m.restarts.WithLabelValues("interval")); v != 0 {
		t.Errorf("restarts = %v, want 0", v)
	}
	if n := testutil.CollectAndCount(m.restarts); n != 1 {
		t.Errorf("restarts series: %d, want the stage's", n)
	}
}
