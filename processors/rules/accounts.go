package rules

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// Tenure is one account's time at a service point: an (account_id,
// active_date) pair that was on file. A new active_date for the same account
// that supersedes it (A3 with A2) is a new tenure of the same account.
//
// Invariants (checked by CheckInvariants):
//   - ServicePoint.Tenures is sorted by (ActiveDate, Seq); Seq is unique.
//   - Tenures that are not Deleted have strictly increasing ActiveDate, so
//     "the account on file" is the last one not deleted, and each tenure is
//     superseded by the next one not deleted, if any (A1, A2).
//
// A tenure's status is derived, never stored: deleted, else terminated (an
// inactive_date), else superseded (a later tenure), else active. Account
// events are the differences between the statuses before and after a row.
type Tenure struct {
	Seq          int        `json:"seq"`
	AccountID    string     `json:"account_id"`
	CustomerID   string     `json:"customer_id"`
	PremiseID    string     `json:"premise_id"`
	SecondaryID  string     `json:"secondary_id,omitempty"`
	ActiveDate   dates.Date `json:"active_date"`
	InactiveDate dates.Date `json:"inactive_date,omitempty"` // 0: none (A4, A6)
	Deleted      bool       `json:"deleted,omitempty"`       // A8: a tombstone, kept so that stage 2 hears of it
	DeletedOn    dates.Date `json:"deleted_on,omitempty"`
	RateCode     string     `json:"rate_code,omitempty"`
	RateSince    dates.Date `json:"rate_since"`
	RateSource   Source     `json:"rate_source,omitzero"`
	// AsOf is the newest date_to of the full rows applied to this tenure. A
	// full row for an older period is history arriving late (U8): its usage
	// counts but its account columns do not overwrite newer ones (A9 applies
	// in period order; customer rows carry no period and apply in file order).
	AsOf      dates.Date `json:"as_of,omitempty"`
	Source    Source     `json:"source"`              // the row that created it
	EndSource Source     `json:"end_source,omitzero"` // the row that terminated or deleted it
}

type status uint8

const (
	stNone status = iota // not on file (before the row created it)
	stActive
	stSuperseded
	stTerminated
	stDeleted
)

// String is the status as the query API shows it.
func (s status) String() string {
	switch s {
	case stActive:
		return "active"
	case stSuperseded:
		return "superseded"
	case stTerminated:
		return "terminated"
	case stDeleted:
		return "deleted"
	}
	return "none"
}

// TenureStatus is the status of sp.Tenures[i], derived as Tenure says:
// "deleted", else "terminated", else "superseded", else "active".
func (sp *ServicePoint) TenureStatus(i int) string { return sp.status(i).String() }

type seqStatus struct {
	seq int
	st  status
}

func compareTenures(a, b Tenure) int {
	return cmp.Or(cmp.Compare(a.ActiveDate, b.ActiveDate), cmp.Compare(a.Seq, b.Seq))
}

// current is the index of the account on file: the last tenure not deleted,
// or -1.
func (sp *ServicePoint) current() int {
	for i := len(sp.Tenures) - 1; i >= 0; i-- {
		if !sp.Tenures[i].Deleted {
			return i
		}
	}
	return -1
}

// successor is the index of the tenure that supersedes tenure i, or -1.
func (sp *ServicePoint) successor(i int) int {
	for j := i + 1; j < len(sp.Tenures); j++ {
		if !sp.Tenures[j].Deleted {
			return j
		}
	}
	return -1
}

func (sp *ServicePoint) predecessor(i int) int {
	for j := i - 1; j >= 0; j-- {
		if !sp.Tenures[j].Deleted {
			return j
		}
	}
	return -1
}

func (sp *ServicePoint) status(i int) status {
	t := &sp.Tenures[i]
	switch {
	case t.Deleted:
		return stDeleted
	case t.InactiveDate != 0:
		return stTerminated
	case sp.successor(i) >= 0:
		return stSuperseded
	}
	return stActive
}

func (sp *ServicePoint) statuses() []seqStatus {
	out := make([]seqStatus, len(sp.Tenures))
	for i := range sp.Tenures {
		out[i] = seqStatus{sp.Tenures[i].Seq, sp.status(i)}
	}
	return out
}

