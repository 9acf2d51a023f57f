package rules

import "testing"

// Account rules A1-A9 (docs/rules.md), one test per rule id.

func TestA1FirstAccount(t *testing.T) {
	t.Parallel()
	t.Run("first account activates from its active_date", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		o1, o2 := h.feed(full("SP1").mon("2024-01", 1))
		expect(t, "events", eventStrings(o1.AccountEvents), []string{"A1 ACTIVATED SP1/A1/C1 20240101"})
		expect(t, "memberships", memberStrings(o1.Memberships), []string{"C1/P1/SP1 active 20240101-20240131 [eligible]"})
		expect(t, "eligibility", eligStrings(o2), []string{
			"C1/P1 communications [eligible]",
			"C1/P1 web_access [eligible]",
			"C1/P1 neighbor_comparison [eligible]",
			"C1/P1 dual_fuel_insights [NO_DUAL_FUEL:S2::20240101]",
			"C1/P1 disaggregation [INSUFFICIENT_HISTORY:I5::20240101]",
		})
	})
	t.Run("usage before any account is kept and judged when the account arrives", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		o1, _ := h.feed(usage("SP1").mon("2024-01", 1))
		if len(o1.Memberships)+len(o1.AccountEvents) != 0 {
			t.Errorf("usage alone: %+v", o1)
		}
		h.feed(usage("SP1").mon("2024-02", 1))
		o1, _ = h.feed(cust("SP1"))
		expect(t, "events", eventStrings(o1.AccountEvents), []string{"A1 ACTIVATED SP1/A1/C1 20240101"})
		expect(t, "memberships", memberStrings(o1.Memberships), []string{"C1/P1/SP1 active 20240101-20240229 [eligible]"})
	})
	t.Run("a second account from the same day is refused", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		h.feed(cust("SP1"))
		o1, _ := h.feed(cust("SP1").acct("A2", "20240101").who("C2", "P1"))
		expect(t, "anomalies", anomStrings(o1.Anomalies), []string{"A1 ACCOUNT_CONFLICT SP1 20240101"})
		expect(t, "events", eventStrings(o1.AccountEvents), nil)
		expect(t, "memberships", memberStrings(o1.Memberships), nil)
	})
}

func TestA2Supersede(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1))
	o1, o2 := h.feed(full("SP1").acct("A2", "20240301").who("C2", "P1").mon("2024-03", 1))
	expect(t, "events", eventStrings(o1.AccountEvents), []string{
		"A2 SUPERSEDED SP1/A1/C1 20240301",
		"A2 ACTIVATED SP1/A2/C2 20240301",
	})
	expect(t, "memberships", memberStrings(o1.Memberships), []string{
		"C1/P1/SP1 inactive 20240101-20240229 [SUPERSEDED:A2:SP1:20240301]",
		"C2/P1/SP1 active 20240301-20240331 [eligible]", // history before its active_date is hidden
	})
	expect(t, "eligibility", eligStrings(o2), []string{
		"C1/P1 communications [SUPERSEDED:A2:SP1:20240301]",
		"C1/P1 web_access [SUPERSEDED:A2:SP1:20240301]",
		"C1/P1 neighbor_comparison [SUPERSEDED:A2:SP1:20240301]",
		"C1/P1 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240301 NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240301 INSUFFICIENT_HISTORY:I5::20240101]",
		"C2/P1 communications [eligible]",
		"C2/P1 web_access [eligible]",
		"C2/P1 neighbor_comparison [eligible]",
		"C2/P1 dual_fuel_insights [NO_DUAL_FUEL:S2::20240301]",
		"C2/P1 disaggregation [INSUFFICIENT_HISTORY:I5::20240301]",
	})
	expect(t, "anomalies", anomStrings(h.all1.Anomalies), nil)

	// A gap before the new account's active_date is not its gap.
	h = newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1))
	o1, _ = h.feed(full("SP1").acct("A2", "20240301").who("C2", "P1").mon("2024-03", 1))
	expect(t, "vacancy anomaly", anomStrings(o1.Anomalies), []string{"U2 USAGE_GAP SP1 20240201..20260228"})
	expect(t, "vacancy memberships", memberStrings(o1.Memberships), []string{
		"C1/P1/SP1 inactive 20240101-20240131 [SUPERSEDED:A2:SP1:20240301]",
		"C2/P1/SP1 active 20240301-20240331 [eligible]",
	})
}

