package rules

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// ReasonOperatorHold is the reason of a program an operator holds
// ineligible (OV2).
const ReasonOperatorHold = "OPERATOR_HOLD"

// Hold is an operator's hold of one program for a customer at a premise
// (OV2): eligible or not, whatever the reasons, until released.
type Hold struct {
	Program  string `json:"program"`
	Eligible bool   `json:"eligible"`
	// Since is the day the operator asked (the action's requested_at).
	Since    dates.Date `json:"since"`
	ActionID string     `json:"action_id"`
	Source   Source     `json:"source"` // the action's position
	// Until is the last day held (0: until released); the hold ends when
	// the day after it begins (UTC), by the customer stage's timer.
	Until dates.Date `json:"until,omitempty"`
	// Utility of the action, for the events its end causes.
	Utility string `json:"utility,omitempty"`
}

// End is when a hold with an until date ends: midnight UTC after its last
// day; zero for a hold until released.
func (h Hold) End() time.Time {
	if h.Until == 0 {
		return time.Time{}
	}
	return h.Until.AddDays(1).Time()
}

// held applies a hold of program to the reasons the rules found: held
// eligible, none; held ineligible, the hold alone.
func (pr *Premise) held(program string, rs []Reason) []Reason {
	k := slices.IndexFunc(pr.Holds, func(h Hold) bool { return h.Program == program })
	if k < 0 {
		return rs
	}
	h := pr.Holds[k]
	if h.Eligible {
		return nil
	}
	return []Reason{{Code: ReasonOperatorHold, Rule: "OV2", EffectiveDate: h.Since, Until: h.Until, Source: h.Source}}
}

// ApplyAction applies an operator's hold or release (OV2) to the program of
// one premise of this customer and emits what changes; src is the action's
// position, the cause of every event. A hold replaces the program's earlier
// hold; a release of a program not held changes nothing. A hold for a
// premise the customer has no data at yet waits for it. A hold lasts until
// released, or with an until date until EndHolds is called past its End
// (the customer stage's timer at NextHoldEnd).
//
// Preconditions: a.Validate() holds and a is this customer's (a routing bug
// panics, as in Receive). Deterministic: requested_at is the only clock it
// reads, and only to date the hold.
func (c *Customer) ApplyAction(p Policy, a *records.OperatorAction, src Source) []EligibilityChanged {
	switch {
	case c.ID == "":
		c.ID = a.CustomerID
	case a.CustomerID != c.ID:
		panic(fmt.Sprintf("rules: operator action for customer %q applied to %q: the runtime must key holds by customer_id", a.CustomerID, c.ID))
	}
	pr := c.premise(a.PremiseID)
	k := slices.IndexFunc(pr.Holds, func(h Hold) bool { return h.Program == a.Program })
	switch a.Kind {
	case records.ActionReleaseHold:
		if k < 0 {
			return nil
		}
		pr.Holds = slices.Delete(pr.Holds, k, k+1)
		if len(pr.Holds) == 0 {
			pr.Holds = nil
		}
	case records.ActionHoldEligible, records.ActionHoldIneligible:
		h := Hold{Program: a.Program, Eligible: a.Kind == records.ActionHoldEligible, Since: dates.FromTime(a.RequestedAt),
			ActionID: a.ActionID, Source: src, Utility: a.Utility}
		if a.Until != nil {
			h.Until = *a.Until
		}
		if k >= 0 {
			pr.Holds[k] = h
		} else {
			pr.Holds = append(pr.Holds, h)
			slices.SortFunc(pr.Holds, func(x, y Hold) int { return cmp.Compare(x.Program, y.Program) })
		}
	default:
		panic(fmt.Sprintf("rules: operator action of kind %s sent to stage 2", a.Kind))
	}
	return c.evaluate(p, a.PremiseID, src, src)
}

// NextHoldEnd is when the customer's first hold with an until date ends
// (Hold.End); ok is false when no hold has one.
func (c *Customer) NextHoldEnd() (at time.Time, ok bool) {
	for _, id := range slices.Sorted(maps.Keys(c.Premises)) {
		for _, h := range c.Premises[id].Holds {
			if e := h.End(); !e.IsZero() && (!ok || e.Before(at)) {
				at, ok = e, true
			}
		}
	}
	return at, ok
}

// EndHolds ends the holds whose End is at or before at (OV2) and returns
// what changes, each event citing the action that set the hold; utility is
// that action's. Deterministic: at is the timer's time, not the clock.
func (c *Customer) EndHolds(p Policy, at time.Time) (changed []EligibilityChanged, utility string) {
	for _, id := range slices.Sorted(maps.Keys(c.Premises)) {
		pr := c.Premises[id]
		var ended []Hold
		pr.Holds = slices.DeleteFunc(pr.Holds, func(h Hold) bool {
			if e := h.End(); !e.IsZero() && !e.After(at) {
				ended = append(ended, h)
				return true
			}
			return false
		})
		if len(ended) == 0 {
			continue
		}
		if len(pr.Holds) == 0 {
			pr.Holds = nil
		}
		utility = ended[0].Utility
		changed = append(changed, c.evaluate(p, id, ended[0].Source, ended[0].Source)...)
	}
	return changed, utility
}

// KnownProgram reports whether name is a program the rules evaluate: a hold
// of any other would hold nothing.
func KnownProgram(name string) bool {
	return slices.ContainsFunc(programTable, func(p program) bool { return p.name == name })
}
