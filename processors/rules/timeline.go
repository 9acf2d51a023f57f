package rules

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// Period is one billing period on a service point's timeline: Start through
// DateTo, both inclusive (docs/rules.md: start = date_to - duration + 1).
//
// Periods are kept in ServicePoint.Periods sorted by (Start, DateTo), with no
// two sharing both: a second row for the same days is an exact overwrite
// (U4), never a second period. Overlapping periods (U3) stay, flagged by the
// anomaly derived from them.
type Period struct {
	Start     dates.Date `json:"start"`
	DateTo    dates.Date `json:"date_to"`
	Value     float64    `json:"value"`
	Charge    float64    `json:"charge,omitempty"`
	HasCharge bool       `json:"has_charge,omitempty"` // usage_charge is optional (U9)
}

// Duration is the period's length in days.
func (p Period) Duration() int32 { return int32(p.DateTo - p.Start + 1) }

func (p Period) charge() records.NullFloat {
	return records.NullFloat{Value: p.Charge, Valid: p.HasCharge}
}

func comparePeriods(a, b Period) int {
	return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.DateTo, b.DateTo))
}

// openEnd is the end of a window that has none.
const openEnd = dates.Date(math.MaxInt32)

// newestDateTo is the latest date_to on record, 0 with no usage. Periods are
// sorted by start, so the latest end is not necessarily the last period's.
func (sp *ServicePoint) newestDateTo() dates.Date {
	var n dates.Date
	for i := range sp.Periods {
		n = max(n, sp.Periods[i].DateTo)
	}
	return n
}

// applyUsage puts a usage row on the timeline: an exact overwrite (U4), an
// overlapping overwrite (U5), or a new period where it lands in start order
// (U1, U8); overlaps and gaps are derived afterwards from the whole timeline.
// It reports whether the timeline changed.
func (sp *ServicePoint) applyUsage(row *records.BillingRow, src Source, out *Stage1Output) bool {
	np := Period{Start: row.PeriodStart(), DateTo: row.DateTo, Value: row.UsageValue}
	if row.UsageCharge.Valid {
		np.Charge, np.HasCharge = row.UsageCharge.Value, true
	}
	i, found := slices.BinarySearchFunc(sp.Periods, np, comparePeriods)

	// U4: same date_to and duration (hence the same start). The same value
	// and charge again is a replay: nothing changes on the timeline, but a
	// duplicate row is a data-quality finding of its own (U10).
	if found {
		old := sp.Periods[i]
		if old.Value == np.Value && old.HasCharge == np.HasCharge && old.Charge == np.Charge {
			a := sp.anomaly(AnomalyDuplicateRow, "U10", old.Start, 0, src)
			a.Message = fmt.Sprintf("the period %s-%s was sent again with the same %s; nothing changes (U10)",
				old.Start, old.DateTo, valueCharge(old.Value, old.charge()))
			out.Anomalies = append(out.Anomalies, a)
			return false
		}
		sp.Periods[i] = np
		out.Corrections = append(out.Corrections, Correction{
			ServicePointID: sp.ID, Kind: CorrectionExact, Rule: "U4",
			DateTo: old.DateTo, Duration: old.Duration(),
			OldValue: old.Value, NewValue: np.Value, OldCharge: old.charge(), NewCharge: np.charge(),
			NewDateTo: np.DateTo, NewDuration: np.Duration(), Source: src,
		})
		return true
	}

	// U5: newer than every period, longer, and starting where a period
	// starts: it replaces that period and every later one (all lie inside it,
	// since it ends after all of them).
	if len(sp.Periods) > 0 && np.DateTo > sp.newestDateTo() {
		j, aligned := slices.BinarySearchFunc(sp.Periods, np.Start, func(p Period, s dates.Date) int { return cmp.Compare(p.Start, s) })
		if aligned && np.Duration() > sp.Periods[j].Duration() {
			for _, old := range sp.Periods[j:] {
				out.Corrections = append(out.Corrections, Correction{
					ServicePointID: sp.ID, Kind: CorrectionOverlapping, Rule: "U5",
					DateTo: old.DateTo, Duration: old.Duration(),
					OldValue: old.Value, NewValue: np.Value, OldCharge: old.charge(), NewCharge: np.charge(),
					NewDateTo: np.DateTo, NewDuration: np.Duration(), Source: src,
				})
			}
			sp.Periods = append(sp.Periods[:j], np)
			return true
		}
	}

	// U1/U8: insert in order; U2/U3/U6 are judged by deriveFindings.
	sp.Periods = slices.Insert(sp.Periods, i, np)
	return true
}

// finding is a gap or an overlap derived from the sorted timeline.
type finding struct {
	code string
	// key identifies it across re-derivations. Gap: the start of the period
	// after it (so a gap filled from its old end keeps its identity while it
	// shrinks, as a historical file arriving oldest-first does). Overlap: the
	// overlapping period.
	keyStart, keyEnd dates.Date
	from, to         dates.Date // the missing days (gap) or the shared days (overlap)
	until            dates.Date // holds while the newest date_to is <= until
	aged             bool       // past its horizon: no longer reported
}

