package report_test

import (
	"testing"

	"github.com/usagestream/usagestream/processors/validate/report"
)

// TestCompareStatuses: a service point is new, fixed, persisting (a rule's
// finding in both rounds) or changed (findings in both, none of the same
// rule); counts are per (rule, service point); the list is capped by the
// report's examples and the statuses counted in full.
func TestCompareStatuses(t *testing.T) {
	t.Parallel()
	prev := &report.Report{OpenByServicePoint: map[string]map[string]int64{
		"A": {"U2": 2}, "B": {"U3": 1}, "C": {"U2": 1}, "D": {"A3": 1}}}
	cur := &report.Report{ExamplesPerGroup: 3, OpenByServicePoint: map[string]map[string]int64{
		"A": {"U2": 1}, "B": {"U2": 1}, "E": {"U9": 1}}}
	report.Compare(prev, cur)
	c := cur.Comparison
	if c.Fixed != 4 || c.New != 2 || c.Persisting != 1 {
		t.Errorf("fixed %d new %d persisting %d, want 4, 2, 1", c.Fixed, c.New, c.Persisting)
	}
	want := map[string]int64{"new": 1, "changed": 1, "persisting": 1, "fixed": 2}
	for k, v := range want {
		if c.ByStatus[k] != v {
			t.Errorf("status %s: %d, want %d", k, c.ByStatus[k], v)
		}
	}
	if len(c.ServicePoints) != 3 || c.ServicePoints[0].ServicePointID != "E" || c.ServicePoints[1].ServicePointID != "B" || c.ServicePoints[2].ServicePointID != "A" {
		t.Errorf("listed %+v", c.ServicePoints)
	}
}
