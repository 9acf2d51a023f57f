package rules

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
)

// Customers, premises, fuels (C1-C3, S1, S2) and the programs table.

func TestC1PremiseIsTheSubject(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-03", 1)) // a gap at P1
	h.feed(full("SP2").who("C1", "P2").acct("A2", "20240101").mon("2024-01", 1))
	if got := h.now("C1", "P1", ProgramCommunications); got == "eligible" {
		t.Error("P1 should be blocked by its gap")
	}
	if got := h.now("C1", "P2", ProgramCommunications); got != "eligible" {
		t.Errorf("P2 is another subject; its communications: %s", got)
	}
}

func TestC2PropertyManager(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	pm := func(sp, prem, acct, active, month string) *rb {
		return full(sp).who("C9", prem).acct(acct, active).mon(month, 1)
	}
	h.feed(pm("SP1", "P1", "A1", "20240101", "2024-01"), pm("SP2", "P2", "A2", "20240201", "2024-02"))
	if got := h.now("C9", "P1", ProgramNeighborComparison); got != "eligible" {
		t.Fatalf("two premises: %s", got)
	}
	_, o2 := h.feed(pm("SP3", "P3", "A3", "20240301", "2024-03"))
	expect(t, "third premise", eligStrings(o2), []string{
		"C9/P1 neighbor_comparison [PROPERTY_MANAGER:C2::20240301]",
		"C9/P2 neighbor_comparison [PROPERTY_MANAGER:C2::20240301]",
		"C9/P3 communications [eligible]",
		"C9/P3 web_access [eligible]",
		"C9/P3 neighbor_comparison [PROPERTY_MANAGER:C2::20240301]",
		"C9/P3 dual_fuel_insights [NO_DUAL_FUEL:S2::20240301]",
		"C9/P3 disaggregation [INSUFFICIENT_HISTORY:I5::20240301]",
	})
	if o2[0].Reasons[0].Source.Line != 3 {
		t.Errorf("the C2 reason names the row that tipped it: %+v", o2[0].Reasons[0].Source)
	}
	_, o2 = h.feed(pm("SP2", "P2", "A2", "20240201", "2024-03"))
	expect(t, "more usage changes nothing", eligStrings(o2), nil)

	// Dropping back to two premises restores neighbour comparisons.
	_, o2 = h.feed(pm("SP3", "P3", "A3", "20240301", "2024-03").inactive("20240331"))
	expect(t, "back to two", eligStrings(o2), []string{
		"C9/P1 neighbor_comparison [eligible]",
		"C9/P2 neighbor_comparison [eligible]",
		"C9/P3 communications [INACTIVE:A4:SP3:20240331]",
		"C9/P3 web_access [INACTIVE:A4:SP3:20240331]",
		"C9/P3 neighbor_comparison [INACTIVE:A4:SP3:20240331]",
		"C9/P3 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240331 NO_DUAL_FUEL:S2::20240301]",
		"C9/P3 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240331 INSUFFICIENT_HISTORY:I5::20240301]",
	})
}

func TestC3SecondaryID(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").sec("W42").mon("2024-01", 1), full("SP1").sec("W42").mon("2024-03", 1))
	for _, e := range h.all1.AccountEvents {
		if e.SecondaryID != "W42" {
			t.Errorf("account event without secondary id: %+v", e)
		}
	}
	for _, a := range h.all1.Anomalies {
		if a.SecondaryID != "W42" {
			t.Errorf("anomaly without secondary id: %+v", a)
		}
	}
	for _, m := range h.all1.Memberships {
		if m.SecondaryID != "W42" {
			t.Errorf("membership without secondary id: %+v", m)
		}
	}
	if len(h.elig) == 0 {
		t.Fatal("no eligibility events")
	}
	for _, e := range h.elig {
		if e.SecondaryID != "W42" {
			t.Errorf("eligibility event without secondary id: %+v", e)
		}
	}
}