// deriveFindings walks the sorted timeline once: a period starting after the
// day after the latest end so far follows a gap (U2); one starting on or
// before it overlaps (U3; U4 and U5 never leave overlaps behind, so any
// overlap here is U6), and overlaps then name their culprits (overlaps).
// Gaps and overlaps age out once the newest date_to (event time) is more
// than GapHorizonDays after their last day (U2).
func (sp *ServicePoint) deriveFindings(p Policy) []finding {
	if len(sp.Periods) < 2 {
		return nil
	}
	newest := sp.newestDateTo()
	var fs []finding
	overlapping := false
	maxEnd := sp.Periods[0].DateTo
	for _, pe := range sp.Periods[1:] {
		switch {
		case pe.Start > maxEnd+1:
			// The horizon counts from the gap's last missing day (U2).
			until := (pe.Start - 1).AddDays(p.GapHorizonDays)
			fs = append(fs, finding{code: AnomalyUsageGap, keyStart: pe.Start,
				from: maxEnd + 1, to: pe.Start - 1, until: until, aged: newest > until})
		case pe.Start <= maxEnd:
			overlapping = true
		}
		maxEnd = max(maxEnd, pe.DateTo)
	}
	if overlapping {
		fs = append(fs, sp.overlaps(p, newest)...)
		slices.SortStableFunc(fs, func(a, b finding) int { return cmp.Compare(a.keyStart, b.keyStart) })
	}
	return fs
}

// overlaps names the periods to blame for the overlaps of the timeline, one
// finding each (U6: one bad row is one overlap, naming that row). It takes
// out, one at a time, the period that overlaps the most others still in;
// among equals the one least chained to its neighbours (a good period
// starts the day after one ends and ends the day before the next starts),
// then the later one; until none overlap. A 400-day row over three monthly
// periods is one overlap, that row's, not three naming the months.
func (sp *ServicePoint) overlaps(p Policy, newest dates.Date) []finding {
	ps := sp.Periods
	out := make([]bool, len(ps))
	deg := make([]int, len(ps))
	var fs []finding
	for {
		clear(deg)
		for i := range ps {
			if out[i] {
				continue
			}
			// Sorted by start: no period after the first one starting past
			// i's end overlaps i.
			for j := i + 1; j < len(ps) && ps[j].Start <= ps[i].DateTo; j++ {
				if !out[j] {
					deg[i]++
					deg[j]++
				}
			}
		}
		best := -1
		for i := range ps {
			if out[i] || deg[i] == 0 {
				continue
			}
			if best < 0 || deg[i] > deg[best] || (deg[i] == deg[best] && sp.links(i) <= sp.links(best)) {
				best = i
			}
		}
		if best < 0 {
			return fs
		}
		out[best] = true
		c := ps[best]
		from, to := c.DateTo, c.Start
		for j, o := range ps {
			if j != best && o.Start <= c.DateTo && o.DateTo >= c.Start {
				from, to = min(from, max(c.Start, o.Start)), max(to, min(c.DateTo, o.DateTo))
			}
		}
		until := to.AddDays(p.GapHorizonDays) // from the last shared day, as a gap
		fs = append(fs, finding{code: AnomalyUsageOverlap, keyStart: c.Start, keyEnd: c.DateTo,
			from: from, to: to, until: until, aged: newest > until})
	}
}

// links counts the neighbours period i chains to (U1): one ending the day
// before it starts, one starting the day after it ends.
func (sp *ServicePoint) links(i int) int {
	n := 0
	c := sp.Periods[i]
	if slices.ContainsFunc(sp.Periods, func(o Period) bool { return o.DateTo+1 == c.Start }) {
		n++
	}
	if slices.ContainsFunc(sp.Periods, func(o Period) bool { return o.Start == c.DateTo+1 }) {
		n++
	}
	return n
}

