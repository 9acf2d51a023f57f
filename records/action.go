package records

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
)

// Operator action kinds (schemas/operator_action.avsc, enum OperatorActionKind).
const (
	// ActionClearAnomaly clears a condition open on a service point (OV1).
	ActionClearAnomaly = "CLEAR_ANOMALY"
	// The hold kinds hold a program eligible or ineligible for a
	// (customer, premise) until released (OV2).
	ActionHoldEligible   = "HOLD_ELIGIBLE"
	ActionHoldIneligible = "HOLD_INELIGIBLE"
	ActionReleaseHold    = "RELEASE_HOLD"
)

// OperatorAction is an operator's override, audited: who asked, when, why
// and under which ticket. It is input, like a billing row: written to the
// operator-actions topic and applied by the stages in their exactly-once
// path, so a replay applies it again at the same place in the input.
//
// The avro tags follow schemas/operator_action.avsc.
type OperatorAction struct {
	ActionID       string      `avro:"action_id" json:"action_id"`
	Kind           string      `avro:"kind" json:"kind"`
	Utility        string      `avro:"utility" json:"utility,omitempty"`
	ServicePointID string      `avro:"service_point_id" json:"service_point_id,omitempty"`
	AnomalyCode    string      `avro:"anomaly_code" json:"anomaly_code,omitempty"`
	AccountID      string      `avro:"account_id" json:"account_id,omitempty"`
	CustomerID     string      `avro:"customer_id" json:"customer_id,omitempty"`
	PremiseID      string      `avro:"premise_id" json:"premise_id,omitempty"`
	Program        string      `avro:"program" json:"program,omitempty"`
	Until          *dates.Date `avro:"until" json:"until,omitempty"`
	Actor          string      `avro:"actor" json:"actor"`
	RequestedAt    time.Time   `avro:"requested_at" json:"requested_at"`
	Reason         string      `avro:"reason" json:"reason"`
	Ticket         string      `avro:"ticket" json:"ticket"`
}

// maxActionText bounds the free-text fields: an action is an audit record,
// not a document store.
const maxActionText = 2000

// Validate reports what makes a an action no stage can apply, naming the
// field to fix. Only a hold may have an until date (its last day), not
// before the day it is requested.
func (a *OperatorAction) Validate() error {
	var errs []error
	need := func(field, v string) {
		switch {
		case strings.TrimSpace(v) == "":
			errs = append(errs, fmt.Errorf("%s is empty", field))
		case len(v) > maxActionText:
			errs = append(errs, fmt.Errorf("%s is longer than %d bytes", field, maxActionText))
		}
	}
	need("action_id", a.ActionID)
	need("actor", a.Actor)
	need("reason", a.Reason)
	need("ticket", a.Ticket)
	if a.RequestedAt.IsZero() {
		errs = append(errs, errors.New("requested_at is not set"))
	}
	switch a.Kind {
	case ActionClearAnomaly:
		need("utility", a.Utility) // every event carries it
		need("service_point_id", a.ServicePointID)
		need("anomaly_code", a.AnomalyCode)
		if a.Until != nil {
			errs = append(errs, errors.New("until is for a hold: a clear ends the condition now"))
		}
	case ActionHoldEligible, ActionHoldIneligible, ActionReleaseHold:
		need("utility", a.Utility)
		need("customer_id", a.CustomerID)
		need("premise_id", a.PremiseID)
		need("program", a.Program)
		switch {
		case a.Until == nil:
		case a.Kind == ActionReleaseHold:
			errs = append(errs, errors.New("until is for a hold: a release ends the hold now"))
		case !a.RequestedAt.IsZero() && *a.Until < dates.FromTime(a.RequestedAt):
			errs = append(errs, fmt.Errorf("until %s is before the day the action is requested (%s): give the last day the hold should last",
				*a.Until, dates.FromTime(a.RequestedAt)))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q is none of %s, %s, %s, %s", a.Kind, ActionClearAnomaly, ActionHoldEligible, ActionHoldIneligible, ActionReleaseHold))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("operator action: %w", err)
	}
	return nil
}

// Key is the record key of the action on its topic: the service point for
// a clear, the customer for a hold or release.
func (a *OperatorAction) Key() string {
	if a.Kind == ActionClearAnomaly {
		return a.ServicePointID
	}
	return a.CustomerID
}

// ForCustomer reports whether the action belongs to the customer stage (a
// hold or release) rather than the service point stage (a clear).
func (a *OperatorAction) ForCustomer() bool {
	return a.Kind == ActionHoldEligible || a.Kind == ActionHoldIneligible || a.Kind == ActionReleaseHold
}
