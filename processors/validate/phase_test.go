package validate

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/records"
)

func months(sp string, from, to int, over hand) []hand { // months are yyyy*12+m-1
	var out []hand
	for m := from; m <= to; m++ {
		h := hand{"service_point_id": sp, "account_id": "A" + sp, "premise_id": "P" + sp, "customer_id": "C" + sp}
		for k, v := range over {
			h[k] = v
		}
		out = append(out, month(fmt.Sprintf("%04d%02d", m/12, m%12+1), h))
	}
	return out
}

// TestPhaseHistorical (issue 17): a historical file must hold usage for
// every account, active or inactive, and span the months of history the
// policy needs; the sample phase does not ask it.
func TestPhaseHistorical(t *testing.T) {
	dir := t.TempDir()
	accts := append(months("SP1", 2023*12, 2023*12, nil), months("SP2", 2023*12, 2023*12, hand{"inactive_date": "20230630"})...)
	cust := handLayoutFile(t, dir, records.LayoutCustomer, "20240101000000", "", accts...)
	usage := handLayoutFile(t, dir, records.LayoutUsage, "20240101000000", "", months("SP1", 2023*12, 2023*12+11, nil)...)
	files := []string{cust, usage}

	rep := mustRun(t, files, Options{})
	for _, c := range rep.Checks {
		if c.ID == "accounts-with-usage" || c.ID == "span" {
			t.Errorf("the sample phase runs the historical check %s", c.ID)
		}
	}
	rep = mustRun(t, files, Options{Phase: PhaseHistorical})
	if rep.Phase != PhaseHistorical || rep.NoUsageCount != 1 || len(rep.NoUsage) != 1 || rep.NoUsage[0] != "SP2" {
		t.Errorf("phase %s, no usage %v (%d)", rep.Phase, rep.NoUsage, rep.NoUsageCount)
	}
	if c := checkNamed(t, rep, "history of every account"); c.Pass || !strings.Contains(c.Detail, "SP2") {
		t.Errorf("accounts with usage: %+v", c)
	}
	if c := checkNamed(t, rep, "months of history in the file"); c.Pass || c.Value != 12 {
		t.Errorf("span: %+v, want 12 months, short of 13", c)
	}
	// Thirteen months of usage for both: both checks pass.
	usage = handLayoutFile(t, dir, records.LayoutUsage, "20240101000000", "", append(months("SP1", 2023*12-1, 2023*12+11, nil), months("SP2", 2023*12, 2023*12+5, nil)...)...)
	rep = mustRun(t, []string{cust, usage}, Options{Phase: PhaseHistorical})
	if c := checkNamed(t, rep, "history of every account"); !c.Pass {
		t.Errorf("accounts with usage: %+v", c)
	}
	if c := checkNamed(t, rep, "months of history in the file"); !c.Pass {
		t.Errorf("span: %+v", c)
	}
}

// TestPhaseIncremental (issue 17): an incremental file is judged against
// the state the run of the loaded files saved: a gap after the loaded
// history and a changed active date on file are reported before the file
// is loaded; one that continues the history passes; a new service point is
// no break.
func TestPhaseIncremental(t *testing.T) {
	dir, state := t.TempDir(), filepath.Join(t.TempDir(), "state")
	hist := handFile(t, dir, "20240101000000", append(months("SP1", 2023*12, 2023*12+11, hand{"active_date": "20221201"}),
		months("SP3", 2023*12, 2023*12+11, hand{"active_date": "20221201"})...)...)
	if rep := mustRun(t, []string{hist}, Options{Phase: PhaseHistorical, SaveState: state}); rep.Phase != PhaseHistorical {
		t.Fatal(rep.Phase)
	}
	if _, err := Run(t.Context(), []string{hist}, Options{Policy: rules.DefaultPolicy(), Phase: PhaseIncremental}); err == nil || !strings.Contains(err.Error(), "--state-from") {
		t.Errorf("incremental without a state: %v", err)
	}

	// SP1 skips January 2024; SP3's active date changes; SP4 is new.
	inc := handFile(t, t.TempDir(), "20240401000000", append(append(months("SP1", 2024*12+1, 2024*12+2, hand{"active_date": "20221201"}),
		months("SP3", 2024*12, 2024*12+2, hand{"active_date": "20230101"})...), months("SP4", 2024*12, 2024*12+2, hand{"active_date": "20231201"})...)...)
	rep := mustRun(t, []string{inc}, Options{Phase: PhaseIncremental, StateFrom: state})
	c := checkNamed(t, rep, "continues the loaded history")
	if c.Pass || rep.ContinuityCount != 2 {
		t.Fatalf("continuity %+v, findings %+v", c, rep.Continuity)
	}
	got := map[string]string{}
	for _, f := range rep.Continuity {
		got[f.ServicePointID] = f.Code
	}
	if got["SP1"] != rules.AnomalyUsageGap || got["SP3"] != rules.AnomalyActiveDateChanged || got["SP4"] != "" {
		t.Errorf("continuity findings %v", got)
	}
	// Without the state the same file shows no break.
	if rep := mustRun(t, []string{inc}, Options{}); rep.ContinuityCount != 0 || len(findings(rep, "U2", rules.AnomalyUsageGap)) != 0 {
		t.Errorf("the sample phase found continuity breaks: %+v", rep.Continuity)
	}
	// An incremental that continues: passes.
	good := handFile(t, t.TempDir(), "20240401000000", append(months("SP1", 2024*12, 2024*12+2, hand{"active_date": "20221201"}),
		months("SP3", 2024*12, 2024*12+2, hand{"active_date": "20221201"})...)...)
	if c := checkNamed(t, mustRun(t, []string{good}, Options{Phase: PhaseIncremental, StateFrom: state}), "continues the loaded history"); !c.Pass {
		t.Errorf("a continuing incremental: %+v", c)
	}
}
