package rules

import (
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
)

// Usage timeline rules U1-U9 (docs/rules.md), one test per rule id.

func TestU1Chain(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rows []*rb
		want string // the last membership
	}{
		{"calendar months", months(full("SP1"), "2024-01", 3), "C1/P1/SP1 active 20240101-20240331 [eligible]"},
		{"read cycles of 28 to 33 days", []*rb{
			full("SP1").per("20240128", 28, 1), full("SP1").per("20240227", 30, 1), full("SP1").per("20240330", 32, 1),
		}, "C1/P1/SP1 active 20240101-20240330 [eligible]"},
		{"usage file after customer file", []*rb{
			cust("SP1"), usage("SP1").mon("2024-01", 5), usage("SP1").mon("2024-02", 5),
		}, "C1/P1/SP1 active 20240101-20240229 [eligible]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.rows...)
			expect(t, "anomalies", anomStrings(h.all1.Anomalies), nil)
			expect(t, "corrections", corrStrings(h.all1.Corrections), nil)
			expect(t, "account events", eventStrings(h.all1.AccountEvents), []string{"A1 ACTIVATED SP1/A1/C1 20240101"})
			ms := memberStrings(h.all1.Memberships)
			expect(t, "last membership", ms[len(ms)-1:], []string{tc.want})
			if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
				t.Errorf("communications: %s", got)
			}
		})
	}
}

func TestU2Gap(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		missing []string // months left out of Jan..Jun 2024
		anomaly string
		reason  string
	}{
		{"one period", []string{"2024-03"}, "U2 USAGE_GAP SP1 20240301..20260331", "USAGE_GAP:U2:SP1:20240301..20260331"},
		{"two periods", []string{"2024-03", "2024-04"}, "U2 USAGE_GAP SP1 20240301..20260430", "USAGE_GAP:U2:SP1:20240301..20260430"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, DefaultPolicy())
			for _, r := range months(full("SP1"), "2024-01", 6) {
				skip := false
				for _, m := range tc.missing {
					skip = skip || r.r.DateTo.String()[:6] == m[:4]+m[5:]
				}
				if !skip {
					h.feed(r)
				}
			}
			expect(t, "anomalies", anomStrings(h.all1.Anomalies), []string{tc.anomaly})
			if got := h.now("C1", "P1", ProgramCommunications); got != tc.reason {
				t.Errorf("communications: %s, want %s", got, tc.reason)
			}
			if got := h.now("C1", "P1", ProgramWebAccess); got != "eligible" {
				t.Errorf("web access is not blocked by a gap: %s", got)
			}
		})
	}

	t.Run("exact events", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1))
		o1, o2 := h.feed(full("SP1").mon("2024-04", 1))
		expect(t, "anomalies", anomStrings(o1.Anomalies), []string{"U2 USAGE_GAP SP1 20240301..20260331"})
		expect(t, "memberships", memberStrings(o1.Memberships), []string{
			"C1/P1/SP1 active 20240101-20240430 [USAGE_GAP:U2:SP1:20240301..20260331]"})
		expect(t, "eligibility", eligStrings(o2), []string{
			"C1/P1 communications [USAGE_GAP:U2:SP1:20240301..20260331]",
			"C1/P1 neighbor_comparison [USAGE_GAP:U2:SP1:20240301..20260331]",
			"C1/P1 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240301 NO_DUAL_FUEL:S2::20240101]",
			"C1/P1 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240301 INSUFFICIENT_HISTORY:I5::20240101]",
		})
		if a := o1.Anomalies[0]; a.Source.Line != 3 || a.Message == "" || a.CustomerID != "C1" {
			t.Errorf("anomaly source, message or customer: %+v", a)
		}
		// The next period changes nothing the customer is told.
		_, o2 = h.feed(full("SP1").mon("2024-05", 1))
		expect(t, "eligibility after the next period", eligStrings(o2), nil)
	})
}

