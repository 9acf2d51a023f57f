package rules

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// ServicePoint is the stage 1 state of one service point (the key of stage 1):
// its usage timeline, the accounts that were on file, the conditions open
// on it, and what stage 2 was last told. The zero value is a service point
// never seen. Fields are exported so that the state serialises (state.go);
// only Apply changes them.
//
// Invariants (CheckInvariants checks them; UnmarshalBinary refuses state
// that breaks them):
//   - Periods sorted by (Start, DateTo), no two equal, Start <= DateTo.
//   - Tenures as documented on Tenure.
//   - FirstActive holds the first active_date seen for every live account (A3).
//   - Open sorted by (Code, AccountID, KeyStart, KeyEnd), no duplicates,
//     only condition codes (gap, overlap, active-date change, refused reactivation).
//   - Sent sorted by (CustomerID, PremiseID), no duplicates.
type ServicePoint struct {
	ID          string   `json:"id"`
	ServiceType string   `json:"service_type,omitempty"` // last full or customer row wins (A9)
	Periods     []Period `json:"periods,omitempty"`
	Tenures     []Tenure `json:"tenures,omitempty"`
	NextSeq     int      `json:"next_seq,omitempty"` // the last Tenure.Seq given
	// FirstActive is the active_date each account was first seen with: the
	// date A3 compares against. Deleting an account forgets it.
	FirstActive map[string]dates.Date `json:"first_active,omitempty"`
	Open        []OpenAnomaly         `json:"open,omitempty"`
	Sent        []SentMembership      `json:"sent,omitempty"`
	// Pending are operator clears (OV1) that found nothing open: each
	// waits for its condition to be opened by a row ingested before the
	// action was requested, which a replay may read after the action.
	Pending []PendingClear `json:"pending,omitempty"`

	// rowAtMs is when the row being applied was ingested (its record
	// timestamp, Unix ms; 0 unknown), for the duration of one ApplyRow.
	rowAtMs int64
}

// PendingClear is an operator clear (OV1) refused for want of an open
// condition, kept until a row ingested before it opens one.
type PendingClear struct {
	ActionID    string     `json:"action_id"`
	Ticket      string     `json:"ticket,omitempty"`
	Code        string     `json:"code"`
	AccountID   string     `json:"account_id,omitempty"`
	RequestedAt int64      `json:"requested_at"` // Unix ms
	Refused     dates.Date `json:"refused"`      // the refusal's effective date
	Source      Source     `json:"source"`       // the action's position
}

// OpenAnomaly is a condition reported and not yet cleared.
type OpenAnomaly struct {
	Code      string `json:"code"`
	AccountID string `json:"account_id,omitempty"` // A3, A5: the account concerned
	// KeyStart/KeyEnd identify a gap (KeyStart: the start of the period after
	// it) or an overlap (the overlapping period) across re-derivations.
	KeyStart dates.Date `json:"key_start,omitempty"`
	KeyEnd   dates.Date `json:"key_end,omitempty"`
	// From/To: gap: the missing days now; overlap: the shared days; A3: the
	// original and the changed active_date; A5: the account's active_date and
	// the one the refused row carried.
	From          dates.Date `json:"from,omitempty"`
	To            dates.Date `json:"to,omitempty"`
	EffectiveDate dates.Date `json:"effective_date"` // when first reported; kept while it holds
	Until         dates.Date `json:"until,omitempty"`
	Source        Source     `json:"source"` // the input that opened it
}

// SentMembership remembers the last membership sent to stage 2 for a
// (customer, premise), by a hash of its content without sources: a new
// membership is sent only when the hash differs.
type SentMembership struct {
	CustomerID string `json:"customer_id"`
	PremiseID  string `json:"premise_id"`
	Hash       uint64 `json:"hash"`
}

func compareOpen(a, b OpenAnomaly) int {
	return cmp.Or(cmp.Compare(a.Code, b.Code), cmp.Compare(a.AccountID, b.AccountID),
		cmp.Compare(a.KeyStart, b.KeyStart), cmp.Compare(a.KeyEnd, b.KeyEnd))
}

