package rules

import "testing"

// Mixed scenarios: several rules at once, as real files bring them.

func TestScenarioMoveOutMoveIn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(months(full("SP1"), "2024-01", 4)...)
	newcomer := full("SP1").acct("A2", "20240501").who("C2", "P1").sec("W2")
	o1, _ := h.feed(newcomer.mon("2024-05", 1))
	expect(t, "move-in events", eventStrings(o1.AccountEvents), []string{
		"A2 SUPERSEDED SP1/A1/C1 20240501",
		"A2 ACTIVATED SP1/A2/C2 20240501",
	})
	// The old customer's final bill arrives after the new customer's first row.
	o1, _ = h.feed(full("SP1").inactive("20240430").per("20240430", 30, 103))
	expect(t, "late final bill", eventStrings(o1.AccountEvents), []string{"A4 TERMINATED SP1/A1/C1 20240430"})
	expect(t, "late final bill corrections", corrStrings(o1.Corrections), nil)
	expect(t, "memberships", memberStrings(o1.Memberships), []string{
		"C1/P1/SP1 inactive 20240101-20240430 [INACTIVE:A4:SP1:20240430]"})
	h.feed(full("SP1").acct("A2", "20240501").who("C2", "P1").sec("W2").mon("2024-06", 1))
	if got := h.now("C1", "P1", ProgramWebAccess); got != "INACTIVE:A4:SP1:20240430" {
		t.Errorf("old customer web access: %s", got)
	}
	if got := h.now("C2", "P1", ProgramCommunications); got != "eligible" {
		t.Errorf("new customer communications: %s", got)
	}
	if e := h.state()["C2/P1/communications"]; e.SecondaryID != "W2" {
		t.Errorf("new customer's secondary id: %q", e.SecondaryID)
	}
	// The final bill repeats April's value: a duplicate row (U10).
	expect(t, "anomalies", anomStrings(h.all1.Anomalies), []string{"U10 DUPLICATE_ROW SP1 20240401"})
}

func TestScenarioMeterExchangeChangesServicePointID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(months(full("SP-E-1"), "2024-01", 6)...)
	// The utility wrongly sends the same account under a new service point id.
	_, o2 := h.feed(full("SP-E-9").mon("2024-07", 1))
	expect(t, "replacement", eligStrings(o2), []string{
		"C1/P1 communications [SERVICE_POINT_CHANGED:S1:SP-E-9:20240701..20250630]",
		"C1/P1 neighbor_comparison [SERVICE_POINT_CHANGED:S1:SP-E-9:20240701..20250630]",
		"C1/P1 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240701 NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240701 INSUFFICIENT_HISTORY:I5::20240101]",
	})
	if got := h.now("C1", "P1", ProgramWebAccess); got != "eligible" {
		t.Errorf("web access is not blocked by a replacement: %s", got)
	}
	// It sends July again under the right id: the old service point did not
	// stop, so this is no replacement after all.
	_, o2 = h.feed(full("SP-E-1").mon("2024-07", 1))
	expect(t, "corrected", eligStrings(o2), []string{
		"C1/P1 communications [eligible]",
		"C1/P1 neighbor_comparison [eligible]",
		"C1/P1 dual_fuel_insights [NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [INSUFFICIENT_HISTORY:I5::20240101]",
	})
}

func TestScenarioHistoricalFileAfterIncrementals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	c2 := full("SP1").acct("A2", "20240701").who("C2", "P1")
	h.feed(months(c2, "2024-07", 6)...) // incrementals: the current customer
	n := len(h.elig)

	// The full historical file: the previous customer, then the current one again.
	hist := months(full("SP1"), "2024-01", 6)
	o1, _ := h.feed(hist[0])
	expect(t, "older account arrives", eventStrings(o1.AccountEvents), []string{
		"A2 ACTIVATED SP1/A1/C1 20240101",
		"A2 SUPERSEDED SP1/A1/C1 20240701",
	})
	expect(t, "hole before the current account", anomStrings(o1.Anomalies), []string{"U2 USAGE_GAP SP1 20240201..20260630"})
	for _, r := range hist[1:5] {
		if o1, _ := h.feed(r); len(o1.Anomalies) != 0 {
			t.Errorf("%s: the shrinking gap keeps its identity: %v", r.r.DateTo, anomStrings(o1.Anomalies))
		}
	}
	o1, _ = h.feed(hist[5])
	expect(t, "hole filled", anomStrings(o1.Anomalies), []string{"U2 USAGE_GAP SP1 20240201..20260630 cleared"})
	for _, r := range months(c2, "2024-07", 6) {
		o1, _ := h.feed(r)
		if len(o1.Corrections)+len(o1.AccountEvents) != 0 || len(o1.Anomalies) != 1 || o1.Anomalies[0].Code != AnomalyDuplicateRow {
			t.Errorf("%s sent again: only a duplicate row (U10): %+v", r.r.DateTo, o1)
		}
	}
	for _, e := range h.elig[n:] {
		if e.CustomerID == "C2" {
			t.Errorf("the current customer was never concerned: %v", eligStrings([]EligibilityChanged{e}))
		}
	}
	if got := h.now("C1", "P1", ProgramWebAccess); got != "SUPERSEDED:A2:SP1:20240701" {
		t.Errorf("previous customer: %s", got)
	}
	if sp := h.sp("SP1"); len(sp.Periods) != 12 || len(sp.Open) != 0 {
		t.Errorf("timeline: %d periods, %d open", len(sp.Periods), len(sp.Open))
	}
}

