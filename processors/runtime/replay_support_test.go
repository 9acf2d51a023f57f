package runtime

import (
	"testing"
)

func TestRecordTotals(t *testing.T) {
	m := NewMetrics(nil)
	m.recordsIn.WithLabelValues("a", "t1").Add(3)
	m.recordsIn.WithLabelValues("b", "t2").Add(4)
	m.recordsOut.WithLabelValues("a", "o").Add(5)
	if in, out := m.RecordTotals(); in != 7 || out != 5 {
		t.Fatalf("RecordTotals = %v, %v; want 7, 5", in, out)
	}
}