func TestS1Replacement(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	h.feed(months(full("SPE1"), "2024-01", 6)...)
	newSP := months(full("SPE2").acct("A2", "20240701"), "2024-07", 12)
	_, o2 := h.feed(newSP[0])
	expect(t, "new service point", eligStrings(o2), []string{
		"C1/P1 communications [SERVICE_POINT_CHANGED:S1:SPE2:20240701..20250630]",
		"C1/P1 neighbor_comparison [SERVICE_POINT_CHANGED:S1:SPE2:20240701..20250630]",
		"C1/P1 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240701 NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240701 INSUFFICIENT_HISTORY:I5::20240101]",
	})
	for _, r := range newSP[1:11] {
		if _, o2 := h.feed(r); len(o2) != 0 {
			t.Fatalf("%s: %v", r.r.DateTo, eligStrings(o2))
		}
	}
	_, o2 = h.feed(newSP[11]) // twelve months of chained usage
	expect(t, "after twelve months", eligStrings(o2), []string{
		"C1/P1 communications [eligible]",
		"C1/P1 neighbor_comparison [eligible]",
		"C1/P1 dual_fuel_insights [NO_DUAL_FUEL:S2::20240101]",
		"C1/P1 disaggregation [INSUFFICIENT_HISTORY:I5::20240101]",
	})

	// S1 is a fact of the premise: a customer moving in on a new meter is
	// blocked although the old service point was another customer's.
	t.Run("a new customer on a new service point", func(t *testing.T) {
		h := newHarness(t, DefaultPolicy())
		old := months(full("SPE1"), "2024-01", 6)
		old[5].inactive("20240630")
		h.feed(old...)
		newSP := months(full("SPE2").who("C2", "P1").acct("A2", "20240701"), "2024-07", 12)
		_, o2 := h.feed(newSP[0])
		expect(t, "move-in on a new service point", eligStrings(o2), []string{
			"C2/P1 communications [SERVICE_POINT_CHANGED:S1:SPE2:20240701..20250630]",
			"C2/P1 web_access [eligible]",
			"C2/P1 neighbor_comparison [SERVICE_POINT_CHANGED:S1:SPE2:20240701..20250630]",
			"C2/P1 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240701 NO_DUAL_FUEL:S2::20240701]",
			"C2/P1 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240701 INSUFFICIENT_HISTORY:I5::20240701]",
		})
		if got := h.now("C1", "P1", ProgramCommunications); got != "INACTIVE:A4:SPE1:20240630" {
			t.Errorf("the customer who moved out: %s", got)
		}
		h.feed(newSP[1:]...)
		if got := h.now("C2", "P1", ProgramCommunications); got != "eligible" {
			t.Errorf("after twelve months: %s", got)
		}
	})

	t.Run("not a replacement", func(t *testing.T) {
		// A second meter that goes on billing is no replacement once its next
		// bill runs past the overlap (S1 mid-cycle, below).
		h := newHarness(t, DefaultPolicy())
		h.feed(months(full("SPE1"), "2024-01", 6)...)
		h.feed(full("SPE2").acct("A2", "20240615").per("20240714", 30, 1), full("SPE1").mon("2024-07", 1), full("SPE1").mon("2024-08", 1))
		if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
			t.Errorf("a second meter: %s", got)
		}
		cases := map[string][]*rb{
			"the old one keeps receiving usage": append(months(full("SPE1"), "2024-01", 6), full("SPE2").acct("A2", "20240401").mon("2024-04", 1)),
			"another fuel":                      append(months(full("SPE1"), "2024-01", 6), full("SPG1").fuel("G").acct("A2", "20240701").mon("2024-07", 1)),
		}
		for name, rows := range cases {
			h := newHarness(t, DefaultPolicy())
			h.feed(rows...)
			if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
				t.Errorf("%s: %s", name, got)
			}
		}
	})
}

func TestS2DualFuel(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	gas := func(m string) *rb { return full("SPG").fuel("G").acct("A2", "20240101").mon(m, 1) }
	h.feed(full("SPE").mon("2024-01", 1))
	_, o2 := h.feed(gas("2024-01"))
	expect(t, "pair", eligStrings(o2), []string{"C1/P1 dual_fuel_insights [eligible]"})

	h.feed(gas("2024-02"))
	_, o2 = h.feed(gas("2024-04")) // a gap on the gas side blocks communications
	expect(t, "gas gap", eligStrings(o2), []string{
		"C1/P1 communications [USAGE_GAP:U2:SPG:20240301..20260331]",
		"C1/P1 neighbor_comparison [USAGE_GAP:U2:SPG:20240301..20260331]",
		"C1/P1 dual_fuel_insights [BLOCKED_FOR_COMMUNICATIONS:S2::20240301]",
		"C1/P1 disaggregation [BLOCKED_FOR_COMMUNICATIONS:I5::20240301 INSUFFICIENT_HISTORY:I5::20240101]",
	})
	// Gas terminated: the customer stays active with electric; dual fuel ends.
	_, o2 = h.feed(gas("2024-05").inactive("20240531"))
	expect(t, "gas terminated", eligStrings(o2), []string{
		"C1/P1 communications [eligible]",
		"C1/P1 neighbor_comparison [eligible]",
		"C1/P1 dual_fuel_insights [NO_DUAL_FUEL:S2::20240531]",
		"C1/P1 disaggregation [INSUFFICIENT_HISTORY:I5::20240101]",
	})
}