func sortOpen(os []OpenAnomaly) { slices.SortFunc(os, compareOpen) }

func (sp *ServicePoint) openIndex(code, acct string) int {
	for k := range sp.Open {
		if sp.Open[k].Code == code && sp.Open[k].AccountID == acct {
			return k
		}
	}
	return -1
}

// Rule is the rules.md id of the condition (U2, U3, A3, A5), or "" for a
// code that is no condition. Open anomalies keep the code only: this is the
// one place that maps it, for the rules and for readers of their state (the
// query API).
func (o *OpenAnomaly) Rule() string {
	switch o.Code {
	case AnomalyUsageGap:
		return "U2"
	case AnomalyUsageOverlap:
		return "U3"
	case AnomalyActiveDateChanged:
		return "A3"
	case AnomalyReactivationRefused:
		return "A5"
	}
	return ""
}

// reasonCode is the eligibility reason a condition gives its customer.
func (o *OpenAnomaly) reasonCode() string {
	switch o.Code {
	case AnomalyUsageGap:
		return ReasonUsageGap
	case AnomalyUsageOverlap:
		return ReasonUsageOverlap
	case AnomalyActiveDateChanged:
		return ReasonActiveDateChanged
	}
	return ""
}

func (o *OpenAnomaly) describe() string {
	switch o.Code {
	case AnomalyUsageGap:
		return fmt.Sprintf("usage gap of %d days: no period covers %s-%s; the period starting %s follows it (U2)",
			int(o.To-o.From+1), o.From, o.To, o.KeyStart)
	case AnomalyUsageOverlap:
		return fmt.Sprintf("the period %s-%s shares %d days (%s-%s) with other periods on record and is no correction (U3, U6)",
			o.KeyStart, o.KeyEnd, int(o.To-o.From+1), o.From, o.To)
	case AnomalyActiveDateChanged:
		return fmt.Sprintf("account %s active_date changed from %s to %s (A3)", o.AccountID, o.From, o.To)
	case AnomalyReactivationRefused:
		return fmt.Sprintf("account %s reactivation refused: active_date %s does not match %s (A5)", o.AccountID, o.To, o.From)
	}
	return o.Code
}

// Apply runs stage 1 for one accepted billing row of this service point.
//
// Preconditions: row comes from producers/billing (its invariants hold) and
// belongs to this service point: a row for another one is a routing bug and
// panics. Apply is deterministic: the same state and row give the same
// output and the same state.
func (sp *ServicePoint) Apply(p Policy, row *records.BillingRow, src Source) Stage1Output {
	return sp.ApplyRow(p, row, src, time.Time{})
}

// ApplyRow is Apply for a row ingested at ingested (its record timestamp):
// an operator clear that found nothing open and was requested after that
// applies to the condition the row opens (OV1). Apply knows no ingestion
// time, and so never applies a pending clear.
func (sp *ServicePoint) ApplyRow(p Policy, row *records.BillingRow, src Source, ingested time.Time) Stage1Output {
	var out Stage1Output
	if !ingested.IsZero() {
		sp.rowAtMs = ingested.UnixMilli()
		defer func() { sp.rowAtMs = 0 }()
	}
	sp.apply(p, row, src, &out)
	return out
}

