package rules

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/usagestream/usagestream/internal/dates"
)

// Customer is the stage 2 state of one customer_id (the key of stage 2): the
// status of each of its service points at each premise, as stage 1 last
// reported it, and what was last emitted per (premise, program).
//
// Invariants (CheckInvariants):
//   - Premises[id].Points[sp] has PremiseID id, ServicePointID sp and
//     CustomerID ID.
//   - ActivePremises counts the premises with an active point.
//   - Pinned reasons of a premise are sorted and unique by (Code, Rule,
//     ServicePointID).
type Customer struct {
	ID       string              `json:"id"`
	Premises map[string]*Premise `json:"premises,omitempty"`
	// ActivePremises is the number of premises where the customer has an
	// active account (C2), kept so that a membership costs O(1) premises.
	ActivePremises int `json:"active_premises,omitempty"`
	// PropertyManager is the C2 reason while it holds, pinned when it began
	// so that its date and source stay those of the premise that tipped it.
	PropertyManager *Reason `json:"property_manager,omitempty"`
}

// Premise is a customer at one premise: the subject of eligibility (C1).
type Premise struct {
	// SecondaryID is the id to display (C3): the latest one an active
	// service point reported, else the latest reported.
	SecondaryID string                `json:"secondary_id,omitempty"`
	Points      map[string]Membership `json:"points,omitempty"` // by service point id
	// IntervalMonths is the months of interval history by service point (I5),
	// as the interval stage last reported it through SetIntervalHistory.
	IntervalMonths map[string]int `json:"interval_months,omitempty"`
	// Replacements is the premise's S1 reasons for this customer, as the
	// premise stage (Site) last sent them.
	Replacements []Reason `json:"replacements,omitempty"`
	// Pinned holds the reasons stage 2 derives (S1, S2, I5, blocked for
	// communications) as last derived: the date is the data's, the source
	// the input that first gave the reason that date (pin).
	Pinned []Reason `json:"pinned,omitempty"`
	// Evaluated is set after the first evaluation, which emits every program.
	Evaluated bool `json:"evaluated,omitempty"`
	// Sent is what was last emitted, by program.
	Sent map[string][]Reason `json:"sent,omitempty"`
	// Holds are the operators' holds of a program (OV2), sorted by
	// program, at most one each.
	Holds []Hold `json:"holds,omitempty"`
}

// Eligible says whether the customer is eligible for program at this
// premise, as last emitted: evaluated, and no reason sent for it.
func (pr *Premise) Eligible(program string) bool {
	return pr.Evaluated && eligible(pr.Sent[program])
}

// eligible is the one definition of eligibility: no reason blocks.
func eligible(rs []Reason) bool { return len(rs) == 0 }

func (pr *Premise) active() bool {
	for _, m := range pr.Points {
		if m.Active {
			return true
		}
	}
	return false
}

// Receive runs stage 2 for one input from the premise stage: a membership of
// this customer, the S1 reasons of its premise, or both. in.Cause, the billing
// row behind the input, becomes the source of the reasons stage 2 derives;
// src, the stage 2 input itself, becomes the source of the events. An input
// for another customer is a routing bug and panics.
func (c *Customer) Receive(p Policy, in CustomerInput, src Source) []EligibilityChanged {
	switch {
	case c.ID == "":
		c.ID = in.CustomerID
	case in.CustomerID != c.ID:
		panic(fmt.Sprintf("rules: input of customer %q applied to %q: the runtime must key stage 2 inputs by customer_id", in.CustomerID, c.ID))
	}
	pr := c.premise(in.PremiseID)
	if in.Replacements != nil {
		pr.Replacements = slices.Clone(*in.Replacements)
	}
	ms := in.Memberships
	if in.Membership != nil {
		ms = []Membership{*in.Membership}
	}
	if len(ms) == 0 {
		return c.evaluate(p, in.PremiseID, in.Cause, src)
	}
	pm := false
	for _, m := range ms {
		if m.CustomerID != c.ID || m.PremiseID != in.PremiseID {
			panic(fmt.Sprintf("rules: membership of (%q, %q) sent as an input of (%q, %q)", m.CustomerID, m.PremiseID, in.CustomerID, in.PremiseID))
		}
		pm = c.receiveMembership(p, pr, m, in.Cause) || pm
	}
	if pm {
		var out []EligibilityChanged
		for _, id := range slices.Sorted(maps.Keys(c.Premises)) {
			out = append(out, c.evaluate(p, id, in.Cause, src)...)
		}
		return out
	}
	return c.evaluate(p, in.PremiseID, in.Cause, src)
}