// window is what tenure i sees of the timeline (A2): from its active_date to
// the day before its successor's.
func (sp *ServicePoint) window(i int) window {
	w := window{from: sp.Tenures[i].ActiveDate, to: openEnd}
	if s := sp.successor(i); s >= 0 && !sp.Tenures[i].Deleted {
		w.to = sp.Tenures[s].ActiveDate - 1
	}
	return w
}

// find is the index of the live tenure (account, active date), or -1.
func (sp *ServicePoint) find(acct string, ad dates.Date) int {
	for i := range sp.Tenures {
		if t := &sp.Tenures[i]; !t.Deleted && t.AccountID == acct && t.ActiveDate == ad {
			return i
		}
	}
	return -1
}

// tenureOf is the index of the latest live tenure of an account, or -1.
func (sp *ServicePoint) tenureOf(acct string) int {
	for i := len(sp.Tenures) - 1; i >= 0; i-- {
		if t := &sp.Tenures[i]; !t.Deleted && t.AccountID == acct {
			return i
		}
	}
	return -1
}

// applyAccount applies the account columns of a full or customer row (A1-A7,
// A9). Deletion rows go to deleteAccount instead.
func (sp *ServicePoint) applyAccount(row *records.BillingRow, src Source, ev dates.Date, out *Stage1Output) {
	acct, ad := row.AccountID, row.ActiveDate
	if sp.FirstActive == nil {
		sp.FirstActive = map[string]dates.Date{}
	}
	orig, known := sp.FirstActive[acct]
	if !known {
		sp.FirstActive[acct], orig = ad, ad
	}

	// A3: the active_date of an account never changes. The condition holds
	// until a row brings the original date back.
	restoring := false
	if ad != orig {
		sp.openActiveDateChange(row, orig, src, out)
	} else if k := sp.openIndex(AnomalyActiveDateChanged, acct); k >= 0 {
		restoring = true
		sp.closeActiveDateChange(k, row, src, out)
	}

	cur := sp.current()
	if cur < 0 {
		sp.addTenure(row, src) // A1
		return
	}
	c := &sp.Tenures[cur]
	historical := row.Layout == records.LayoutFull && row.DateTo < c.AsOf
	switch {
	case acct == c.AccountID && ad == c.ActiveDate:
		sp.updateTenure(cur, row, src, ev, true, out)

	case acct == c.AccountID && restoring:
		sp.restore(cur, orig)
		sp.updateTenure(sp.current(), row, src, ev, true, out)

	case acct == c.AccountID: // another active_date for the account on file (A3 reported above)
		switch {
		case historical:
			// Late history: its usage counts, its account columns do not.
		case c.InactiveDate != 0 && !row.InactiveDate.Valid:
			// A5: a terminated account comes back only with its own
			// active_date; anything else is refused, not a reactivation
			// (and not a move-in: the account is the same).
			sp.refuseReactivation(cur, row, src, ev, out)
		case c.InactiveDate != 0:
			// Sent again terminated, under another date: A3 says it all.
		case ad > c.ActiveDate:
			sp.addTenure(row, src) // A3 later: A2 applies, history before ad is hidden
		default:
			sp.updateTenure(cur, row, src, ev, true, out) // A3 earlier: flagged; the account keeps its date
		}

	default: // another account
		if j := sp.find(acct, ad); j >= 0 {
			sp.updateTenure(j, row, src, ev, false, out) // an older account's late rows (U8)
			return
		}
		if ad < c.ActiveDate {
			if j := sp.tenureOf(acct); j >= 0 {
				sp.updateTenure(j, row, src, ev, false, out) // an older account under another date (A3 reported)
				return
			}
		}
		if j := slices.IndexFunc(sp.Tenures, func(t Tenure) bool { return !t.Deleted && t.ActiveDate == ad }); j >= 0 {
			// A1: at most one account at a time; two accounts from the same
			// day cannot both hold, and neither is more recent (A2).
			a := sp.anomalyAbout(j, AnomalyAccountConflict, "A1", ad, src)
			a.Message = fmt.Sprintf("account %s (customer %s) is active from %s, the same day as account %s on file; the row's account columns are ignored",
				acct, row.CustomerID, ad, sp.Tenures[j].AccountID)
			out.Anomalies = append(out.Anomalies, a)
			return
		}
		// A2: a more recent active_date is a move-in that supersedes the
		// account on file; an older one is an account that was superseded
		// before its rows arrived (U8), superseded on arrival.
		sp.addTenure(row, src)
	}
}

