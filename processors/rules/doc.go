// Package rules holds the domain rules of usagestream (docs/rules.md) as pure
// functions of state and input: no I/O, no clocks, no randomness, no globals
// but read-only tables. The streaming runtime and the offline validator run
// the same functions, so the same inputs in the same order give the same
// events and the same state bytes.
//
// # Three stages
//
// Stage 1 is keyed by service_point_id. ServicePoint.Apply takes one accepted
// billing row (producers/billing) and returns corrections (U4, U5),
// anomalies, account events and memberships: the status of the service
// point for each (customer, premise) that had an account there, sent only
// when it changed.
//
// The premise stage is keyed by premise_id. Site.Apply takes one membership
// and judges S1 across every service point and customer of the premise; it
// returns the CustomerInputs for stage 2: the membership when a part stage 2
// uses changed, and the premise's S1 reasons for each customer active there
// when they changed.
//
// Stage 2 is keyed by customer_id. Customer.Receive takes one CustomerInput
// and returns EligibilityChanged events, one per (customer, premise, program)
// whose reasons changed; the first evaluation of a subject emits all five
// programs, so that downstream knows where it starts.
//
// Chain runs the three in one process, for offline validation.
//
// # Decisions
//
// Where the upstream catalogue leaves room, this package decides as follows (docs/rules.md
// lists them under each rule; README.md, DECISIONS, says why at more length):
//
//   - S1 is a fact of the premise as a place: the premise stage judges it
//     over every service point there, whoever's account it is, and it
//     blocks each customer active at the premise.
//   - The subject is (customer, premise) (C1). INACTIVE and SUPERSEDED hold
//     for it only when the customer has no active account at the premise;
//     while one is active, the reasons of accounts that ended there do not
//     count. One fuel terminated ends dual fuel, not communications.
//   - A gap (U2) is identified by the start of the period after it and holds
//     while the newest date_to of the service point is at most its last
//     missing day + GapHorizonDays (its Until). Its effective date is its first missing day
//     when first reported, kept while a historical file fills it from the
//     left. An overlap (U3) holds likewise until its last shared day +
//     GapHorizonDays. A gap or overlap blocks a subject only when both sides
//     are its usage (any of its accounts at the service point): a vacancy
//     between two customers is reported as an anomaly and blocks neither.
//   - Periods are kept sorted and gaps and overlaps re-derived from the whole
//     timeline after every change (U8). U4 with the same value and charge is
//     a replay: no event. U5's correction carries the whole value of the
//     longer row. Negative usage without net metering is refused again here
//     (NEGATIVE_USAGE), as the reader does.
//   - Accounts are tenures: (account_id, active_date) pairs that were on file.
//     Their status is derived (deleted, terminated, superseded, active) and
//     account events are status changes. A strictly later active_date
//     supersedes (A2); the same day for another account is ACCOUNT_CONFLICT
//     (A1) and the row's account columns are ignored; an older one for
//     another account is late history (U8), recorded as superseded on arrival.
//   - A3: the first active_date seen is the original. A change is reported
//     once; a later date also supersedes (A2); an earlier one only flags; a row
//     with the original date clears it and merges the tenures back.
//   - A5: only the account on file is reactivated. A refused reactivation is
//     reported once and clears on a valid one or when another account is on
//     file. A new account after a termination is a move-in (A2), not refused.
//   - A8: a refused deletion rejects the whole row, usage included. A deleted
//     account stays as a tombstone so that stage 2 hears of it (INACTIVE,
//     rule A8); an account it had superseded is active again.
//   - A9: full rows apply account columns in period order, so late history
//     does not overwrite newer values; customer rows apply in file order.
//     Only the columns rules use are kept in state (no addresses).
//   - Event time of account changes: the row's period start; for a customer
//     row, the day after the newest usage, else its active_date.
//   - A7: the default allowlist is R1, R2, TOU1 (MED1 left off); an empty
//     rate_code is allowed; an empty allowlist allows every code.
//   - S1: a new active service point N with usage and fewer than
//     ReplacementHistoryMonths of chained usage, and an older one of the same
//     service type whose last date_to is not after N's first period start;
//     Until is when N reaches those months (whole calendar months of its
//     newest unbroken chain).
//   - S2 counts E and G only. BLOCKED_FOR_COMMUNICATIONS is one reason (rule
//     S2 on dual fuel, I5 on disaggregation) while communications is blocked.
//   - Reasons stage 2 derives keep the effective date and source they began
//     with while they hold (only Until may move), so that they do not churn.
//   - C2: PROPERTY_MANAGER is customer-level and dated from the activation of
//     the premise that tipped the count. C3: the premise's secondary_id is the
//     latest reported by an active account; a changed secondary_id alone
//     emits nothing.
//   - I5: IntervalHistoryMonths (13) of interval data on an active service
//     point, as the interval stage reports it (IntervalHistory).
//   - Sources: a stage 1 reason carries the row that opened it; a stage 2
//     reason the billing row behind the membership that began it; events the
//     input that caused them.
//
// # State
//
// ServicePoint, Site and Customer encode in a versioned binary form
// (MarshalBinary; the JSON of earlier versions still decodes); a
// decoded state is checked against its invariants (CheckInvariants) and
// refused if broken. Inputs for another key panic: that is a routing bug.
package rules