func TestU2GapAgesOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-03", 1)) // February missing: holds while the newest date_to <= 2026-03-01
	for _, r := range months(full("SP1"), "2024-04", 23) {               // through February 2026
		if o1, _ := h.feed(r); len(o1.Anomalies) > 0 {
			t.Fatalf("%s: %v", r.r.DateTo, anomStrings(o1.Anomalies))
		}
	}
	if got := h.now("C1", "P1", ProgramCommunications); got != "USAGE_GAP:U2:SP1:20240201..20260228" {
		t.Fatalf("before the horizon: %s", got)
	}
	o1, o2 := h.feed(full("SP1").mon("2026-03", 1)) // date_to 2026-03-31 > 2026-03-01
	expect(t, "anomalies", anomStrings(o1.Anomalies), []string{"U2 USAGE_GAP SP1 20240201..20260228 cleared"})
	expect(t, "eligibility", eligStrings(o2), []string{
		"C1/P1 communications [eligible]",
		"C1/P1 neighbor_comparison [eligible]",
		"C1/P1 dual_fuel_insights [NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [INSUFFICIENT_HISTORY:I5::20240101]",
	})
	// Filling the aged gap later changes nothing.
	o1, o2 = h.feed(full("SP1").mon("2024-02", 1))
	expect(t, "anomalies after filling", anomStrings(o1.Anomalies), nil)
	expect(t, "eligibility after filling", eligStrings(o2), nil)
}

func TestU3Overlap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1))
	o1, o2 := h.feed(full("SP1").per("20240331", 41, 1)) // starts 2024-02-20, ten days inside February
	expect(t, "anomalies", anomStrings(o1.Anomalies), []string{"U3 USAGE_OVERLAP SP1 20240220..20260228"})
	expect(t, "corrections", corrStrings(o1.Corrections), nil)
	expect(t, "eligibility", eligStrings(o2), []string{
		"C1/P1 communications [USAGE_OVERLAP:U3:SP1:20240220..20260228]",
		"C1/P1 neighbor_comparison [USAGE_OVERLAP:U3:SP1:20240220..20260228]",
		"C1/P1 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240220 NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240220 INSUFFICIENT_HISTORY:I5::20240101]",
	})
	if n := len(h.sp("SP1").Periods); n != 3 {
		t.Errorf("the overlapping row is kept, flagged: %d periods", n)
	}
}

func TestU4ExactOverwrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 100).charge(10), full("SP1").mon("2024-02", 90).charge(9))
	o1, o2 := h.feed(full("SP1").mon("2024-01", 120).charge(12))
	expect(t, "corrections", corrStrings(o1.Corrections), []string{"U4 EXACT SP1 20240131/31 100->120 => 20240131/31"})
	c := o1.Corrections[0]
	if c.OldCharge.Value != 10 || !c.OldCharge.Valid || c.NewCharge.Value != 12 || c.Source.Line != 3 {
		t.Errorf("charges or source: %+v", c)
	}
	expect(t, "anomalies", anomStrings(o1.Anomalies), nil)
	expect(t, "memberships", memberStrings(o1.Memberships), nil)
	expect(t, "eligibility", eligStrings(o2), nil)

	// The same row again is a replay: nothing changes, but it is a duplicate row (U10).
	o1, _ = h.feed(full("SP1").mon("2024-01", 120).charge(12))
	if len(o1.Corrections)+len(o1.AccountEvents)+len(o1.Memberships) != 0 {
		t.Errorf("replay changed something: %+v", o1)
	}
	expect(t, "replay", anomStrings(o1.Anomalies), []string{"U10 DUPLICATE_ROW SP1 20240101"})
	// A charge dropped is a change.
	o1, _ = h.feed(full("SP1").mon("2024-01", 120))
	if len(o1.Corrections) != 1 || o1.Corrections[0].NewCharge.Valid {
		t.Errorf("charge removal: %+v", o1.Corrections)
	}
}

func TestU4NetMeteringSecondRow(t *testing.T) {
	t.Parallel()
	t.Run("net metering", func(t *testing.T) {
		p := DefaultPolicy()
		p.NetMetering = true
		h := newHarness(t, p)
		h.feed(full("SP1").mon("2024-01", 100))
		o1, _ := h.feed(full("SP1").mon("2024-01", -30))
		expect(t, "corrections", corrStrings(o1.Corrections), []string{"U4 EXACT SP1 20240131/31 100->-30 => 20240131/31"})
		expect(t, "anomalies", anomStrings(o1.Anomalies), nil)
	})
	t.Run("without net metering the row is refused (U9)", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		h.feed(full("SP1").mon("2024-01", 100))
		o1, _ := h.feed(full("SP1").mon("2024-01", -30))
		expect(t, "anomalies", anomStrings(o1.Anomalies), []string{"U9 NEGATIVE_USAGE SP1 20240101"})
		expect(t, "corrections", corrStrings(o1.Corrections), nil)
		if v := h.sp("SP1").Periods[0].Value; v != 100 {
			t.Errorf("value %v changed", v)
		}
	})
}