// TestProgramsTable checks each reason against each program, end to end
// through stage 2, against the table of docs/rules.md#programs written out here.
func TestProgramsTable(t *testing.T) {
	all := []string{ProgramCommunications, ProgramWebAccess, ProgramNeighborComparison, ProgramDualFuelInsights, ProgramDisaggregation}
	comm := []string{ProgramCommunications, ProgramNeighborComparison, ProgramDualFuelInsights, ProgramDisaggregation}
	table := map[string][]string{ // reason -> programs it blocks
		ReasonInactive:            all,
		ReasonSuperseded:          all,
		ReasonUsageGap:            comm,
		ReasonUsageOverlap:        comm,
		ReasonActiveDateChanged:   comm,
		ReasonRateNotAllowed:      comm,
		ReasonServicePointChanged: comm,
		ReasonPropertyManager:     {ProgramNeighborComparison},
		ReasonNoDualFuel:          {ProgramDualFuelInsights},
		ReasonInsufficientHistory: {ProgramDisaggregation},
	}
	if !slices.Equal(Programs(), all) {
		t.Fatalf("Programs() = %v", Programs())
	}
	p := DefaultPolicy()
	d := dates.MustParse
	point := func(sp, fuel string, active bool, rs ...Reason) Membership {
		m := Membership{CustomerID: "C1", PremiseID: "P1", ServicePointID: sp, ServiceType: fuel, AccountID: "A" + sp,
			ActiveDate: d("20240101"), Active: active, FirstPeriodStart: d("20240101"), LastDateTo: d("20241231"),
			ChainStart: d("20240101"), ChainedMonths: 12}
		for _, r := range rs {
			r.ServicePointID = sp
			m.Reasons = append(m.Reasons, r)
		}
		return m
	}
	// baseline: a dual-fuel customer with interval history: eligible for everything.
	baseline := func() *Customer {
		c := &Customer{}
		receive(c, p, point("SPE", "E", true), Source{})
		receive(c, p, point("SPG", "G", true), Source{})
		c.SetIntervalHistory(p, "P1", "SPE", 13, Source{})
		return c
	}
	for reason, blocked := range table {
		t.Run(reason, func(t *testing.T) {
			c := baseline()
			for _, prog := range all {
				if rs := c.Premises["P1"].Sent[prog]; len(rs) != 0 {
					t.Fatalf("baseline %s: %s", prog, reasonList(rs))
				}
			}
			r := Reason{Code: reason, Rule: "X", EffectiveDate: d("20240601")}
			switch reason {
			case ReasonInactive, ReasonSuperseded: // every account at the premise
				receive(c, p, point("SPE", "E", false, r), Source{})
				receive(c, p, point("SPG", "G", false, r), Source{})
			case ReasonServicePointChanged:
				// The premise stage judges S1 (TestS1 and TestSite cover how)
				// and sends the customer its reasons.
				rs := []Reason{{Code: reason, Rule: "S1", ServicePointID: "SPE2", EffectiveDate: d("20250101")}}
				c.Receive(p, CustomerInput{CustomerID: c.ID, PremiseID: "P1", Replacements: &rs}, Source{})
			case ReasonPropertyManager:
				for _, prem := range []string{"P2", "P3"} {
					m := point("SP"+prem, "E", true)
					m.PremiseID = prem
					receive(c, p, m, Source{})
				}
			case ReasonNoDualFuel:
				receive(c, p, point("SPG", "G", false), Source{})
			case ReasonInsufficientHistory:
				c.SetIntervalHistory(p, "P1", "SPE", 12, Source{})
			default:
				receive(c, p, point("SPE", "E", true, r), Source{})
			}
			for _, prog := range all {
				rs := c.Premises["P1"].Sent[prog]
				want := slices.Contains(blocked, prog)
				if (len(rs) > 0) != want {
					t.Errorf("%s blocks %s: %v, want %v (%s)", reason, prog, len(rs) > 0, want, reasonList(rs))
				}
				direct := slices.ContainsFunc(rs, func(x Reason) bool { return x.Code == reason })
				if direct != Blocks(prog, reason) || (want && !direct && !slices.ContainsFunc(rs, func(x Reason) bool { return x.Code == ReasonBlockedForCommunications })) {
					t.Errorf("%s on %s: reasons %s", reason, prog, reasonList(rs))
				}
			}
		})
	}
}