// reconcileTimeline re-derives gaps and overlaps and compares them with the
// open ones: new findings open (anomaly emitted), vanished or aged ones clear
// (anomaly emitted with Cleared), the rest stay as they were: their effective
// date and source keep saying when and by what they first appeared.
//
// before is what deriveFindings gave before the row: a finding past its
// horizon that was not there before is new, found already aged (a
// historical file after years of incrementals). It is reported all the same
// (U2: every gap is named) and cleared at once, since it blocks nothing.
func (sp *ServicePoint) reconcileTimeline(p Policy, before []finding, src Source, out *Stage1Output) {
	fs := sp.deriveFindings(p)
	live := fs[:0:0]
	for _, f := range fs {
		if !f.aged {
			live = append(live, f)
		}
	}
	kept := sp.Open[:0:0]
	var closed []OpenAnomaly
	for _, o := range sp.Open {
		if o.Code != AnomalyUsageGap && o.Code != AnomalyUsageOverlap {
			kept = append(kept, o)
			continue
		}
		i := slices.IndexFunc(live, func(f finding) bool { return f.code == o.Code && f.keyStart == o.KeyStart && f.keyEnd == o.KeyEnd })
		if i < 0 {
			closed = append(closed, o)
			continue
		}
		o.From, o.To, o.Until = live[i].from, live[i].to, live[i].until
		kept = append(kept, o)
		live = slices.Delete(live, i, i+1)
	}
	for _, o := range closed {
		why := "filled"
		if slices.ContainsFunc(fs, func(f finding) bool { return f.code == o.Code && f.keyStart == o.KeyStart && f.keyEnd == o.KeyEnd }) {
			why = fmt.Sprintf("aged out: the newest date_to %s is more than %d days after it", sp.newestDateTo(), p.GapHorizonDays)
		} else if o.Code == AnomalyUsageOverlap {
			why = "no longer overlapping"
		}
		a := sp.anomaly(o.Code, o.Rule(), o.EffectiveDate, o.Until, src)
		a.Cleared = true
		a.Message = fmt.Sprintf("%s cleared: %s", o.describe(), why)
		out.Anomalies = append(out.Anomalies, a)
	}
	for _, f := range fs {
		if !f.aged || slices.ContainsFunc(before, func(b finding) bool { return b.code == f.code && b.keyStart == f.keyStart && b.keyEnd == f.keyEnd }) ||
			slices.ContainsFunc(closed, func(o OpenAnomaly) bool { return o.Code == f.code && o.KeyStart == f.keyStart && o.KeyEnd == f.keyEnd }) {
			continue
		}
		o := OpenAnomaly{Code: f.code, KeyStart: f.keyStart, KeyEnd: f.keyEnd, From: f.from, To: f.to,
			EffectiveDate: f.from, Until: f.until, Source: src}
		a := sp.anomaly(o.Code, o.Rule(), o.EffectiveDate, o.Until, src)
		a.Message = fmt.Sprintf("%s; found already past the %d-day horizon (the newest date_to is %s): reported, blocks nothing",
			o.describe(), p.GapHorizonDays, sp.newestDateTo())
		c := a
		c.Cleared = true
		c.Message = fmt.Sprintf("%s cleared: aged out when found", o.describe())
		out.Anomalies = append(out.Anomalies, a, c)
	}
	for _, f := range live {
		o := OpenAnomaly{Code: f.code, KeyStart: f.keyStart, KeyEnd: f.keyEnd, From: f.from, To: f.to,
			EffectiveDate: f.from, Until: f.until, Source: src}
		kept = append(kept, o)
		a := sp.anomaly(o.Code, o.Rule(), o.EffectiveDate, o.Until, src)
		a.Message = o.describe()
		out.Anomalies = append(out.Anomalies, a)
	}
	sortOpen(kept)
	sp.Open = kept
}

// window is the stretch of the timeline an account sees: from its
// active_date to the day before the next account's active_date (A2).
type window struct{ from, to dates.Date }

// usageView summarises the periods visible in w: the first start and last
// date_to (clipped to w) and the newest unbroken chain (S1).
type usageView struct {
	first, last, chainStart dates.Date
	chainedMonths           int
}

func (sp *ServicePoint) view(w window) usageView {
	var v usageView
	maxEnd := dates.Date(math.MinInt32)
	for _, pe := range sp.Periods {
		if pe.DateTo < w.from || pe.Start > w.to {
			continue
		}
		if v.first == 0 {
			v.first = max(pe.Start, w.from)
		}
		if pe.Start > maxEnd+1 {
			v.chainStart = max(pe.Start, w.from)
		}
		maxEnd = max(maxEnd, pe.DateTo)
	}
	if v.first == 0 {
		return usageView{}
	}
	v.last = min(maxEnd, w.to)
	v.chainedMonths = wholeMonths(v.chainStart, v.last+1)
	return v
}

// wholeMonths counts the whole calendar months from from up to (excluding)
// to: the largest n with from.AddMonths(n) <= to.
func wholeMonths(from, to dates.Date) int {
	if to <= from {
		return 0
	}
	fy, fm, _ := from.Civil() // not Time().Date(): this runs for every membership of every row
	ty, tm, _ := to.Civil()
	n := (ty-fy)*12 + int(tm) - int(fm)
	for n > 0 && from.AddMonths(n) > to {
		n--
	}
	return n
}

// valueCharge shows a period's usage and charge for a message.
func valueCharge(v float64, c records.NullFloat) string {
	if !c.Valid {
		return fmt.Sprintf("value %g and no charge", v)
	}
	return fmt.Sprintf("value %g and charge %g", v, c.Value)
}
