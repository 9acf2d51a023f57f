package rules

import (
	"fmt"
	"slices"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// AnomalyOverrideRefused reports an operator action a stage could not apply
// (OV1): nothing open matched it, or the condition is one the operator
// cannot clear. The action stays on its topic; the refusal is its outcome.
const AnomalyOverrideRefused = "OVERRIDE_REFUSED"

// clearable says which conditions an operator may clear (OV1). Gaps and
// overlaps (U2, U3) are not: they are derived again from the timeline with
// every usage row, so a clear would last until the next row; the way to
// end them is the row that fills or corrects the period.
func clearable(code string) bool {
	return code == AnomalyActiveDateChanged || code == AnomalyReactivationRefused
}

// ApplyAction applies an operator action addressed to this service point
// (OV1, CLEAR_ANOMALY): the open condition it names is cleared, the cleared
// anomaly cites the action (src is the action's position on its topic; the
// message names its id and ticket), and the memberships are sent again so
// that a reason the condition gave ends in stage 2 too. An action that
// matches nothing open is refused with an OVERRIDE_REFUSED anomaly.
//
// changed reports whether the state changed (a refusal leaves it as it was).
//
// Preconditions: a.Validate() holds and a belongs to this service point (a
// routing bug panics, as in Apply). Deterministic, like Apply: the action's
// requested_at is the only clock it reads, and only to date a refusal.
func (sp *ServicePoint) ApplyAction(p Policy, a *records.OperatorAction, src Source) (out Stage1Output, changed bool) {
	if sp.ID != "" && a.ServicePointID != sp.ID {
		panic(fmt.Sprintf("rules: operator action for service point %q applied to %q: the runtime must key actions by service_point_id", a.ServicePointID, sp.ID))
	}
	refuse := func(why string) (Stage1Output, bool) {
		r := Anomaly{ServicePointID: a.ServicePointID, Code: AnomalyOverrideRefused, Rule: "OV1",
			EffectiveDate: dates.FromTime(a.RequestedAt), AccountID: a.AccountID, Source: src,
			Message: fmt.Sprintf("operator action %s (ticket %s) refused: %s (OV1)", a.ActionID, a.Ticket, why)}
		if sp.ID != "" && r.AccountID == "" {
			if c := sp.current(); c >= 0 {
				sp.stamp(&r, c)
			}
		}
		out.Anomalies = append(out.Anomalies, r)
		return out, false
	}
	if a.Kind != records.ActionClearAnomaly {
		return refuse(fmt.Sprintf("kind %s is not applied by the service point stage", a.Kind))
	}
	if !clearable(a.AnomalyCode) {
		return refuse(fmt.Sprintf("%s is no condition an operator can clear (only %s and %s are; gaps and overlaps end with the row that fills or corrects the period)",
			a.AnomalyCode, AnomalyActiveDateChanged, AnomalyReactivationRefused))
	}
	k := -1
	for i := range sp.Open {
		o := &sp.Open[i]
		if o.Code != a.AnomalyCode || (a.AccountID != "" && o.AccountID != a.AccountID) {
			continue
		}
		if k >= 0 {
			return refuse(fmt.Sprintf("%s is open for accounts %s and %s: name the account", a.AnomalyCode, sp.Open[k].AccountID, o.AccountID))
		}
		k = i
	}
	if k < 0 {
		what := a.AnomalyCode
		if a.AccountID != "" {
			what += " for account " + a.AccountID
		}
		// The rows that open the condition may still come: a replay reads
		// billing.v1 and the actions' topic in no fixed order. The clear
		// waits for a condition opened by a row ingested before it.
		out, _ = refuse(fmt.Sprintf("no %s is open on service point %s; the clear waits for one opened by a row ingested before %s",
			what, a.ServicePointID, a.RequestedAt.UTC().Format(time.RFC3339)))
		sp.ID = a.ServicePointID
		sp.Pending = append(sp.Pending, PendingClear{ActionID: a.ActionID, Ticket: a.Ticket, Code: a.AnomalyCode,
			AccountID: a.AccountID, RequestedAt: a.RequestedAt.UnixMilli(), Refused: out.Anomalies[0].EffectiveDate, Source: src})
		return out, true
	}
	o := sp.Open[k].EffectiveDate
	sp.clearOpen(k, a.ActionID, a.Ticket, src, &out)
	sp.updateMemberships(p, o, src, &out)
	return out, true
}

// clearOpen clears open condition k for an operator action (OV1) at src.
func (sp *ServicePoint) clearOpen(k int, actionID, ticket string, src Source, out *Stage1Output) {
	o := sp.Open[k]
	sp.Open = slices.Delete(sp.Open, k, k+1)
	if o.Code == AnomalyActiveDateChanged {
		// The operator accepts the changed date as the account's own: rows
		// that carry it no longer open the condition again, and a row that
		// brings the old date back is a change like any other (A3).
		sp.FirstActive[o.AccountID] = o.To
	}
	c := Anomaly{ServicePointID: sp.ID, Code: o.Code, Rule: "OV1", EffectiveDate: o.EffectiveDate, Until: o.Until,
		Cleared: true, AccountID: o.AccountID, Source: src,
		Message: fmt.Sprintf("%s: cleared by operator action %s (ticket %s) (OV1)", o.describe(), actionID, ticket)}
	if i := sp.tenureOf(o.AccountID); i >= 0 {
		sp.stamp(&c, i)
	}
	out.Anomalies = append(out.Anomalies, c)
}

// applyPending applies the pending clears (OV1) to the conditions the row
// at src just opened, when the row was ingested before the clear was
// requested: the clear then ends what it would have ended had it come
// after the row, and its refusal is withdrawn (cleared). Both events cite
// the action.
func (sp *ServicePoint) applyPending(src Source, out *Stage1Output) {
	if len(sp.Pending) == 0 || sp.rowAtMs == 0 {
		return
	}
	for k := 0; k < len(sp.Open); k++ {
		o := sp.Open[k]
		if o.Source != src || !clearable(o.Code) {
			continue
		}
		i := slices.IndexFunc(sp.Pending, func(pc PendingClear) bool {
			return pc.Code == o.Code && (pc.AccountID == "" || pc.AccountID == o.AccountID) && sp.rowAtMs <= pc.RequestedAt
		})
		if i < 0 {
			continue
		}
		pc := sp.Pending[i]
		sp.Pending = slices.Delete(sp.Pending, i, i+1)
		sp.clearOpen(k, pc.ActionID, pc.Ticket, pc.Source, out)
		k--
		w := Anomaly{ServicePointID: sp.ID, Code: AnomalyOverrideRefused, Rule: "OV1", EffectiveDate: pc.Refused, Cleared: true,
			AccountID: pc.AccountID, Source: pc.Source,
			Message: fmt.Sprintf("operator action %s (ticket %s) applied after all: a row ingested before it opened %s (OV1)", pc.ActionID, pc.Ticket, o.Code)}
		if w.AccountID == "" {
			w.AccountID = o.AccountID
		}
		out.Anomalies = append(out.Anomalies, w)
	}
}