func TestA3ActiveDateChanged(t *testing.T) {
	t.Parallel()
	t.Run("later: A2 applies too, until the original date comes back", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1))
		o1, o2 := h.feed(full("SP1").acct("A1", "20240301").mon("2024-03", 1))
		expect(t, "anomalies", anomStrings(o1.Anomalies), []string{"A3 ACTIVE_DATE_CHANGED SP1 20240301"})
		expect(t, "events", eventStrings(o1.AccountEvents), []string{
			"A3 ACTIVE_DATE_CHANGED SP1/A1/C1 20240301",
			"A2 SUPERSEDED SP1/A1/C1 20240301",
			"A2 ACTIVATED SP1/A1/C1 20240301",
		})
		expect(t, "memberships", memberStrings(o1.Memberships), []string{
			"C1/P1/SP1 active 20240301-20240331 [ACTIVE_DATE_CHANGED:A3:SP1:20240301]"})
		expect(t, "communications", eligStrings(o2[:1]), []string{"C1/P1 communications [ACTIVE_DATE_CHANGED:A3:SP1:20240301]"})

		o1, _ = h.feed(full("SP1").acct("A1", "20240301").mon("2024-04", 1))
		if len(o1.Anomalies)+len(o1.AccountEvents) != 0 {
			t.Errorf("the same change again: %v %v", anomStrings(o1.Anomalies), eventStrings(o1.AccountEvents))
		}
		o1, o2 = h.feed(full("SP1").mon("2024-05", 1)) // active_date 2024-01-01 again
		expect(t, "restored anomalies", anomStrings(o1.Anomalies), []string{"A3 ACTIVE_DATE_CHANGED SP1 20240301 cleared"})
		expect(t, "restored events", eventStrings(o1.AccountEvents), []string{"A3 ACTIVE_DATE_CHANGED SP1/A1/C1 20240101"})
		expect(t, "restored memberships", memberStrings(o1.Memberships), []string{"C1/P1/SP1 active 20240101-20240531 [eligible]"})
		if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
			t.Errorf("communications after restore: %s", got)
		}
		if n := len(h.sp("SP1").Tenures); n != 1 {
			t.Errorf("%d tenures after restore, want 1", n)
		}
	})
	t.Run("earlier: flagged, the account keeps its date", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1))
		o1, _ := h.feed(full("SP1").acct("A1", "20231201").mon("2024-03", 1))
		expect(t, "anomalies", anomStrings(o1.Anomalies), []string{"A3 ACTIVE_DATE_CHANGED SP1 20231201"})
		expect(t, "events", eventStrings(o1.AccountEvents), []string{"A3 ACTIVE_DATE_CHANGED SP1/A1/C1 20231201"})
		expect(t, "memberships", memberStrings(o1.Memberships), []string{
			"C1/P1/SP1 active 20240101-20240331 [ACTIVE_DATE_CHANGED:A3:SP1:20231201]"})
	})
}

func TestA4Termination(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1))
	o1, o2 := h.feed(full("SP1").inactive("20240229").mon("2024-02", 1))
	expect(t, "events", eventStrings(o1.AccountEvents), []string{"A4 TERMINATED SP1/A1/C1 20240229"})
	expect(t, "memberships", memberStrings(o1.Memberships), []string{"C1/P1/SP1 inactive 20240101-20240229 [INACTIVE:A4:SP1:20240229]"})
	expect(t, "eligibility", eligStrings(o2), []string{
		"C1/P1 communications [INACTIVE:A4:SP1:20240229]",
		"C1/P1 web_access [INACTIVE:A4:SP1:20240229]",
		"C1/P1 neighbor_comparison [INACTIVE:A4:SP1:20240229]",
		"C1/P1 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240229 NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240229 INSUFFICIENT_HISTORY:I5::20240101]",
	})
}