func TestU5OverlappingOverwrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(months(full("SP1"), "2024-01", 3)...) // values 100, 101, 102
	o1, o2 := h.feed(full("SP1").per("20240430", 90, 500))
	expect(t, "corrections", corrStrings(o1.Corrections), []string{
		"U5 OVERLAPPING SP1 20240229/29 101->500 => 20240430/90",
		"U5 OVERLAPPING SP1 20240331/31 102->500 => 20240430/90",
	})
	expect(t, "anomalies", anomStrings(o1.Anomalies), nil)
	expect(t, "eligibility", eligStrings(o2), nil)
	sp := h.sp("SP1")
	if len(sp.Periods) != 2 || sp.Periods[1].Start != D("20240201") || sp.Periods[1].DateTo != D("20240430") {
		t.Errorf("timeline after U5: %+v", sp.Periods)
	}
}

func TestU6OtherOverlapIsU3(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		row  *rb
		want []string
	}{
		{"aligned to a start but not the newest", full("SP1").per("20240215", 15, 1),
			[]string{"U3 USAGE_OVERLAP SP1 20240201..20260214"}},
		{"the newest but not aligned", full("SP1").per("20240430", 40, 1),
			[]string{"U3 USAGE_OVERLAP SP1 20240322..20260331"}},
		{"inside a period", full("SP1").per("20240120", 11, 1),
			[]string{"U3 USAGE_OVERLAP SP1 20240110..20260119"}},
		{"longer from a start but not the newest", full("SP1").per("20240310", 39, 1),
			[]string{"U3 USAGE_OVERLAP SP1 20240201..20260310"}},
		{"a 400-day row over every period", full("SP1").per("20240331", 400, 1),
			[]string{"U11 IMPLAUSIBLE_PERIOD SP1 20230226", "U3 USAGE_OVERLAP SP1 20240101..20260331"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, DefaultPolicy())
			h.feed(months(full("SP1"), "2024-01", 3)...)
			o1, _ := h.feed(tc.row)
			expect(t, "anomalies", anomStrings(o1.Anomalies), tc.want)
			expect(t, "corrections", corrStrings(o1.Corrections), nil)
			// One bad row is one overlap, naming that row (issue 16 item 5).
			if o := h.sp("SP1").Open; len(o) != 1 || o[0].KeyStart != tc.row.r.PeriodStart() || o[0].KeyEnd != tc.row.r.DateTo {
				t.Errorf("open overlaps %+v, want the row %s-%s", o, tc.row.r.PeriodStart(), tc.row.r.DateTo)
			}
		})
	}
}

func TestU7ZeroUsage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 100))
	n := len(h.elig)
	h.feed(full("SP1").mon("2024-02", 0), full("SP1").mon("2024-03", 0), full("SP1").mon("2024-04", 100))
	expect(t, "anomalies", anomStrings(h.all1.Anomalies), nil)
	expect(t, "eligibility after the lapse", eligStrings(h.elig[n:]), nil)
}

func TestU8OutOfOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-03", 1), full("SP1").mon("2024-04", 1))
	o1, _ := h.feed(full("SP1").mon("2024-01", 1)) // lands before March: February is a hole now
	expect(t, "after January", anomStrings(o1.Anomalies), []string{"U2 USAGE_GAP SP1 20240201..20260228"})
	o1, o2 := h.feed(full("SP1").mon("2024-02", 1))
	expect(t, "after February", anomStrings(o1.Anomalies), []string{"U2 USAGE_GAP SP1 20240201..20260228 cleared"})
	expect(t, "memberships", memberStrings(o1.Memberships), []string{"C1/P1/SP1 active 20240101-20240430 [eligible]"})
	expect(t, "eligibility", eligStrings(o2), []string{
		"C1/P1 communications [eligible]",
		"C1/P1 neighbor_comparison [eligible]",
		"C1/P1 dual_fuel_insights [NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [INSUFFICIENT_HISTORY:I5::20240101]",
	})
	// A gap filled from its old end keeps its identity while it shrinks.
	h = newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-06", 1), full("SP1").mon("2024-01", 1))
	for _, m := range []string{"2024-02", "2024-03", "2024-04"} {
		if o1, _ := h.feed(full("SP1").mon(m, 1)); len(o1.Anomalies) != 0 {
			t.Errorf("%s: %v", m, anomStrings(o1.Anomalies))
		}
	}
	o1, _ = h.feed(full("SP1").mon("2024-05", 1))
	expect(t, "filled", anomStrings(o1.Anomalies), []string{"U2 USAGE_GAP SP1 20240201..20260531 cleared"})
}

func TestU9ChargeOptional(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1).charge(3))
	if sp := h.sp("SP1"); sp.Periods[0].HasCharge || !sp.Periods[1].HasCharge || sp.Periods[1].Charge != 3 {
		t.Errorf("charges: %+v", sp.Periods)
	}
	expect(t, "anomalies", anomStrings(h.all1.Anomalies), nil)
}