// apply is Apply appending to out, whose slices the caller may reuse from
// row to row (Chain.ApplyRow does): a new output per row was a tenth of the
// bytes a large validation allocated.
func (sp *ServicePoint) apply(p Policy, row *records.BillingRow, src Source, out *Stage1Output) {
	switch {
	case sp.ID == "":
		sp.ID = row.ServicePointID
	case row.ServicePointID != sp.ID:
		panic(fmt.Sprintf("rules: row for service point %q applied to %q: the runtime must key rows by service_point_id", row.ServicePointID, sp.ID))
	}
	hasAccount := row.Layout != records.LayoutUsage
	hasUsage := row.Layout != records.LayoutCustomer
	if hasUsage && row.Duration < 1 {
		a := sp.anomaly(AnomalyInvalidUsage, "DC-2.4", row.DateTo, 0, src)
		a.Message = fmt.Sprintf("duration %d is not positive; the row is ignored", row.Duration)
		out.Anomalies = append(out.Anomalies, a)
		return
	}
	if hasUsage && row.UsageValue < 0 && !p.NetMetering {
		a := sp.anomaly(AnomalyNegativeUsage, "U9", row.PeriodStart(), 0, src)
		a.Message = fmt.Sprintf("usage_value %v is negative and net metering is off; the row is ignored", row.UsageValue)
		out.Anomalies = append(out.Anomalies, a)
		return
	}

	ev := sp.eventDate(row)
	before := sp.statuses()
	if hasAccount {
		sp.checkMove(row, src, out)
		if row.IsAccountDeletion {
			if !sp.deleteAccount(row, src, ev, out) {
				return
			}
		} else {
			sp.applyAccount(row, src, ev, out)
		}
		if row.ServiceType != "" {
			sp.ServiceType = row.ServiceType
		}
	}
	if hasUsage {
		sp.checkUsage(p, row, src, out)
		before := sp.deriveFindings(p)
		if sp.applyUsage(row, src, out) {
			sp.reconcileTimeline(p, before, src, out)
		}
		sp.checkAfterFinalBill(row, src, out)
	}
	sp.statusEvents(before, ev, src, out)
	sp.settle(src, out)
	sp.applyPending(src, out)
	sp.updateMemberships(p, ev, src, out)
}

// checkMove reports a row that puts the service point at another premise
// than the account on file, or gives it another service_type (S3): a
// service point id never moves nor changes fuel. Reported once per change:
// the row's columns then are the service point's (A9).
func (sp *ServicePoint) checkMove(row *records.BillingRow, src Source, out *Stage1Output) {
	if c := sp.current(); c >= 0 && row.PremiseID != sp.Tenures[c].PremiseID {
		a := sp.anomalyForRow(row, AnomalyServicePointMoved, "S3", sp.eventDate(row), src)
		a.Message = fmt.Sprintf("service point %s is at premise %s on file (account %s); this row puts it at premise %s (S3)",
			sp.ID, sp.Tenures[c].PremiseID, sp.Tenures[c].AccountID, row.PremiseID)
		out.Anomalies = append(out.Anomalies, a)
	}
	if sp.ServiceType != "" && row.ServiceType != "" && row.ServiceType != sp.ServiceType {
		a := sp.anomalyForRow(row, AnomalyFuelChanged, "S3", sp.eventDate(row), src)
		a.Message = fmt.Sprintf("service point %s has service_type %s on file; this row says %s (S3)", sp.ID, sp.ServiceType, row.ServiceType)
		out.Anomalies = append(out.Anomalies, a)
	}
}

// checkUsage reports, before a usage row is applied, a period of
// implausible length (U11: kept on the timeline, left out of the history
// validate counts) and the first usage of a service point that no customer
// row named (U12: the customer file comes first, docs/data-contract.md §2.5).
func (sp *ServicePoint) checkUsage(p Policy, row *records.BillingRow, src Source, out *Stage1Output) {
	if !p.PlausiblePeriod(int(row.Duration)) {
		a := sp.anomaly(AnomalyImplausiblePeriod, "U11", row.PeriodStart(), 0, src)
		a.Message = fmt.Sprintf("the period %s-%s is %d days long, outside %d..%d days (policy min_period_days, max_period_days); it is kept, but counts for no history (U11)",
			row.PeriodStart(), row.DateTo, row.Duration, p.MinPeriodDays, p.MaxPeriodDays)
		out.Anomalies = append(out.Anomalies, a)
	}
	if row.Layout == records.LayoutUsage && len(sp.Tenures) == 0 && len(sp.Periods) == 0 {
		a := sp.anomaly(AnomalyUsageWithoutAccount, "U12", row.PeriodStart(), 0, src)
		a.Message = fmt.Sprintf("usage for service point %s, which no customer row names; its usage counts for nobody until one does (U12)", sp.ID)
		out.Anomalies = append(out.Anomalies, a)
	}
}

