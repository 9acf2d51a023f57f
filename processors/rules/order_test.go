package rules

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
)

// Issue 14: the customer stage receives the memberships of a customer's
// service points and their interval history in whatever order the
// partitioning and the timing of the stages before it give. Its final
// state, every reason's date included, must not depend on that order.

// stage2Input is one input of the customer stage: a membership or an
// interval history.
type stage2Input struct {
	m       *Membership
	sp      string // interval history of sp at m's premise: months
	premise string
	months  int
}

func (in stage2Input) apply(p Policy, c *Customer) {
	if in.m != nil {
		m := *in.m
		c.Receive(p, CustomerInput{CustomerID: m.CustomerID, PremiseID: m.PremiseID, Membership: &m}, Source{})
		return
	}
	c.SetIntervalHistory(p, in.premise, in.sp, in.months, Source{})
}

// finalReasons renders what was last emitted for every premise and program.
func finalReasons(c *Customer) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(c.Premises)) {
		pr := c.Premises[id]
		for _, prog := range slices.Sorted(maps.Keys(pr.Sent)) {
			fmt.Fprintf(&b, "%s %s:", id, prog)
			for _, r := range pr.Sent[prog] {
				fmt.Fprintf(&b, " %s/%s/%s from %s", r.Code, r.Rule, r.ServicePointID, r.EffectiveDate)
				if r.Until != 0 {
					fmt.Fprintf(&b, " until %s", r.Until)
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// permutations calls f with every order of ins.
func permutations(ins []stage2Input, f func([]stage2Input)) {
	var rec func(k int)
	rec = func(k int) {
		if k == len(ins) {
			f(ins)
			return
		}
		for i := k; i < len(ins); i++ {
			ins[k], ins[i] = ins[i], ins[k]
			rec(k + 1)
			ins[k], ins[i] = ins[i], ins[k]
		}
	}
	rec(0)
}

func TestCustomerFinalStateIgnoresArrivalOrder(t *testing.T) {
	t.Parallel()
	d := dates.MustParse
	member := func(sp, premise, fuel, active string, isActive bool, reasons ...Reason) stage2Input {
		return stage2Input{m: &Membership{CustomerID: "C1", PremiseID: premise, ServicePointID: sp, ServiceType: fuel,
			AccountID: "A-" + sp, ActiveDate: d(active), Active: isActive, Reasons: reasons}}
	}
	ended := Reason{Code: ReasonInactive, Rule: "A4", ServicePointID: "SP-G", EffectiveDate: d("20240630")}
	rate := Reason{Code: ReasonRateNotAllowed, Rule: "A7", ServicePointID: "SP-NEW", EffectiveDate: d("20240801")}
	cases := map[string][]stage2Input{
		// An old meter and its replacement (the live diff of issue 14: I5
		// dated from the one that arrived first), with interval history.
		"replacement with history": {
			member("SP-OLD", "P1", "E", "20240104", true),
			member("SP-NEW", "P1", "E", "20240704", true, rate),
			{sp: "SP-NEW", premise: "P1", months: 3},
		},
		// A gas account that ended beside an active electric one (S2 dated
		// from the end of the pair) and a communications block.
		"dual fuel lost": {
			member("SP-E", "P1", "E", "20240101", true),
			member("SP-G", "P1", "G", "20240201", false, ended),
			member("SP-NEW", "P1", "E", "20240301", true, rate),
		},
		// Four premises: a property manager (C2) whichever premise tipped it.
		"property manager": {
			member("SP1", "P1", "E", "20240101", true),
			member("SP2", "P2", "E", "20240301", true),
			member("SP3", "P3", "E", "20240201", true),
			member("SP4", "P4", "E", "20240401", true),
		},
	}
	p := DefaultPolicy()
	for name, ins := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var first, firstOrder string
			permutations(ins, func(order []stage2Input) {
				var c Customer
				var names []string
				for _, in := range order {
					in.apply(p, &c)
					if in.m != nil {
						names = append(names, in.m.ServicePointID)
					} else {
						names = append(names, "history of "+in.sp)
					}
				}
				got := finalReasons(&c)
				if first == "" {
					first, firstOrder = got, strings.Join(names, ", ")
					return
				}
				if got != first {
					t.Errorf("in the order %s:\n%s\nin the order %s:\n%s", firstOrder, first, strings.Join(names, ", "), got)
				}
			})
			if first == "" {
				t.Fatal("nothing emitted")
			}
		})
	}
}

// The premise stage judges S1 from the memberships of every service point
// at the premise; each service point's come in order, but how they
// interleave is the partitioning's.
func TestSiteFinalStateIgnoresArrivalOrder(t *testing.T) {
	t.Parallel()
	d := dates.MustParse
	m := func(sp, first, last, chain string, months int) Membership {
		return Membership{CustomerID: "C1", PremiseID: "P1", ServicePointID: sp, ServiceType: "E", AccountID: "A-" + sp,
			ActiveDate: d("20230101"), Active: true, FirstPeriodStart: d(first), LastDateTo: d(last), ChainStart: d(chain), ChainedMonths: months}
	}
	old := []Membership{m("SP-OLD", "20230101", "20240614", "20230101", 17)}
	// The replacement's first row, then an older row of its history (a
	// back-filled file) that moves its first period start.
	repl := []Membership{m("SP-NEW", "20240701", "20241231", "20240701", 6), m("SP-NEW", "20240615", "20241231", "20240615", 6)}
	p := DefaultPolicy()
	var first, firstOrder string
	for k := range len(repl) + 1 { // where the old service point's membership comes
		order := slices.Concat(repl[:k], old, repl[k:])
		var s Site
		var names []string
		for _, mm := range order {
			s.Apply(p, mm)
			names = append(names, fmt.Sprintf("%s first %s", mm.ServicePointID, mm.FirstPeriodStart))
		}
		var b strings.Builder
		for _, r := range s.Sent["C1"] {
			fmt.Fprintf(&b, "%s/%s/%s from %s until %s\n", r.Code, r.Rule, r.ServicePointID, r.EffectiveDate, r.Until)
		}
		got := b.String()
		if got == "" {
			t.Fatalf("in the order %s: no S1 reason", strings.Join(names, ", "))
		}
		if first == "" {
			first, firstOrder = got, strings.Join(names, ", ")
			continue
		}
		if got != first {
			t.Errorf("in the order %s:\n%s\nin the order %s:\n%s", firstOrder, first, strings.Join(names, ", "), got)
		}
	}
}

// A retraction (A9, here an S3 move) carries no date: the customer stage
// keeps the tenure start of the membership it replaces, which always came
// before it. Wherever another service point's membership and history come
// in between, the final dates are the same, and never the zero date.
func TestS3RetractionDatesIgnoreArrivalOrder(t *testing.T) {
	d := dates.MustParse
	elec := []Membership{
		{CustomerID: "C1", PremiseID: "P1", ServicePointID: "SP-E", ServiceType: "E", AccountID: "A2",
			ActiveDate: d("20230401"), Since: d("20230101"), Active: true},
		{CustomerID: "C1", PremiseID: "P1", ServicePointID: "SP-E", ServiceType: "E", Deleted: true,
			Reasons: []Reason{{Code: ReasonInactive, Rule: "A9", ServicePointID: "SP-E", EffectiveDate: d("20230701")}}},
	}
	gas := []stage2Input{
		{m: &Membership{CustomerID: "C1", PremiseID: "P1", ServicePointID: "SP-G", ServiceType: "G", AccountID: "AG",
			ActiveDate: d("20230301"), Since: d("20230301"), Active: true}},
		{sp: "SP-G", premise: "P1", months: 4},
	}
	const want = "P1 communications:\n" +
		"P1 disaggregation: INSUFFICIENT_HISTORY/I5/ from 20230101\n" +
		"P1 dual_fuel_insights: NO_DUAL_FUEL/S2/ from 20230701\n" +
		"P1 neighbor_comparison:\n" +
		"P1 web_access:\n"
	p := DefaultPolicy()
	for i := range len(elec) + 1 { // where the gas membership comes
		for j := i; j <= len(elec); j++ { // where its history comes (after it)
			var order []stage2Input
			for k := 0; k <= len(elec); k++ {
				if k == i {
					order = append(order, gas[0])
				}
				if k == j {
					order = append(order, gas[1])
				}
				if k < len(elec) {
					order = append(order, stage2Input{m: &elec[k]})
				}
			}
			var c Customer
			for _, in := range order {
				in.apply(p, &c)
			}
			if got := finalReasons(&c); got != want {
				t.Errorf("gas at %d, its history at %d:\n%s\nwant\n%s", i, j, got, want)
			}
		}
	}
}