// TestU2GapJudgedForTheSubject: a gap or an overlap is judged for the
// customer at the premise (C1), across that customer's accounts there; a
// vacancy between two customers still blocks neither (issue 16 item 1).
func TestU2GapJudgedForTheSubject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rows []*rb
		want string // communications of C1/P1 at the end
	}{
		{"gap across a new account number of the same customer", []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1),
			full("SP1").acct("A2", "20240401").mon("2024-04", 1),
		}, "USAGE_GAP:U2:SP1:20240301..20260331"},
		{"overlap across a new account number of the same customer", []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1),
			full("SP1").acct("A2", "20240301").mon("2024-03", 1),
			full("SP1").acct("A2", "20240301").per("20240229", 5, 1), // 2024-02-25..29, before A2's active_date
		}, "USAGE_OVERLAP:U3:SP1:20240225..20260228"},
		{"gap across a later active_date of the same account (A3)", []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1),
			full("SP1").acct("A1", "20240401").mon("2024-04", 1),
		}, "ACTIVE_DATE_CHANGED:A3:SP1:20240401 USAGE_GAP:U2:SP1:20240301..20260331"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.rows...)
			if got := h.now("C1", "P1", ProgramCommunications); got != tc.want {
				t.Errorf("communications: %s, want %s", got, tc.want)
			}
			if got := h.now("C1", "P1", ProgramWebAccess); got != "eligible" {
				t.Errorf("web access: %s", got)
			}
		})
	}
	t.Run("a vacancy between two customers blocks neither", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		h.feed(full("SP1").mon("2024-01", 1), full("SP1").acct("A2", "20240301").who("C2", "P1").mon("2024-03", 1))
		if got := h.now("C2", "P1", ProgramCommunications); got != "eligible" {
			t.Errorf("C2 communications: %s", got)
		}
	})
}

// TestU2HorizonFromTheLastDay: a gap or an overlap holds while the newest
// date_to is at most gap_horizon_days after its last day, and no longer
// (issue 16 item 6).
func TestU2HorizonFromTheLastDay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		first []*rb // leaves a gap or an overlap whose last day is 2024-02-29
		until string
	}{
		{"gap", []*rb{full("SP1").mon("2024-01", 1), full("SP1").mon("2024-03", 1)}, "U2 USAGE_GAP SP1 20240201..20260228"},
		{"overlap", []*rb{full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1), full("SP1").per("20240229", 10, 1), full("SP1").mon("2024-03", 1)},
			"U3 USAGE_OVERLAP SP1 20240220..20260228"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.first...)
			expect(t, "raised", anomStrings(h.all1.Anomalies), []string{tc.until})
			h.feed(months(full("SP1"), "2024-04", 22)...) // through January 2026
			if o1, _ := h.feed(full("SP1").per("20260228", 28, 1)); len(o1.Anomalies) != 0 {
				t.Fatalf("730 days after its last day it still holds: %v", anomStrings(o1.Anomalies))
			}
			o1, _ := h.feed(full("SP1").per("20260301", 1, 1)) // 731 days after 2024-02-29
			expect(t, "731 days after", anomStrings(o1.Anomalies), []string{tc.until + " cleared"})
			if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
				t.Errorf("communications: %s", got)
			}
		})
	}
}

// TestU2GapFoundAlreadyAged: a historical file after years of incrementals
// brings gaps already past the horizon; each is still named (raised and
// cleared at once), never dropped, and blocks nothing (issue 16 item 2).
func TestU2GapFoundAlreadyAged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, DefaultPolicy())
	h.feed(months(full("SP1"), "2024-01", 30)...) // through June 2026
	n := len(h.all1.Anomalies)
	hist := months(full("SP1"), "2021-01", 24)
	h.feed(hist[:5]...) // January to May 2021
	h.feed(hist[6:]...) // July 2021 to December 2022: June 2021 is missing
	expect(t, "anomalies of the historical file", anomStrings(h.all1.Anomalies[n:]), []string{
		"U2 USAGE_GAP SP1 20210201..20251230", // February 2021 to 2023: the rest of the file fills it
		"U2 USAGE_GAP SP1 20210201..20251230 cleared",
		"U2 USAGE_GAP SP1 20210601..20230630", // the missing month, named
		"U2 USAGE_GAP SP1 20210601..20230630 cleared",
	})
	if m := h.all1.Anomalies[n+2].Message; !strings.Contains(m, "no period covers 20210601-20210630") || !strings.Contains(m, "found already past the 730-day horizon") {
		t.Errorf("message: %s", m)
	}
	if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
		t.Errorf("communications: %s", got)
	}
}