// Events are emitted only on change, and the first evaluation emits every program.
func TestEventsOnlyOnChange(t *testing.T) {
	p := DefaultPolicy()
	c := &Customer{}
	m := Membership{CustomerID: "C1", PremiseID: "P1", ServicePointID: "SP1", ServiceType: "E", Active: true, ActiveDate: 1}
	if got := receive(c, p, m, Source{}); len(got) != len(Programs()) {
		t.Fatalf("first evaluation: %d events", len(got))
	}
	m.Source = Source{Line: 9}
	m.LastDateTo = 40
	if got := receive(c, p, m, Source{Offset: 1}); len(got) != 0 {
		t.Errorf("nothing changed but: %v", eligStrings(got))
	}
}

// TestSite checks the premise stage's forwarding: stage 1 sends a membership
// on every usage row (its usage facts move), the premise stage forwards to
// stage 2 only what stage 2 uses.
func TestSite(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	h.feed(months(full("SPE1"), "2024-01", 12)...)
	if n := len(h.all1.Memberships); n != 12 {
		t.Fatalf("stage 1 sent %d memberships for 12 usage rows, want 12", n)
	}
	if h.n2 != 1 {
		t.Fatalf("stage 2 got %d inputs, want 1: usage facts alone must not be forwarded", h.n2)
	}
	h.feed(full("SPE1").mon("2025-01", 1).rate("MED1"))
	if h.n2 != 2 {
		t.Fatalf("stage 2 got %d inputs after a rate change, want 2", h.n2)
	}
	site := h.site("P1")
	if m := site.Points["SPE1"]["C1"]; m.LastDateTo != D("20250131") || m.ChainedMonths != 13 {
		t.Fatalf("the premise stage holds %s, %d chained months", m.LastDateTo, m.ChainedMonths)
	}
	if m := h.customer("C1").Premises["P1"].Points["SPE1"]; m.LastDateTo != 0 || m.ChainedMonths != 0 {
		t.Fatalf("stage 2 holds usage facts it does not use: %s, %d", m.LastDateTo, m.ChainedMonths)
	}
}

// TestS3ServicePointMovesOrChangesFuel: a row putting a service point at
// another premise, or giving it another fuel, is reported once per change.
func TestS3ServicePointMovesOrChangesFuel(t *testing.T) {
	cases := []struct {
		name string
		rows []*rb
		want []string
	}{
		{"another premise", []*rb{full("SP1").mon("2024-01", 1), full("SP1").who("C1", "P9").mon("2024-02", 1), full("SP1").who("C1", "P9").mon("2024-03", 1)},
			[]string{"S3 SERVICE_POINT_MOVED SP1 20240201"}},
		{"another fuel", []*rb{full("SP1").mon("2024-01", 1), full("SP1").fuel("G").mon("2024-02", 1), full("SP1").fuel("G").mon("2024-03", 1)},
			[]string{"S3 FUEL_CHANGED SP1 20240201"}},
		{"a new customer at the same premise", []*rb{full("SP1").mon("2024-01", 1), full("SP1").acct("A2", "20240201").who("C2", "P1").mon("2024-02", 1)}, nil},
		{"a new customer at another premise", []*rb{full("SP1").mon("2024-01", 1), full("SP1").acct("A2", "20240201").who("C2", "P2").mon("2024-02", 1)},
			[]string{"S3 SERVICE_POINT_MOVED SP1 20240201"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.rows...)
			expect(t, "anomalies", anomStrings(h.all1.Anomalies), tc.want)
		})
	}
}