func TestA5Reactivation(t *testing.T) {
	t.Parallel()
	terminated := func(t *testing.T) *harness {
		h := newHarness(t, DefaultPolicy())
		h.feed(full("SP1").mon("2024-01", 1), full("SP1").inactive("20240229").mon("2024-02", 1))
		return h
	}
	t.Run("valid: same account_id and active_date, empty inactive_date", func(t *testing.T) {
		h := terminated(t)
		o1, _ := h.feed(full("SP1").mon("2024-03", 1))
		expect(t, "events", eventStrings(o1.AccountEvents), []string{"A5 REACTIVATED SP1/A1/C1 20240301"})
		expect(t, "anomalies", anomStrings(o1.Anomalies), nil)
		expect(t, "memberships", memberStrings(o1.Memberships), []string{"C1/P1/SP1 active 20240101-20240331 [eligible]"})
		if got := h.now("C1", "P1", ProgramWebAccess); got != "eligible" {
			t.Errorf("web access: %s", got)
		}
	})
	t.Run("invalid: same account_id, another active_date", func(t *testing.T) {
		h := terminated(t)
		o1, _ := h.feed(full("SP1").acct("A1", "20240301").mon("2024-03", 1))
		expect(t, "anomalies", anomStrings(o1.Anomalies), []string{
			"A3 ACTIVE_DATE_CHANGED SP1 20240301",
			"A5 REACTIVATION_REFUSED SP1 20240301",
			"A10 USAGE_AFTER_FINAL_BILL SP1 20240301", // the account stays terminated
		})
		expect(t, "events", eventStrings(o1.AccountEvents), []string{
			"A3 ACTIVE_DATE_CHANGED SP1/A1/C1 20240301",
			"A5 REACTIVATION_REFUSED SP1/A1/C1 20240301",
		})
		if got := h.now("C1", "P1", ProgramCommunications); got != "ACTIVE_DATE_CHANGED:A3:SP1:20240301 INACTIVE:A4:SP1:20240229" {
			t.Errorf("communications: %s", got)
		}
		o1, _ = h.feed(full("SP1").acct("A1", "20240301").mon("2024-04", 1))
		expect(t, "the same attempt again", anomStrings(o1.Anomalies), []string{"A10 USAGE_AFTER_FINAL_BILL SP1 20240401"})
		// The right row later reactivates and clears both conditions.
		o1, _ = h.feed(full("SP1").mon("2024-05", 1))
		expect(t, "events after a valid row", eventStrings(o1.AccountEvents), []string{
			"A3 ACTIVE_DATE_CHANGED SP1/A1/C1 20240101",
			"A5 REACTIVATED SP1/A1/C1 20240501",
		})
		expect(t, "anomalies after a valid row", anomStrings(o1.Anomalies), []string{
			"A3 ACTIVE_DATE_CHANGED SP1 20240301 cleared",
			"A5 REACTIVATION_REFUSED SP1 20240301 cleared",
		})
	})
	t.Run("invalid: same account and date, terminated, a later file's row for a period before the final bill is history (U8)", func(t *testing.T) {
		h := terminated(t)
		h.file = "later.tsv"
		o1, _ := h.feed(full("SP1").mon("2024-01", 7)) // a late copy of January
		expect(t, "events", eventStrings(o1.AccountEvents), nil)
	})
	t.Run("valid: the last row of the file, for an older period, reactivates (A9)", func(t *testing.T) {
		h := terminated(t)
		o1, _ := h.feed(full("SP1").mon("2024-01", 7)) // the file's last row for the account
		expect(t, "events", eventStrings(o1.AccountEvents), []string{"A5 REACTIVATED SP1/A1/C1 20240101"})
	})
	t.Run("a new account after a termination is a move-in (A2), not a reactivation", func(t *testing.T) {
		h := terminated(t)
		o1, _ := h.feed(full("SP1").acct("A2", "20240301").who("C2", "P1").mon("2024-03", 1))
		expect(t, "events", eventStrings(o1.AccountEvents), []string{"A2 ACTIVATED SP1/A2/C2 20240301"})
		expect(t, "anomalies", anomStrings(o1.Anomalies), nil)
	})
}

func TestA6Lapse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 100))
	n := len(h.elig)
	h.feed(full("SP1").mon("2024-02", 0), full("SP1").mon("2024-03", 0), full("SP1").mon("2024-04", 80))
	expect(t, "events", eventStrings(h.all1.AccountEvents), []string{"A1 ACTIVATED SP1/A1/C1 20240101"})
	expect(t, "eligibility during the lapse", eligStrings(h.elig[n:]), nil)
}