// TestU10DuplicateRow: the same period sent twice with the same value and
// charge changes nothing on the timeline but is a finding of its own.
func TestU10DuplicateRow(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rows []*rb
		want []string
	}{
		{"same value and charge", []*rb{full("SP1").mon("2024-01", 5).charge(1), full("SP1").mon("2024-01", 5).charge(1)},
			[]string{"U10 DUPLICATE_ROW SP1 20240101"}},
		{"same value, no charge either time", []*rb{usage("SP1").mon("2024-01", 5), usage("SP1").mon("2024-01", 5)},
			[]string{"U12 USAGE_WITHOUT_ACCOUNT SP1 20240101", "U10 DUPLICATE_ROW SP1 20240101"}},
		{"another value is a correction, no duplicate", []*rb{full("SP1").mon("2024-01", 5), full("SP1").mon("2024-01", 6)}, nil},
		{"a charge added is a correction, no duplicate", []*rb{full("SP1").mon("2024-01", 5), full("SP1").mon("2024-01", 5).charge(1)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.rows...)
			expect(t, "anomalies", anomStrings(h.all1.Anomalies), tc.want)
			if len(tc.want) > 0 {
				a := h.all1.Anomalies[len(h.all1.Anomalies)-1]
				if a.Source.Line != 2 || !strings.Contains(a.Message, "sent again") {
					t.Errorf("source or message: %+v", a)
				}
			}
		})
	}
}

// TestU11ImplausiblePeriod: a period outside the policy's bounds is reported
// and kept.
func TestU11ImplausiblePeriod(t *testing.T) {
	t.Parallel()
	strict := DefaultPolicy()
	strict.MinPeriodDays, strict.MaxPeriodDays = 20, 40
	cases := []struct {
		name string
		p    Policy
		row  *rb
		want []string
	}{
		{"10,000 days", DefaultPolicy(), full("SP1").per("20240131", 10000, 1), []string{"U11 IMPLAUSIBLE_PERIOD SP1 19960915"}},
		{"101 days", DefaultPolicy(), full("SP1").per("20240131", 101, 1), []string{"U11 IMPLAUSIBLE_PERIOD SP1 20231023"}},
		{"100 days", DefaultPolicy(), full("SP1").per("20240131", 100, 1), nil},
		{"one day, no lower bound by default", DefaultPolicy(), full("SP1").per("20240131", 1, 1), nil},
		{"ten days under a lower bound of 20", strict, full("SP1").per("20240131", 10, 1), []string{"U11 IMPLAUSIBLE_PERIOD SP1 20240122"}},
		{"45 days over an upper bound of 40", strict, full("SP1").per("20240131", 45, 1), []string{"U11 IMPLAUSIBLE_PERIOD SP1 20231218"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.p)
			h.feed(tc.row)
			expect(t, "anomalies", anomStrings(h.all1.Anomalies), tc.want)
			if n := len(h.sp("SP1").Periods); n != 1 {
				t.Errorf("the period is kept: %d periods", n)
			}
		})
	}
}

// TestU12UsageWithoutAccount: in the two-file layout, usage for a service
// point no customer row named is reported once.
func TestU12UsageWithoutAccount(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rows []*rb
		want []string
	}{
		{"no customer row", []*rb{usage("SP1").mon("2024-01", 1), usage("SP1").mon("2024-02", 1)}, []string{"U12 USAGE_WITHOUT_ACCOUNT SP1 20240101"}},
		{"customer row first", []*rb{cust("SP1"), usage("SP1").mon("2024-01", 1)}, nil},
		{"full layout", []*rb{full("SP1").mon("2024-01", 1)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.rows...)
			expect(t, "anomalies", anomStrings(h.all1.Anomalies), tc.want)
		})
	}
}

// TestWholeMonthsIsTheLargestStep: wholeMonths(from, to) is the largest n
// with from.AddMonths(n) <= to, for every pair of days over four years that
// hold month ends, leap days and year turns.
func TestWholeMonthsIsTheLargestStep(t *testing.T) {
	start := dates.MustParse("20230101")
	for from := start; from < start+1461; from += 3 {
		for to := from - 40; to < from+500; to++ {
			want := 0
			for from.AddMonths(want+1) <= to {
				want++
			}
			if got := wholeMonths(from, to); got != want {
				t.Fatalf("wholeMonths(%s, %s) = %d, want %d", from, to, got, want)
			}
		}
	}
}