// addTenure puts the row's account on file as a new tenure.
func (sp *ServicePoint) addTenure(row *records.BillingRow, src Source) {
	sp.NextSeq++
	t := Tenure{
		Seq: sp.NextSeq, AccountID: row.AccountID, CustomerID: row.CustomerID, PremiseID: row.PremiseID,
		SecondaryID: row.SecondaryID, ActiveDate: row.ActiveDate,
		RateCode: row.RateCode, RateSince: row.ActiveDate, RateSource: src, Source: src,
	}
	if row.InactiveDate.Valid {
		t.InactiveDate, t.EndSource = row.InactiveDate.Date, src
	}
	if row.Layout == records.LayoutFull {
		t.AsOf = row.DateTo
	}
	i, _ := slices.BinarySearchFunc(sp.Tenures, t, compareTenures)
	sp.Tenures = slices.Insert(sp.Tenures, i, t)
}

// updateTenure applies a row to the tenure it belongs to: attributes (A9),
// rate (A7), termination (A4) and, for the account on file, reactivation
// (A5). A full row older than the tenure's newest is late history: ignored here.
func (sp *ServicePoint) updateTenure(i int, row *records.BillingRow, src Source, ev dates.Date, isCurrent bool, out *Stage1Output) {
	t := &sp.Tenures[i]
	if row.Layout == records.LayoutFull {
		if row.DateTo < t.AsOf {
			return
		}
		t.AsOf = row.DateTo
	}
	t.CustomerID, t.PremiseID, t.SecondaryID = row.CustomerID, row.PremiseID, row.SecondaryID
	if row.RateCode != t.RateCode {
		out.AccountEvents = append(out.AccountEvents, sp.accountEvent(i, EventRateChanged, "A7", ev,
			fmt.Sprintf("rate %s -> %s", orNone(t.RateCode), orNone(row.RateCode)), src))
		t.RateCode, t.RateSince, t.RateSource = row.RateCode, ev, src
	}
	switch {
	case row.InactiveDate.Valid:
		if t.InactiveDate != row.InactiveDate.Date {
			t.InactiveDate, t.EndSource = row.InactiveDate.Date, src
		}
	case t.InactiveDate != 0 && isCurrent:
		// A5: empty inactive_date, same account_id and active_date. A6: a
		// lapse never sets inactive_date, so it never gets here.
		t.InactiveDate, t.EndSource = 0, Source{}
	}
}

// restore undoes an active-date change (A3) when a row brings the original
// date back: if the change had superseded the original tenure (A2), the two
// are one tenure again and the hidden history is visible again.
func (sp *ServicePoint) restore(cur int, orig dates.Date) {
	prev := sp.predecessor(cur)
	switch {
	case prev >= 0 && sp.Tenures[prev].AccountID == sp.Tenures[cur].AccountID && sp.Tenures[prev].ActiveDate == orig:
		sp.Tenures[cur].ActiveDate = orig
		sp.Tenures = slices.Delete(sp.Tenures, prev, prev+1)
	case prev < 0 || sp.Tenures[prev].ActiveDate < orig:
		sp.Tenures[cur].ActiveDate = orig
	default:
		return // another account lies between: the tenures stay as they are
	}
	slices.SortFunc(sp.Tenures, compareTenures)
}

func (sp *ServicePoint) openActiveDateChange(row *records.BillingRow, orig dates.Date, src Source, out *Stage1Output) {
	if k := sp.openIndex(AnomalyActiveDateChanged, row.AccountID); k >= 0 {
		sp.Open[k].To = row.ActiveDate // still changed; the first report stands
		return
	}
	o := OpenAnomaly{Code: AnomalyActiveDateChanged, AccountID: row.AccountID, From: orig, To: row.ActiveDate,
		EffectiveDate: row.ActiveDate, Source: src}
	sp.Open = append(sp.Open, o)
	sortOpen(sp.Open)
	a := sp.anomalyForRow(row, o.Code, "A3", o.EffectiveDate, src)
	a.Message = o.describe()
	out.Anomalies = append(out.Anomalies, a)
	e := sp.rowEvent(row, EventActiveDateChanged, "A3", row.ActiveDate, fmt.Sprintf("active_date %s -> %s", orig, row.ActiveDate), src)
	out.AccountEvents = append(out.AccountEvents, e)
}