// checkAfterFinalBill reports usage whose period starts after the
// inactive_date of the account it falls to (A10): the final bill was
// billed, yet usage goes on at the service point.
func (sp *ServicePoint) checkAfterFinalBill(row *records.BillingRow, src Source, out *Stage1Output) {
	start := row.PeriodStart()
	for i := range sp.Tenures {
		t := &sp.Tenures[i]
		if t.Deleted || t.InactiveDate == 0 || start <= t.InactiveDate {
			continue
		}
		if w := sp.window(i); start < w.from || start > w.to {
			continue
		}
		a := sp.anomalyAbout(i, AnomalyUsageAfterFinalBill, "A10", start, src)
		a.Message = fmt.Sprintf("usage %s-%s after the final bill of account %s (inactive_date %s) and before any other account (A10)",
			start, row.DateTo, t.AccountID, t.InactiveDate)
		out.Anomalies = append(out.Anomalies, a)
		return
	}
}

// eventDate is when a row's account changes take effect (event time): the
// start of its period; a customer row has none, so the day after the newest
// usage on record, or its active_date before any usage.
func (sp *ServicePoint) eventDate(row *records.BillingRow) dates.Date {
	if row.Layout != records.LayoutCustomer {
		return row.PeriodStart()
	}
	if n := sp.newestDateTo(); n != 0 {
		return n + 1
	}
	return row.ActiveDate
}

// anomaly builds an anomaly stamped with the account on file (C3).
func (sp *ServicePoint) anomaly(code, rule string, eff, until dates.Date, src Source) Anomaly {
	a := Anomaly{ServicePointID: sp.ID, Code: code, Rule: rule, EffectiveDate: eff, Until: until, Source: src}
	if c := sp.current(); c >= 0 {
		sp.stamp(&a, c)
	}
	return a
}

// anomalyAbout builds an anomaly about tenure i's account.
func (sp *ServicePoint) anomalyAbout(i int, code, rule string, eff dates.Date, src Source) Anomaly {
	a := Anomaly{ServicePointID: sp.ID, Code: code, Rule: rule, EffectiveDate: eff, Source: src}
	sp.stamp(&a, i)
	return a
}

func (sp *ServicePoint) anomalyForRow(row *records.BillingRow, code, rule string, eff dates.Date, src Source) Anomaly {
	return Anomaly{ServicePointID: sp.ID, Code: code, Rule: rule, EffectiveDate: eff, Source: src,
		AccountID: row.AccountID, CustomerID: row.CustomerID, PremiseID: row.PremiseID, SecondaryID: row.SecondaryID}
}

func (sp *ServicePoint) stamp(a *Anomaly, i int) {
	t := &sp.Tenures[i]
	a.AccountID, a.CustomerID, a.PremiseID, a.SecondaryID = t.AccountID, t.CustomerID, t.PremiseID, t.SecondaryID
}