func TestA7RateAllowlist(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1))
	o1, o2 := h.feed(full("SP1").rate("MED1").mon("2024-02", 1))
	expect(t, "events", eventStrings(o1.AccountEvents), []string{"A7 RATE_CHANGED SP1/A1/C1 20240201"})
	expect(t, "communications", eligStrings(o2[:1]), []string{"C1/P1 communications [RATE_NOT_ALLOWED:A7:SP1:20240201]"})
	if got := h.now("C1", "P1", ProgramWebAccess); got != "eligible" {
		t.Errorf("web access is not blocked by a rate: %s", got)
	}
	o1, o2 = h.feed(full("SP1").rate("R2").mon("2024-03", 1))
	expect(t, "events back", eventStrings(o1.AccountEvents), []string{"A7 RATE_CHANGED SP1/A1/C1 20240301"})
	expect(t, "communications back", eligStrings(o2[:1]), []string{"C1/P1 communications [eligible]"})

	t.Run("empty allowlist allows every code", func(t *testing.T) {
		p := DefaultPolicy()
		p.RateAllowlist = nil
		h := newHarness(t, p)
		h.feed(full("SP1").rate("MED1").mon("2024-01", 1))
		if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
			t.Errorf("communications: %s", got)
		}
	})
}

func TestA8Deletion(t *testing.T) {
	t.Parallel()
	t.Run("valid: the most recent account", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		h.feed(full("SP1").mon("2024-01", 1))
		o1, o2 := h.feed(full("SP1").del().mon("2024-02", 1))
		expect(t, "events", eventStrings(o1.AccountEvents), []string{"A8 DELETED SP1/A1/C1 20240201"})
		expect(t, "memberships", memberStrings(o1.Memberships), []string{"C1/P1/SP1 deleted - [INACTIVE:A8:SP1:20240201]"})
		expect(t, "web access", eligStrings(o2[1:2]), []string{"C1/P1 web_access [INACTIVE:A8:SP1:20240201]"})
		if n := len(h.sp("SP1").Periods); n != 2 {
			t.Errorf("the deletion row's usage: %d periods, want 2", n)
		}
	})
	t.Run("invalid: not the most recent account", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		h.feed(full("SP1").mon("2024-01", 1), full("SP1").acct("A2", "20240201").who("C2", "P1").mon("2024-02", 5))
		o1, o2 := h.feed(full("SP1").del().mon("2024-02", 9))
		expect(t, "events", eventStrings(o1.AccountEvents), []string{"A8 DELETION_REFUSED SP1/A1/C1 20240201"})
		expect(t, "anomalies", anomStrings(o1.Anomalies), []string{"A8 DELETION_REFUSED SP1 20240201"})
		expect(t, "corrections: the refused row is rejected whole", corrStrings(o1.Corrections), nil)
		expect(t, "memberships", memberStrings(o1.Memberships), nil)
		expect(t, "eligibility", eligStrings(o2), nil)
	})
	t.Run("deleting the newest account puts the superseded one back", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		h.feed(cust("SP1"), cust("SP1").acct("A2", "20240201").who("C2", "P1"))
		o1, _ := h.feed(cust("SP1").acct("A2", "20240201").who("C2", "P1").del())
		expect(t, "events", eventStrings(o1.AccountEvents), []string{
			"A8 REACTIVATED SP1/A1/C1 20240201", // a customer row takes effect at its active_date before any usage
			"A8 DELETED SP1/A2/C2 20240201",
		})
	})
}