func (sp *ServicePoint) closeActiveDateChange(k int, row *records.BillingRow, src Source, out *Stage1Output) {
	o := sp.Open[k]
	sp.Open = slices.Delete(sp.Open, k, k+1)
	a := sp.anomalyForRow(row, o.Code, "A3", o.EffectiveDate, src)
	a.Cleared = true
	a.Message = fmt.Sprintf("account %s active_date restored to %s", o.AccountID, o.From)
	out.Anomalies = append(out.Anomalies, a)
	out.AccountEvents = append(out.AccountEvents, sp.rowEvent(row, EventActiveDateChanged, "A3", o.From,
		fmt.Sprintf("active_date restored %s -> %s", o.To, o.From), src))
}

func (sp *ServicePoint) refuseReactivation(cur int, row *records.BillingRow, src Source, ev dates.Date, out *Stage1Output) {
	t := &sp.Tenures[cur]
	if sp.openIndex(AnomalyReactivationRefused, t.AccountID) >= 0 {
		return // the same attempt again: reported when it first came
	}
	o := OpenAnomaly{Code: AnomalyReactivationRefused, AccountID: t.AccountID, From: t.ActiveDate, To: row.ActiveDate,
		EffectiveDate: ev, Source: src}
	sp.Open = append(sp.Open, o)
	sortOpen(sp.Open)
	a := sp.anomalyAbout(cur, o.Code, "A5", ev, src)
	a.Message = fmt.Sprintf("account %s terminated on %s: a row with an empty inactive_date and active_date %s (the account's is %s) does not reactivate it",
		t.AccountID, t.InactiveDate, row.ActiveDate, t.ActiveDate)
	out.Anomalies = append(out.Anomalies, a)
	out.AccountEvents = append(out.AccountEvents, sp.accountEvent(cur, EventReactivationRefused, "A5", ev,
		fmt.Sprintf("active_date %s does not match %s", row.ActiveDate, t.ActiveDate), src))
}

// deleteAccount applies is_account_deletion (A8): only the account on file
// (the most recent) may be deleted. A refused row is rejected whole: its
// usage is not applied either. It reports whether the deletion was accepted.
func (sp *ServicePoint) deleteAccount(row *records.BillingRow, src Source, ev dates.Date, out *Stage1Output) bool {
	cur := sp.current()
	if cur >= 0 && sp.Tenures[cur].AccountID == row.AccountID {
		t := &sp.Tenures[cur]
		t.Deleted, t.DeletedOn, t.EndSource = true, ev, src
		if sp.tenureOf(row.AccountID) < 0 {
			delete(sp.FirstActive, row.AccountID)
		}
		return true
	}
	why := "the service point has no account on file"
	if cur >= 0 {
		c := &sp.Tenures[cur]
		why = fmt.Sprintf("account %s (active from %s) is the most recent account", c.AccountID, c.ActiveDate)
	}
	var a Anomaly
	var e AccountEvent
	if j := sp.tenureOf(row.AccountID); j >= 0 {
		a = sp.anomalyAbout(j, AnomalyDeletionRefused, "A8", ev, src)
		e = sp.accountEvent(j, EventDeletionRefused, "A8", ev, why, src)
	} else {
		a = sp.anomalyForRow(row, AnomalyDeletionRefused, "A8", ev, src)
		e = sp.rowEvent(row, EventDeletionRefused, "A8", ev, why, src)
	}
	a.Message = fmt.Sprintf("deletion of account %s refused: %s; the row is rejected", row.AccountID, why)
	out.Anomalies = append(out.Anomalies, a)
	out.AccountEvents = append(out.AccountEvents, e)
	return false
}