// TestC4TwoCustomersActive: two customers active on different service
// points of one premise at the same time are reported by the premise stage,
// and cleared when it ends; a supersede on one service point is not.
func TestC4TwoCustomersActive(t *testing.T) {
	cases := []struct {
		name string
		rows []*rb
		want []string
	}{
		{"the electric moves in, the gas stays the old customer's, then moves too", []*rb{
			full("SPE").mon("2024-01", 1), full("SPG").acct("AG", "20240101").fuel("G").mon("2024-01", 1),
			full("SPE").acct("A2", "20240201").who("C2", "P1").mon("2024-02", 1),
			full("SPG").acct("AG", "20240101").fuel("G").mon("2024-02", 1),
			full("SPG").acct("AG2", "20240301").who("C2", "P1").fuel("G").mon("2024-03", 1),
		}, []string{"C4 TWO_CUSTOMERS_ACTIVE SPE 20240201", "C4 TWO_CUSTOMERS_ACTIVE SPG 20240301 cleared"}},
		{"a move-in on one service point", []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").acct("A2", "20240201").who("C2", "P1").mon("2024-02", 1),
		}, nil},
		{"one customer on two service points", []*rb{
			full("SPE").mon("2024-01", 1), full("SPG").acct("AG", "20240101").fuel("G").mon("2024-01", 1),
		}, nil},
		{"two customers at two premises", []*rb{
			full("SP1").mon("2024-01", 1), full("SP2").acct("A2", "20240101").who("C2", "P2").mon("2024-01", 1),
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.rows...)
			expect(t, "anomalies", anomStrings(h.all1.Anomalies), tc.want)
			for _, a := range h.all1.Anomalies {
				if a.PremiseID != "P1" || !strings.Contains(a.Message, "C1, C2") || a.Source.Line == 0 {
					t.Errorf("anomaly %+v: want premise P1, both customers named and the row behind it", a)
				}
			}
		})
	}
}

// TestS1MidCycleMeterExchange: a meter exchanged mid-cycle, the old meter
// billed to its cycle end after the new one started, is a replacement too.
func TestS1MidCycleMeterExchange(t *testing.T) {
	cases := []struct {
		name    string
		overlap int
		want    string
	}{
		{"default overlap", 35, "SERVICE_POINT_CHANGED:S1:SPE2:20240615..20250614"},
		{"no overlap allowed", 0, "eligible"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			p.ReplacementOverlapDays = tc.overlap
			h := newHarness(t, p)
			h.feed(months(full("SPE1"), "2024-01", 5)...)                      // January to May
			h.feed(full("SPE2").acct("A2", "20240615").per("20240714", 30, 1)) // the new meter from June 15
			h.feed(full("SPE1").mon("2024-06", 1))                             // the old meter's last bill, to its cycle end
			if got := h.now("C1", "P1", ProgramCommunications); got != tc.want {
				t.Errorf("communications: %s, want %s", got, tc.want)
			}
		})
	}
}