func TestA9LastRowWins(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(cust("SP1").sec("W1"))
	o1, _ := h.feed(cust("SP1").sec("W2"))
	if len(o1.Memberships) != 1 || o1.Memberships[0].SecondaryID != "W2" {
		t.Errorf("memberships: %+v", o1.Memberships)
	}
	// A later row giving the account another customer id retracts the old pair.
	o1, _ = h.feed(cust("SP1").who("C7", "P1"))
	expect(t, "customer id changed", memberStrings(o1.Memberships), []string{
		"C7/P1/SP1 active - [eligible]",
		"C1/P1/SP1 deleted - [INACTIVE:A9:SP1:20240101]",
	})
	if got := h.now("C1", "P1", ProgramWebAccess); got != "INACTIVE:A9:SP1:20240101" {
		t.Errorf("old pair: %s", got)
	}
	// Late history from another file does not overwrite newer account columns.
	h = newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-03", 1))
	h.file = "history.tsv"
	o1, _ = h.feed(full("SP1").rate("MED1").sec("OLD").mon("2024-02", 1))
	expect(t, "events", eventStrings(o1.AccountEvents), nil)
	if t0 := h.sp("SP1").Tenures[0]; t0.RateCode != "R1" || t0.SecondaryID != "" {
		t.Errorf("tenure after late history: %+v", t0)
	}
}

// TestA9LastRowOfAFileWins: within one file the last row for an account
// wins, whatever its period (issue 16 item 4).
func TestA9LastRowOfAFileWins(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		rows   []*rb
		events []string
		comm   string // communications of C1/P1 at the end
	}{
		{"a last row restoring an allowed rate", []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").rate("MED1").mon("2024-02", 1), full("SP1").rate("R1").mon("2024-01", 1),
		}, []string{"A1 ACTIVATED SP1/A1/C1 20240101", "A7 RATE_CHANGED SP1/A1/C1 20240201", "A7 RATE_CHANGED SP1/A1/C1 20240101"}, "eligible"},
		{"a last row with an empty inactive_date reactivates (A5)", []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").inactive("20240229").mon("2024-02", 1), full("SP1").mon("2024-01", 1),
		}, []string{"A1 ACTIVATED SP1/A1/C1 20240101", "A4 TERMINATED SP1/A1/C1 20240229", "A5 REACTIVATED SP1/A1/C1 20240101"}, "eligible"},
		{"a last row with another secondary id", []*rb{
			full("SP1").sec("NEW").mon("2024-02", 1), full("SP1").sec("LAST").mon("2024-01", 1),
		}, []string{"A1 ACTIVATED SP1/A1/C1 20240101"}, "eligible"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.rows...)
			expect(t, "events", eventStrings(h.all1.AccountEvents), tc.events)
			if got := h.now("C1", "P1", ProgramCommunications); got != tc.comm {
				t.Errorf("communications: %s, want %s", got, tc.comm)
			}
			last := tc.rows[len(tc.rows)-1].r
			if t0 := h.sp("SP1").Tenures[0]; t0.RateCode != last.RateCode || t0.SecondaryID != last.SecondaryID || t0.InactiveDate != 0 {
				t.Errorf("tenure: %+v, want the last row's columns", t0)
			}
		})
	}
}

// TestA10UsageAfterFinalBill: usage starting after the inactive_date of the
// account it falls to is reported, about that account.
func TestA10UsageAfterFinalBill(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rows []*rb
		want []string
	}{
		{"usage after the final bill", []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").inactive("20240229").mon("2024-02", 1), usage("SP1").mon("2024-03", 1),
		}, []string{"A10 USAGE_AFTER_FINAL_BILL SP1 20240301"}},
		{"the final bill's own period", []*rb{full("SP1").mon("2024-01", 1), full("SP1").inactive("20240229").mon("2024-02", 1)}, nil},
		{"a move-in takes over", []*rb{
			full("SP1").inactive("20240131").mon("2024-01", 1), full("SP1").acct("A2", "20240201").who("C2", "P1").mon("2024-02", 1),
		}, nil},
		{"vacancy usage before the next account", []*rb{
			full("SP1").inactive("20240131").mon("2024-01", 1), usage("SP1").mon("2024-02", 1),
			full("SP1").acct("A2", "20240301").who("C2", "P1").mon("2024-03", 1),
		}, []string{"A10 USAGE_AFTER_FINAL_BILL SP1 20240201"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.rows...)
			expect(t, "anomalies", anomStrings(h.all1.Anomalies), tc.want)
			for _, a := range h.all1.Anomalies {
				if a.AccountID != "A1" || a.CustomerID != "C1" {
					t.Errorf("about account %s of %s, want A1 of C1", a.AccountID, a.CustomerID)
				}
			}
		})
	}
}