// updateMemberships recomputes the membership of every (customer, premise)
// with an account here and sends those that changed. A pair that no longer
// has an account here (a later row changed its ids, A9) is sent once more as
// deleted, so that stage 2 does not keep a stale active service point.
func (sp *ServicePoint) updateMemberships(p Policy, ev dates.Date, src Source, out *Stage1Output) {
	// The tenure that decides a pair: its latest live one, else its latest deleted one.
	type pick struct {
		c, p string
		i    int
	}
	var pickBuf [4]pick // on the stack: most service points have one or two pairs
	picks := pickBuf[:0]
	for i := range sp.Tenures {
		t := &sp.Tenures[i]
		k := slices.IndexFunc(picks, func(x pick) bool { return x.c == t.CustomerID && x.p == t.PremiseID })
		switch {
		case k < 0:
			picks = append(picks, pick{t.CustomerID, t.PremiseID, i})
		case !t.Deleted || sp.Tenures[picks[k].i].Deleted:
			picks[k].i = i
		}
	}
	slices.SortFunc(picks, func(a, b pick) int { return cmp.Or(cmp.Compare(a.c, b.c), cmp.Compare(a.p, b.p)) })

	var nextBuf [4]SentMembership
	next := nextBuf[:0]
	for _, pk := range picks {
		m := sp.membership(p, pk.i, src)
		h := m.hash()
		next = append(next, SentMembership{pk.c, pk.p, h})
		k := slices.IndexFunc(sp.Sent, func(s SentMembership) bool { return s.CustomerID == pk.c && s.PremiseID == pk.p })
		if k >= 0 && sp.Sent[k].Hash == h {
			continue
		}
		out.Memberships = append(out.Memberships, m)
	}
	for _, s := range sp.Sent {
		if slices.ContainsFunc(next, func(n SentMembership) bool { return n.CustomerID == s.CustomerID && n.PremiseID == s.PremiseID }) {
			continue
		}
		out.Memberships = append(out.Memberships, Membership{
			CustomerID: s.CustomerID, PremiseID: s.PremiseID, ServicePointID: sp.ID, ServiceType: sp.ServiceType,
			Deleted: true,
			Reasons: []Reason{{Code: ReasonInactive, Rule: "A9", ServicePointID: sp.ID, EffectiveDate: ev, Source: src}},
			Source:  src,
		})
	}
	switch {
	case len(next) == 0:
		sp.Sent = nil // as a decoded state has it
	case len(next) == len(sp.Sent):
		copy(sp.Sent, next) // the state owns its slice: no new one per row
	default:
		sp.Sent = slices.Clone(next)
	}
}

// membership is tenure i's customer's status at this service point.
func (sp *ServicePoint) membership(p Policy, i int, src Source) Membership {
	t := &sp.Tenures[i]
	m := Membership{
		CustomerID: t.CustomerID, PremiseID: t.PremiseID, SecondaryID: t.SecondaryID,
		ServicePointID: sp.ID, ServiceType: sp.ServiceType, AccountID: t.AccountID, ActiveDate: t.ActiveDate,
		Source: src,
	}
	if !t.Deleted {
		m.Since = sp.subjectSince(i)
	}
	st := sp.status(i)
	reason := func(code, rule string, eff, until dates.Date, from Source) {
		m.Reasons = append(m.Reasons, Reason{Code: code, Rule: rule, ServicePointID: sp.ID, EffectiveDate: eff, Until: until, Source: from})
	}
	switch st {
	case stDeleted:
		m.Deleted = true
		reason(ReasonInactive, "A8", t.DeletedOn, 0, t.EndSource)
		return m
	case stActive:
		m.Active = true
	case stTerminated:
		reason(ReasonInactive, "A4", t.InactiveDate, 0, t.EndSource)
	case stSuperseded:
		s := &sp.Tenures[sp.successor(i)]
		reason(ReasonSuperseded, "A2", s.ActiveDate, 0, s.Source)
	}
	w := sp.window(i)
	v := sp.view(w)
	m.FirstPeriodStart, m.LastDateTo, m.ChainStart, m.ChainedMonths = v.first, v.last, v.chainStart, v.chainedMonths
	if !p.RateAllowed(t.RateCode) {
		reason(ReasonRateNotAllowed, "A7", t.RateSince, 0, t.RateSource)
	}
	// Gaps and overlaps are judged for the subject (C1): the windows of
	// every live account of this customer at this premise, so that a new
	// account_id (or a later A3 date) does not hide a break in its history.
	var subjBuf [4]window
	subj := subjBuf[:0]
	for j := range sp.Tenures {
		if u := &sp.Tenures[j]; !u.Deleted && u.CustomerID == t.CustomerID && u.PremiseID == t.PremiseID {
			subj = append(subj, sp.window(j))
		}
	}
	inSubject := func(d dates.Date) bool {
		return slices.ContainsFunc(subj, func(sw window) bool { return d >= sw.from && d <= sw.to })
	}
	touchesSubject := func(from, to dates.Date) bool {
		return slices.ContainsFunc(subj, func(sw window) bool { return from <= sw.to && to >= sw.from })
	}
	for k := range sp.Open {
		o := &sp.Open[k]
		switch o.Code {
		case AnomalyActiveDateChanged:
			if o.AccountID != t.AccountID {
				continue
			}
		case AnomalyUsageGap:
			// Both sides of the gap must be the subject's usage: a gap
			// between two customers (a vacancy) blocks neither.
			if !inSubject(o.From-1) || !inSubject(o.KeyStart) {
				continue
			}
		case AnomalyUsageOverlap:
			if !touchesSubject(o.From, o.To) {
				continue
			}
		default:
			continue
		}
		reason(o.reasonCode(), o.Rule(), o.EffectiveDate, o.Until, o.Source)
	}
	sortReasons(m.Reasons)
	return m
}