// receiveMembership records membership m at premise pr and reports whether
// the customer's property-manager status changed (every premise is judged
// again then).
func (c *Customer) receiveMembership(p Policy, pr *Premise, m Membership, cause Source) bool {
	was := pr.active()
	m.Reasons = slices.Clone(m.Reasons)
	if prev, ok := pr.Points[m.ServicePointID]; ok && m.Deleted && m.since() == 0 {
		// A retraction (A9: the account now names another customer or
		// premise) carries no date; the subject's tenure here still began
		// when the membership it retracts said, and S2 and I5 date from it.
		// That membership came before it (same service point, same keys at
		// every stage), so this does not depend on arrival order.
		m.Since = prev.since()
	}
	pr.Points[m.ServicePointID] = m
	if m.Active || !pr.active() {
		pr.SecondaryID = m.SecondaryID
	}
	switch now := pr.active(); {
	case now && !was:
		c.ActivePremises++
	case was && !now:
		c.ActivePremises--
	}
	return c.updatePropertyManager(p, cause)
}

// SetIntervalHistory records the months of interval history of a service
// point (I5), as the interval stage reports it, and re-evaluates its premise.
func (c *Customer) SetIntervalHistory(p Policy, premiseID, servicePointID string, months int, src Source) []EligibilityChanged {
	pr := c.premise(premiseID)
	if pr.IntervalMonths == nil {
		pr.IntervalMonths = map[string]int{}
	}
	pr.IntervalMonths[servicePointID] = months
	return c.evaluate(p, premiseID, src, src)
}

func (c *Customer) premise(id string) *Premise {
	if c.Premises == nil {
		c.Premises = map[string]*Premise{}
	}
	pr := c.Premises[id]
	if pr == nil {
		pr = &Premise{Points: map[string]Membership{}}
		c.Premises[id] = pr
	}
	if pr.Points == nil {
		pr.Points = map[string]Membership{}
	}
	return pr
}

// updatePropertyManager starts, ends or re-dates the C2 reason; it reports a
// change. The reason's date is when the customer became active at more than
// PropertyManagerPremises premises, by the active premises on record (each
// counted from its earliest active account): the (PropertyManagerPremises+1)th
// earliest of them. It is worked out again on every membership, so that it
// does not depend on which premise's membership came first.
func (c *Customer) updatePropertyManager(p Policy, cause Source) bool {
	should := c.ActivePremises > p.PropertyManagerPremises
	switch {
	case should:
		var since []dates.Date
		for _, pr := range c.Premises {
			first := dates.Date(0)
			for _, m := range pr.Points {
				if m.Active && (first == 0 || m.ActiveDate < first) {
					first = m.ActiveDate
				}
			}
			if pr.active() {
				since = append(since, first)
			}
		}
		slices.Sort(since)
		d := since[p.PropertyManagerPremises]
		if c.PropertyManager != nil && c.PropertyManager.EffectiveDate == d {
			return false
		}
		c.PropertyManager = &Reason{Code: ReasonPropertyManager, Rule: "C2", EffectiveDate: d, Source: cause}
		return true
	case c.PropertyManager != nil:
		c.PropertyManager = nil
		return true
	}
	return false
}

// evaluate works out every program of one premise and emits those whose
// reasons changed (all of them the first time).
func (c *Customer) evaluate(p Policy, id string, cause, src Source) []EligibilityChanged {
	pr := c.Premises[id]
	if len(pr.Points) == 0 {
		return nil // nothing known about the customer here yet
	}
	ids := slices.Sorted(maps.Keys(pr.Points))
	anyActive := pr.active()

	// The service points' own reasons. While the customer has an active
	// account at the premise, an account that ended (one fuel terminated or
	// superseded) does not block the premise: INACTIVE and SUPERSEDED hold
	// only when no account here is active, and then every point speaks.
	var all []Reason
	for _, sp := range ids {
		if m := pr.Points[sp]; m.Active || !anyActive {
			all = append(all, m.Reasons...)
		}
	}
	if c.PropertyManager != nil {
		all = append(all, *c.PropertyManager)
	}

	cands := slices.Clone(pr.Replacements)
	cands = append(cands, c.dualFuel(pr, ids, cause)...)
	cands = append(cands, c.history(p, pr, ids, cause)...)
	comm := communications().selectReasons(append(slices.Clip(all), cands...))
	if len(comm) > 0 {
		first := slices.MinFunc(comm, func(a, b Reason) int { return cmp.Compare(a.EffectiveDate, b.EffectiveDate) })
		for _, prog := range programTable {
			if prog.commRule != "" {
				cands = append(cands, Reason{Code: ReasonBlockedForCommunications, Rule: prog.commRule,
					EffectiveDate: first.EffectiveDate, Source: first.Source})
			}
		}
	}
	pr.Pinned = pin(pr.Pinned, cands)
	all = append(all, pr.Pinned...)

	var out []EligibilityChanged
	if pr.Sent == nil {
		pr.Sent = map[string][]Reason{}
	}
	for i := range programTable {
		prog := &programTable[i]
		rs := pr.held(prog.name, prog.selectReasons(all))
		if pr.Evaluated && sameReasons(rs, pr.Sent[prog.name]) {
			continue
		}
		before, first := pr.Sent[prog.name], !pr.Evaluated
		pr.Sent[prog.name] = rs
		if out == nil {
			out = make([]EligibilityChanged, 0, len(programTable)) // one allocation, not one per doubling
		}
		out = append(out, EligibilityChanged{CustomerID: c.ID, PremiseID: id, SecondaryID: pr.SecondaryID,
			Program: prog.name, Eligible: eligible(rs), Reasons: slices.Clone(rs), Source: src,
			Before: before, First: first})
	}
	pr.Evaluated = true
	return out
}

