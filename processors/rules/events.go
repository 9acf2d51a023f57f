package rules

import (
	"cmp"
	"slices"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// Source says where an input came from. The rules copy it onto every reason
// and event the input causes, so that a report can name the topic, partition
// and offset, and for file rows the file and line (docs/rules.md: every reason and event names its rule and input).
type Source struct {
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition,omitempty"`
	Offset    int64  `json:"offset,omitempty"`
	File      string `json:"file,omitempty"`
	Line      int64  `json:"line,omitempty"`
}

// Reason codes: why a subject is not eligible for a program.
const (
	ReasonInactive                 = "INACTIVE"                   // A4 (and A8 deletion)
	ReasonSuperseded               = "SUPERSEDED"                 // A2
	ReasonUsageGap                 = "USAGE_GAP"                  // U2
	ReasonUsageOverlap             = "USAGE_OVERLAP"              // U3
	ReasonActiveDateChanged        = "ACTIVE_DATE_CHANGED"        // A3
	ReasonRateNotAllowed           = "RATE_NOT_ALLOWED"           // A7
	ReasonServicePointChanged      = "SERVICE_POINT_CHANGED"      // S1
	ReasonPropertyManager          = "PROPERTY_MANAGER"           // C2
	ReasonNoDualFuel               = "NO_DUAL_FUEL"               // S2
	ReasonInsufficientHistory      = "INSUFFICIENT_HISTORY"       // I5
	ReasonBlockedForCommunications = "BLOCKED_FOR_COMMUNICATIONS" // S2, I5: communications is blocked
)

// Anomaly codes. Gap, overlap, active-date change and refused reactivation are
// conditions: reported when they appear and again (Cleared) when they end.
// Refused deletions, account conflicts and rejected usage are single rows
// refused: reported once per row, never cleared.
const (
	AnomalyUsageGap            = "USAGE_GAP"              // U2
	AnomalyUsageOverlap        = "USAGE_OVERLAP"          // U3, U6
	AnomalyActiveDateChanged   = "ACTIVE_DATE_CHANGED"    // A3
	AnomalyReactivationRefused = "REACTIVATION_REFUSED"   // A5
	AnomalyDeletionRefused     = "DELETION_REFUSED"       // A8
	AnomalyAccountConflict     = "ACCOUNT_CONFLICT"       // A1: a second account with the same active_date
	AnomalyNegativeUsage       = "NEGATIVE_USAGE"         // U9 without net metering
	AnomalyInvalidUsage        = "INVALID_USAGE"          // a usage row with duration < 1 (the reader never lets one through)
	AnomalyDuplicateRow        = "DUPLICATE_ROW"          // U10: the same period sent again with the same value and charge
	AnomalyImplausiblePeriod   = "IMPLAUSIBLE_PERIOD"     // U11: a period shorter or longer than the policy's bounds
	AnomalyUsageWithoutAccount = "USAGE_WITHOUT_ACCOUNT"  // U12: usage for a service point no customer row named
	AnomalyUsageAfterFinalBill = "USAGE_AFTER_FINAL_BILL" // A10: usage after the inactive_date of the account it falls to
	AnomalyServicePointMoved   = "SERVICE_POINT_MOVED"    // S3: a service point's row names another premise
	AnomalyFuelChanged         = "FUEL_CHANGED"           // S3: a service point's row names another service_type
	AnomalyTwoCustomersActive  = "TWO_CUSTOMERS_ACTIVE"   // C4: two customers active on different service points of one premise
)

// Account event types.
const (
	EventActivated           = "ACTIVATED"
	EventSuperseded          = "SUPERSEDED"
	EventTerminated          = "TERMINATED"
	EventReactivated         = "REACTIVATED"
	EventRateChanged         = "RATE_CHANGED"
	EventActiveDateChanged   = "ACTIVE_DATE_CHANGED"
	EventDeleted             = "DELETED"
	EventReactivationRefused = "REACTIVATION_REFUSED"
	EventDeletionRefused     = "DELETION_REFUSED"
)

// Correction kinds.
const (
	CorrectionExact       = "EXACT"       // U4
	CorrectionOverlapping = "OVERLAPPING" // U5
)

// Reason is one thing that blocks a program for a subject.
type Reason struct {
	Code           string     `json:"code"`
	Rule           string     `json:"rule"`                       // docs/rules.md id
	ServicePointID string     `json:"service_point_id,omitempty"` // "" for customer- or premise-level reasons
	EffectiveDate  dates.Date `json:"effective_date"`             // when it started holding (event time)
	// Until is 0 when open-ended. U2/U3: the last newest-date_to at which the
	// reason still holds (gap end + GapHorizonDays). S1: the date_to at which
	// the new service point reaches ReplacementHistoryMonths of chained usage.
	Until  dates.Date `json:"until,omitempty"`
	Source Source     `json:"source"` // the input that caused it
}

// sameReason compares what a reason says, not where it came from: a set of
// reasons "changes" only when one of these fields does (events only on change).
func sameReason(a, b Reason) bool {
	return a.Code == b.Code && a.Rule == b.Rule && a.ServicePointID == b.ServicePointID &&
		a.EffectiveDate == b.EffectiveDate && a.Until == b.Until
}

func compareReasons(a, b Reason) int {
	return cmp.Or(cmp.Compare(a.Code, b.Code), cmp.Compare(a.Rule, b.Rule),
		cmp.Compare(a.ServicePointID, b.ServicePointID),
		cmp.Compare(a.EffectiveDate, b.EffectiveDate), cmp.Compare(a.Until, b.Until))
}

// sortReasons orders reasons by code, rule, service point, dates: the one
// order every event uses.
func sortReasons(rs []Reason) { slices.SortFunc(rs, compareReasons) }

func sameReasons(a, b []Reason) bool { return slices.EqualFunc(a, b, sameReason) }

// Correction reports usage replaced by a later row (U4, U5).
type Correction struct {
	ServicePointID string            `json:"service_point_id"`
	Kind           string            `json:"kind"` // EXACT (U4) or OVERLAPPING (U5)
	Rule           string            `json:"rule"`
	DateTo         dates.Date        `json:"date_to"` // the period replaced
	Duration       int32             `json:"duration"`
	OldValue       float64           `json:"old_value"`
	NewValue       float64           `json:"new_value"` // U5: the whole value of the longer row
	OldCharge      records.NullFloat `json:"old_charge"`
	NewCharge      records.NullFloat `json:"new_charge"`
	NewDateTo      dates.Date        `json:"new_date_to"` // the period that replaces it (U4: the same)
	NewDuration    int32             `json:"new_duration"`
	Source         Source            `json:"source"`
}

// Anomaly reports a finding on a service point. Conditions are emitted when
// they appear and again with Cleared when they end; the account fields name
// the account on file (or the account concerned), so that the customer and
// its secondary id travel with it (C3).
type Anomaly struct {
	ServicePointID string     `json:"service_point_id"`
	Code           string     `json:"code"`
	Rule           string     `json:"rule"`
	Message        string     `json:"message"`
	EffectiveDate  dates.Date `json:"effective_date"`
	Until          dates.Date `json:"until,omitempty"`
	Cleared        bool       `json:"cleared,omitempty"`
	AccountID      string     `json:"account_id,omitempty"`
	CustomerID     string     `json:"customer_id,omitempty"`
	PremiseID      string     `json:"premise_id,omitempty"`
	SecondaryID    string     `json:"secondary_id,omitempty"`
	Source         Source     `json:"source"`
}

// AccountEvent reports what happened to an account at a service point.
type AccountEvent struct {
	ServicePointID string     `json:"service_point_id"`
	AccountID      string     `json:"account_id"`
	CustomerID     string     `json:"customer_id"`
	PremiseID      string     `json:"premise_id"`
	SecondaryID    string     `json:"secondary_id,omitempty"` // C3
	Type           string     `json:"type"`
	Rule           string     `json:"rule"`
	Date           dates.Date `json:"date"` // event time: the day it takes effect
	Detail         string     `json:"detail,omitempty"`
	Source         Source     `json:"source"`
}

// Membership is one service point's status for one customer at one premise:
// what stage 2 needs to know, sent from stage 1 whenever it changes. The
// customer's latest account at the service point decides it.
type Membership struct {
	CustomerID     string     `json:"customer_id"`
	PremiseID      string     `json:"premise_id"`
	SecondaryID    string     `json:"secondary_id,omitempty"`
	ServicePointID string     `json:"service_point_id"`
	ServiceType    string     `json:"service_type,omitempty"`
	AccountID      string     `json:"account_id,omitempty"`
	ActiveDate     dates.Date `json:"active_date"` // of the account that decides this membership
	// Since is when the subject's (C1) unbroken tenure on this service point
	// began: the active_date of the earliest of the customer's accounts at
	// the premise in the run that ends with the deciding one, no other
	// customer's account and no vacancy in between. A new account_id of the
	// same customer, or a later A3 date, is not a new subject, so the
	// derived reasons (S2, I5) date from here, not from ActiveDate. A
	// retraction (A9) carries none from stage 1; the customer stage keeps the
	// one of the membership it retracts. 0 (a membership of an older
	// version) reads as ActiveDate: see since.
	Since dates.Date `json:"since,omitempty"`
	// Active: this customer's account at this service point is active now
	// (not terminated, superseded or deleted).
	Active bool `json:"active"`
	// Deleted: the account was deleted (A8), or the customer/premise pair no
	// longer has an account here (A9: a later row changed the ids).
	Deleted bool `json:"deleted,omitempty"`
	// Reasons: the service point's own blocking reasons for this customer
	// (INACTIVE, SUPERSEDED, USAGE_GAP, USAGE_OVERLAP, ACTIVE_DATE_CHANGED,
	// RATE_NOT_ALLOWED), sorted.
	Reasons []Reason `json:"reasons,omitempty"`
	// Usage visible to this account: history before its active_date is hidden
	// (A2), and so is usage from the next account's active_date on.
	FirstPeriodStart dates.Date `json:"first_period_start,omitempty"`
	LastDateTo       dates.Date `json:"last_date_to,omitempty"`
	// ChainStart is where the newest unbroken chain of visible periods starts;
	// ChainedMonths is its length in whole calendar months (S1).
	ChainStart    dates.Date `json:"chain_start,omitempty"`
	ChainedMonths int        `json:"chained_months,omitempty"`
	Source        Source     `json:"source"`
}

// since is Since, or ActiveDate for a membership that carries none.
func (m *Membership) since() dates.Date {
	if m.Since != 0 {
		return m.Since
	}
	return m.ActiveDate
}

// EligibilityChanged reports the reasons that now hold for a (customer,
// premise, program); Eligible when there are none.
type EligibilityChanged struct {
	CustomerID  string   `json:"customer_id"`
	PremiseID   string   `json:"premise_id"`
	SecondaryID string   `json:"secondary_id,omitempty"` // C3
	Program     string   `json:"program"`
	Eligible    bool     `json:"eligible"`
	Reasons     []Reason `json:"reasons"`
	Source      Source   `json:"source"`
	// Before is the reasons the previous event of this (customer, premise,
	// program) reported, and First says there was none. They are not part
	// of the event: a stage compares them with what follows to coalesce the
	// events of one transaction (a flip the same transaction undoes is not
	// emitted).
	Before []Reason `json:"-"`
	First  bool     `json:"-"`
}

// Stage1Output is everything one billing row caused at its service point, each
// list in a deterministic order.
type Stage1Output struct {
	Corrections   []Correction   `json:"corrections,omitempty"`
	Anomalies     []Anomaly      `json:"anomalies,omitempty"`
	AccountEvents []AccountEvent `json:"account_events,omitempty"`
	Memberships   []Membership   `json:"memberships,omitempty"`
}