func TestScenarioNetMeteringSecondRows(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	p.NetMetering = true
	h := newHarness(t, p)
	h.feed(full("SP1").mon("2024-01", 300))
	n := len(h.elig)
	h.feed(full("SP1").mon("2024-01", -120), full("SP1").mon("2024-02", 280), full("SP1").mon("2024-02", -90))
	expect(t, "corrections", corrStrings(h.all1.Corrections), []string{
		"U4 EXACT SP1 20240131/31 300->-120 => 20240131/31",
		"U4 EXACT SP1 20240229/29 280->-90 => 20240229/29",
	})
	expect(t, "anomalies", anomStrings(h.all1.Anomalies), nil)
	expect(t, "eligibility", eligStrings(h.elig[n:]), nil)
}

func TestScenarioPropertyManagerDropsToTwo(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	for i, prem := range []string{"P1", "P2", "P3", "P4"} {
		sp := "SP" + prem[1:]
		h.feed(full(sp).who("C9", prem).acct("A"+prem, "20240101").mon("2024-01", float64(i)))
	}
	if got := h.now("C9", "P1", ProgramNeighborComparison); got != "PROPERTY_MANAGER:C2::20240101" {
		t.Fatalf("four premises: %s", got)
	}
	// A tenant takes over P4: three premises left, still a property manager.
	_, o2 := h.feed(full("SP4").who("C5", "P4").acct("A5", "20240201").mon("2024-02", 1))
	for _, e := range o2 {
		if e.CustomerID == "C9" && e.PremiseID != "P4" {
			t.Errorf("still three premises: %v", eligStrings([]EligibilityChanged{e}))
		}
	}
	// P3 terminated: two premises, neighbour comparisons come back at P1 and P2.
	_, o2 = h.feed(full("SP3").who("C9", "P3").acct("AP3", "20240101").inactive("20240229").mon("2024-02", 1))
	expect(t, "two premises", eligStrings(o2), []string{
		"C9/P1 neighbor_comparison [eligible]",
		"C9/P2 neighbor_comparison [eligible]",
		"C9/P3 communications [INACTIVE:A4:SP3:20240229]",
		"C9/P3 web_access [INACTIVE:A4:SP3:20240229]",
		"C9/P3 neighbor_comparison [INACTIVE:A4:SP3:20240229]",
		"C9/P3 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240229 NO_DUAL_FUEL:S2::20240101]",
		"C9/P3 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240229 INSUFFICIENT_HISTORY:I5::20240101]",
		"C9/P4 neighbor_comparison [SUPERSEDED:A2:SP4:20240201]",
	})
}

func TestScenarioGapAgesOutAfterTwoYears(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-03", 1))
	h.feed(months(full("SP1"), "2024-04", 12)...)
	h.feed(months(full("SP1").rate("MED1"), "2025-04", 11)...) // a medical rate from April 2025
	if got := h.now("C1", "P1", ProgramCommunications); got != "RATE_NOT_ALLOWED:A7:SP1:20250401 USAGE_GAP:U2:SP1:20240201..20260228" {
		t.Fatalf("before the horizon: %s", got)
	}
	_, o2 := h.feed(full("SP1").rate("MED1").mon("2026-03", 1))
	// The gap no longer holds; the rate still does, and the communications
	// block of dual fuel and disaggregation now dates from it: the earliest
	// communications reason that holds, not the one the block began with.
	expect(t, "after two years", eligStrings(o2), []string{
		"C1/P1 communications [RATE_NOT_ALLOWED:A7:SP1:20250401]",
		"C1/P1 neighbor_comparison [RATE_NOT_ALLOWED:A7:SP1:20250401]",
		"C1/P1 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20250401 NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20250401 INSUFFICIENT_HISTORY:I5::20240101]",
	})
	expect(t, "anomalies", anomStrings(h.all1.Anomalies), []string{
		"U2 USAGE_GAP SP1 20240201..20260228",
		"U2 USAGE_GAP SP1 20240201..20260228 cleared",
	})
}