// subjectSince is when the unbroken tenure of live tenure i's subject
// (customer, premise) on this service point began (Membership.Since): walking
// back over the live tenures before it while they are the same subject's and
// each ran on until the next began (not terminated before it).
func (sp *ServicePoint) subjectSince(i int) dates.Date {
	t := &sp.Tenures[i]
	since := t.ActiveDate
	for j := sp.predecessor(i); j >= 0; j = sp.predecessor(j) {
		u := &sp.Tenures[j]
		if u.CustomerID != t.CustomerID || u.PremiseID != t.PremiseID || (u.InactiveDate != 0 && u.InactiveDate+1 < since) {
			break
		}
		since = u.ActiveDate
	}
	return since
}

// hash is xxhash64 over everything a membership says, sources left out.
// Stage 1 keeps it per pair sent (SentMembership.Hash) to tell a changed
// membership from the same one again. States written before this hash
// replaced FNV-1a hold FNV values: their first row after the upgrade sends
// each pair's membership once more, which the premise stage absorbs (no
// stage 2 input when nothing it uses changed).
func (m *Membership) hash() uint64 {
	var buf [256]byte // on the stack: most memberships take less
	b := hashStr(buf[:0], m.CustomerID)
	b = hashStr(b, m.PremiseID)
	b = hashStr(b, m.SecondaryID)
	b = hashStr(b, m.ServicePointID)
	b = hashStr(b, m.ServiceType)
	b = hashStr(b, m.AccountID)
	b = hashNum(b, int64(m.ActiveDate))
	if m.Since != 0 && m.Since != m.ActiveDate {
		b = hashNum(b, int64(m.Since))
	}
	b = hashFlag(b, m.Active)
	b = hashFlag(b, m.Deleted)
	b = hashNum(b, int64(m.FirstPeriodStart))
	b = hashNum(b, int64(m.LastDateTo))
	b = hashNum(b, int64(m.ChainStart))
	b = hashNum(b, int64(m.ChainedMonths))
	for i := range m.Reasons {
		b = hashReason(b, &m.Reasons[i])
	}
	return xxhash.Sum64(b)
}

// The fields a hash covers are laid out in a buffer for one xxhash64
// call: a byte-wise FNV-1a over the same fields was 8% of validate's CPU.

func hashStr(b []byte, s string) []byte {
	b = hashNum(b, int64(len(s))) // length first: no two field lists hash the same bytes
	return append(b, s...)
}

func hashNum(b []byte, x int64) []byte { return binary.LittleEndian.AppendUint64(b, uint64(x)) }

func hashFlag(b []byte, f bool) []byte {
	if f {
		return append(b, 1)
	}
	return append(b, 0)
}

// hashReason lays out what a reason says, its source left out.
func hashReason(b []byte, r *Reason) []byte {
	b = hashStr(b, r.Code)
	b = hashStr(b, r.Rule)
	b = hashStr(b, r.ServicePointID)
	b = hashNum(b, int64(r.EffectiveDate))
	return hashNum(b, int64(r.Until))
}
