package runtime

import (
	"testing"
)

func TestChangelogTombstones(t *testing.T) {
	zero := make([]byte, 8)
	one := []byte{0, 0, 0, 0, 0, 0, 0, 1}
	for _, c := range []struct {
		name       string
		key, value []byte
		holds      bool
	}{
		{"state", clStateKey([]byte("sp-1")), []byte("x"), true},
		{"deleted state", clStateKey([]byte("sp-1")), nil, false},
		{"timer", clTimerKey(WallClock, []byte("sp-1")), one, true},
		{"cancelled timer", clTimerKey(WallClock, []byte("sp-1")), nil, false},
		{"event time", []byte{clWM}, one, true},
		{"event time back to zero", []byte{clWM}, zero, false},
	} {
		if got := ChangelogHolds(c.key, c.value); got != c.holds {
			t.Errorf("%s: ChangelogHolds = %v, want %v", c.name, got, c.holds)
		}
	}
	if v := ChangelogTombstone([]byte{clWM}); len(v) != 8 || ChangelogHolds([]byte{clWM}, v) {
		t.Errorf("the event time's tombstone %v is not a zero event time", v)
	}
	if ChangelogTombstone(clStateKey([]byte("k"))) != nil {
		t.Error("a state's tombstone is not nil")
	}
}

func TestRecordTotals(t *testing.T) {
	m := NewMetrics(nil)
	m.recordsIn.WithLabelValues("a", "t1").Add(3)
	m.recordsIn.WithLabelValues("b", "t2").Add(4)
	m.recordsOut.WithLabelValues("a", "o").Add(5)
	if in, out := m.RecordTotals(); in != 7 || out != 5 {
		t.Fatalf("RecordTotals = %v, %v; want 7, 5", in, out)
	}
}
