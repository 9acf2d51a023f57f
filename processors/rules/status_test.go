package rules

import "testing"

// TestTenureStatus_A2_A4_A8: the status the query API shows is the one the
// rules derive: deleted (A8) over terminated (A4) over superseded by a later
// tenure not deleted (A2) over active.
func TestTenureStatus_A2_A4_A8(t *testing.T) {
	t.Parallel()
	sp := &ServicePoint{Tenures: []Tenure{
		{Seq: 0, AccountID: "A0", ActiveDate: D("20230101")},                              // a later live tenure: superseded
		{Seq: 1, AccountID: "A1", ActiveDate: D("20230201"), InactiveDate: D("20230301")}, // terminated
		{Seq: 2, AccountID: "A2", ActiveDate: D("20230401")},                              // the last live one: active
		{Seq: 3, AccountID: "A3", ActiveDate: D("20230501"), Deleted: true},               // deleted, supersedes no one
	}}
	want := []string{"superseded", "terminated", "active", "deleted"}
	for i, w := range want {
		if got := sp.TenureStatus(i); got != w {
			t.Errorf("tenure %d: %s, want %s", i, got, w)
		}
	}
	if o := (OpenAnomaly{Code: AnomalyUsageGap}); o.Rule() != "U2" {
		t.Errorf("USAGE_GAP cites %q, want U2", o.Rule())
	}
	if o := (OpenAnomaly{Code: AnomalyDeletionRefused}); o.Rule() != "" {
		t.Errorf("DELETION_REFUSED is reported, not kept open, yet cites %q", o.Rule())
	}
}