// TestS2DateFromTheSubjectsTenure: NO_DUAL_FUEL (S2) and INSUFFICIENT_HISTORY
// (I5) date from when the condition began for the subject (C1), the customer
// at the premise: from the start of its unbroken tenure there whatever its
// account numbers, from when a gas and electric pair was lost, and never
// from a zero date when the service point has left the premise (S3, A9).
func TestS2DateFromTheSubjectsTenure(t *testing.T) {
	cases := []struct {
		name    string
		rows    []*rb
		cust    string
		dual    string // dual_fuel_insights at P1 at the end
		disaggr string // disaggregation at P1 at the end

	}{
		{name: "S3: the service point moves to another premise", rows: []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").who("C1", "P9").mon("2024-02", 1)},
			dual:    "BLOCKED_FOR_COMMUNICATIONS:S2::20240201 NO_DUAL_FUEL:S2::20240101",
			disaggr: "BLOCKED_FOR_COMMUNICATIONS:I5::20240201 INSUFFICIENT_HISTORY:I5::20240101"},
		{name: "S3: it moves after a new account of the same customer", rows: []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").acct("A2", "20240201").mon("2024-02", 1),
			full("SP1").acct("A2", "20240201").who("C1", "P9").mon("2024-03", 1)},
			// A1 stays the customer's at P1, superseded by A2 (now at P9).
			dual:    "BLOCKED_FOR_COMMUNICATIONS:S2::20240201 NO_DUAL_FUEL:S2::20240101",
			disaggr: "BLOCKED_FOR_COMMUNICATIONS:I5::20240201 INSUFFICIENT_HISTORY:I5::20240101"},
		{name: "U2: a new account of the same customer", rows: []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").acct("A2", "20240201").mon("2024-02", 1)},
			dual: "NO_DUAL_FUEL:S2::20240101", disaggr: "INSUFFICIENT_HISTORY:I5::20240101"},
		{name: "A3: the account's active_date moves later", rows: []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").acct("A1", "20240201").mon("2024-02", 1)},
			dual:    "BLOCKED_FOR_COMMUNICATIONS:S2::20240201 NO_DUAL_FUEL:S2::20240101",
			disaggr: "BLOCKED_FOR_COMMUNICATIONS:I5::20240201 INSUFFICIENT_HISTORY:I5::20240101"},
		{name: "terminated the day before the next account began: one tenure", rows: []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").inactive("20240229").mon("2024-02", 1),
			full("SP1").acct("A2", "20240301").mon("2024-03", 1)},
			dual: "NO_DUAL_FUEL:S2::20240101", disaggr: "INSUFFICIENT_HISTORY:I5::20240101"},
		{name: "back after a vacancy: a new tenure", rows: []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").inactive("20240131").mon("2024-01", 1),
			full("SP1").acct("A2", "20240301").mon("2024-03", 1)},
			// February has no usage: the subject's gap (U2) blocks too.
			dual:    "BLOCKED_FOR_COMMUNICATIONS:S2::20240201 NO_DUAL_FUEL:S2::20240301",
			disaggr: "BLOCKED_FOR_COMMUNICATIONS:I5::20240201 INSUFFICIENT_HISTORY:I5::20240301"},
		{name: "back after another customer: a new tenure", rows: []*rb{
			full("SP1").mon("2024-01", 1), full("SP1").acct("A2", "20240201").who("C2", "P1").mon("2024-02", 1),
			full("SP1").acct("A3", "20240301").mon("2024-03", 1)},
			dual: "NO_DUAL_FUEL:S2::20240301", disaggr: "INSUFFICIENT_HISTORY:I5::20240301"},
		{name: "C4: the pair is lost when the first fuel ends, not the last", rows: []*rb{
			full("SPE").mon("2024-01", 1), full("SPG").acct("AG", "20240101").fuel("G").mon("2024-01", 1),
			full("SPE").acct("A2", "20240201").who("C2", "P1").mon("2024-02", 1),
			full("SPG").acct("AG2", "20240301").who("C2", "P1").fuel("G").mon("2024-03", 1)},
			dual:    "BLOCKED_FOR_COMMUNICATIONS:S2::20240201 NO_DUAL_FUEL:S2::20240201",
			disaggr: "BLOCKED_FOR_COMMUNICATIONS:I5::20240201 INSUFFICIENT_HISTORY:I5::20240101"},
		{name: "C4: the new customer's tenure begins at its first account", cust: "C2", rows: []*rb{
			full("SPE").mon("2024-01", 1), full("SPG").acct("AG", "20240101").fuel("G").mon("2024-01", 1),
			full("SPE").acct("A2", "20240201").who("C2", "P1").mon("2024-02", 1),
			full("SPG").acct("AG2", "20240301").who("C2", "P1").fuel("G").mon("2024-03", 1),
			full("SPE").acct("A2", "20240201").who("C2", "P1").inactive("20240430").mon("2024-04", 1)},
			dual: "NO_DUAL_FUEL:S2::20240430", disaggr: "INSUFFICIENT_HISTORY:I5::20240201"},
		{name: "a gas and an electric account that never overlapped made no pair", rows: []*rb{
			full("SPE").mon("2024-01", 1), full("SPE").inactive("20240131").mon("2024-01", 1),
			full("SPG").acct("AG", "20240201").fuel("G").mon("2024-02", 1)},
			dual: "NO_DUAL_FUEL:S2::20240101", disaggr: "INSUFFICIENT_HISTORY:I5::20240101"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultPolicy())
			h.feed(tc.rows...)
			cust := cmp.Or(tc.cust, "C1")
			if got := h.now(cust, "P1", ProgramDualFuelInsights); got != tc.dual {
				t.Errorf("dual_fuel_insights: %s, want %s", got, tc.dual)
			}
			if got := h.now(cust, "P1", ProgramDisaggregation); got != tc.disaggr {
				t.Errorf("disaggregation: %s, want %s", got, tc.disaggr)
			}
		})
	}
}
