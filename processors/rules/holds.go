package rules

import (
	"cmp"
	"fmt"
	"slices"

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
	return []Reason{{Code: ReasonOperatorHold, Rule: "OV2", EffectiveDate: h.Since, Source: h.Source}}
}

// ApplyAction applies an operator's hold or release (OV2) to the program of
// one premise of this customer and emits what changes; src is the action's
// position, the cause of every event. A hold replaces the program's earlier
// hold; a release of a program not held changes nothing. A hold for a
// premise the customer has no data at yet waits for it. A hold lasts until
// released: an until date is refused by records.OperatorAction.Validate
// (docs/rules.md#OV2 says why).
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
			ActionID: a.ActionID, Source: src}
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

// KnownProgram reports whether name is a program the rules evaluate: a hold
// of any other would hold nothing.
func KnownProgram(name string) bool {
	return slices.ContainsFunc(programTable, func(p program) bool { return p.name == name })
}