// statusEvents reports each tenure whose status the row changed.
func (sp *ServicePoint) statusEvents(before []seqStatus, ev dates.Date, src Source, out *Stage1Output) {
	live := 0
	for i := range sp.Tenures {
		if !sp.Tenures[i].Deleted {
			live++
		}
	}
	for i := range sp.Tenures {
		t := &sp.Tenures[i]
		b := stNone
		for _, s := range before {
			if s.seq == t.Seq {
				b = s.st
			}
		}
		a := sp.status(i)
		if a == b {
			continue
		}
		if b == stNone && a != stDeleted {
			rule := "A2"
			if live == 1 {
				rule = "A1"
			}
			out.AccountEvents = append(out.AccountEvents, sp.accountEvent(i, EventActivated, rule, t.ActiveDate, "", t.Source))
		}
		switch a {
		case stDeleted:
			out.AccountEvents = append(out.AccountEvents, sp.accountEvent(i, EventDeleted, "A8", t.DeletedOn, "the most recent account of the service point", src))
		case stTerminated:
			out.AccountEvents = append(out.AccountEvents, sp.accountEvent(i, EventTerminated, "A4", t.InactiveDate, "inactive_date "+t.InactiveDate.String(), src))
		case stSuperseded:
			s := &sp.Tenures[sp.successor(i)]
			detail := fmt.Sprintf("superseded by account %s (customer %s) active from %s", s.AccountID, s.CustomerID, s.ActiveDate)
			if b == stNone {
				detail += "; its rows arrived after that account's (U8)"
			}
			out.AccountEvents = append(out.AccountEvents, sp.accountEvent(i, EventSuperseded, "A2", s.ActiveDate, detail, src))
		case stActive:
			switch b {
			case stTerminated:
				out.AccountEvents = append(out.AccountEvents, sp.accountEvent(i, EventReactivated, "A5", ev, "same account_id and active_date, empty inactive_date", src))
			case stSuperseded:
				out.AccountEvents = append(out.AccountEvents, sp.accountEvent(i, EventReactivated, "A8", ev, "the account that superseded it was deleted", src))
			}
		}
	}
}

// settle clears account conditions that no longer hold: a refused
// reactivation once the account is active again or no longer on file, an
// active-date change once the account is deleted.
func (sp *ServicePoint) settle(src Source, out *Stage1Output) {
	cur := sp.current()
	for k := 0; k < len(sp.Open); k++ {
		o := sp.Open[k]
		var why string
		switch o.Code {
		case AnomalyReactivationRefused:
			switch {
			case cur < 0 || sp.Tenures[cur].AccountID != o.AccountID:
				why = "the account is no longer on file"
			case sp.Tenures[cur].InactiveDate == 0:
				why = "the account was reactivated"
			}
		case AnomalyActiveDateChanged:
			if _, known := sp.FirstActive[o.AccountID]; !known {
				why = "the account was deleted"
			}
		}
		if why == "" {
			continue
		}
		a := sp.anomaly(o.Code, o.Rule(), o.EffectiveDate, o.Until, src)
		a.AccountID = o.AccountID
		a.Cleared = true
		a.Message = fmt.Sprintf("%s cleared: %s", o.describe(), why)
		out.Anomalies = append(out.Anomalies, a)
		sp.Open = slices.Delete(sp.Open, k, k+1)
		k--
	}
}

func (sp *ServicePoint) accountEvent(i int, typ, rule string, date dates.Date, detail string, src Source) AccountEvent {
	t := &sp.Tenures[i]
	return AccountEvent{ServicePointID: sp.ID, AccountID: t.AccountID, CustomerID: t.CustomerID, PremiseID: t.PremiseID,
		SecondaryID: t.SecondaryID, Type: typ, Rule: rule, Date: date, Detail: detail, Source: src}
}

func (sp *ServicePoint) rowEvent(row *records.BillingRow, typ, rule string, date dates.Date, detail string, src Source) AccountEvent {
	return AccountEvent{ServicePointID: sp.ID, AccountID: row.AccountID, CustomerID: row.CustomerID, PremiseID: row.PremiseID,
		SecondaryID: row.SecondaryID, Type: typ, Rule: rule, Date: date, Detail: detail, Source: src}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