// dualFuel finds S2's reason: no active gas and electric pair. It dates from
// when the pair was last lost: the latest end of a time when a gas and an
// electric account of the customer here were both active; with no such time,
// from the start of the customer's tenure here (firstActive). With no date on
// record at all (only retractions whose membership the stage never saw) it
// gives no reason rather than a zero date: the retractions' INACTIVE blocks
// communications, so dual fuel stays blocked.
func (c *Customer) dualFuel(pr *Premise, ids []string, cause Source) []Reason {
	type span struct{ from, to dates.Date } // to 0: still active
	var elec, gas []span
	for _, id := range ids {
		m := pr.Points[id]
		if m.ServiceType != "E" && m.ServiceType != "G" {
			continue
		}
		sp := span{from: m.since()}
		if !m.Active {
			for _, r := range m.Reasons {
				if r.Code == ReasonInactive || r.Code == ReasonSuperseded {
					sp.to = max(sp.to, r.EffectiveDate)
				}
			}
			if sp.from == 0 || sp.to == 0 {
				continue // no time on record: it made no pair
			}
		}
		if m.ServiceType == "E" {
			elec = append(elec, sp)
		} else {
			gas = append(gas, sp)
		}
	}
	var lost dates.Date
	for _, e := range elec {
		for _, g := range gas {
			switch to := minEnd(e.to, g.to); {
			case to == 0:
				return nil // both active now: a pair
			case max(e.from, g.from) < to:
				lost = max(lost, to)
			}
		}
	}
	since := cmp.Or(lost, firstActive(pr, ids))
	if since == 0 {
		return nil
	}
	return []Reason{{Code: ReasonNoDualFuel, Rule: "S2", EffectiveDate: since, Source: cause}}
}

// minEnd is the earlier of two ends, 0 standing for an end not yet come.
func minEnd(a, b dates.Date) dates.Date {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// history finds I5's reason: no active service point with enough interval
// history.
func (c *Customer) history(p Policy, pr *Premise, ids []string, cause Source) []Reason {
	for _, id := range ids {
		if pr.Points[id].Active && pr.IntervalMonths[id] >= p.IntervalHistoryMonths {
			return nil
		}
	}
	since := firstActive(pr, ids)
	if since == 0 {
		return nil // no date on record: see dualFuel
	}
	return []Reason{{Code: ReasonInsufficientHistory, Rule: "I5", EffectiveDate: since, Source: cause}}
}

// firstActive is when the customer's tenure at the premise began: the
// earliest Since of its memberships (C1: the subject is the customer at the
// premise, whatever its account numbers). 0 when none carries a date.
func firstActive(pr *Premise, ids []string) dates.Date {
	var since dates.Date
	for _, id := range ids {
		m := pr.Points[id]
		if d := m.since(); d != 0 && (since == 0 || d < since) {
			since = d
		}
	}
	return since
}

// pin returns cands with the source of the pinned reason of the same code,
// rule, service point and effective date where there is one: a derived
// reason keeps the cause that first gave it its date while the date holds.
//
// The date itself is never pinned: it is what the data say now (issue 14).
// Pinning the date of the first derivation made it depend on the order in
// which service points' memberships and interval history arrived, which
// the partitioning and the timing of the stages decide: two runs of the same
// input (or a replay) ended with different dates.
func pin(pinned, cands []Reason) []Reason {
	out := make([]Reason, 0, len(cands))
	for _, r := range cands {
		if k := slices.IndexFunc(pinned, func(q Reason) bool {
			return q.Code == r.Code && q.Rule == r.Rule && q.ServicePointID == r.ServicePointID && q.EffectiveDate == r.EffectiveDate
		}); k >= 0 {
			r.Source = pinned[k].Source
		}
		out = append(out, r)
	}
	sortReasons(out)
	return out
}
