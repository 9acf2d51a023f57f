package gen

import (
	"fmt"
	"slices"

	"github.com/usagestream/usagestream/internal/dates"
)

// inject applies a premise's anomaly to the service point just built (g.rows
// hold one clean row per period, all on account state 0) and records its
// label. Each case keeps the rest of the service point clean, so the label is
// the only thing a processor should find there; the comment on each case says
// which consequence it was shaped to have.
//
// Positions are drawn from g.rng, which continues the service point's own
// stream: deterministic per seed and premise. Months >= MinMonthsForAnomalies
// is guaranteed by validate.
func (g *generator) inject(a *assignment) {
	r := g.rng
	m := len(g.rows)
	base := g.accts[0]
	// between returns a row index in [lo, hi].
	between := func(lo, hi int) int { return lo + r.IntN(hi-lo+1) }

	switch a.kind {
	case U2Gap:
		// Drop one or two periods in the middle: the next row starts after a
		// gap of whole periods; everything after chains again.
		k, n := between(2, m-3), 1+r.IntN(2)
		from, to := g.rows[k].start, g.rows[k+n-1].end
		g.rows = slices.Delete(g.rows, k, k+n)
		g.addLabel(a.kind, k, -1, false, from,
			fmt.Sprintf("removed %d period(s) %s-%s: the row for the period starting %s follows a gap of %d days",
				n, from, to, g.rows[k].start, int(to-from+1)))

	case U3Overlap:
		// Start a middle period 3-10 days early without shortening it: a
		// partial overlap with the previous period, not aligned to any
		// period's start and not the newest row, so U6 makes it U3, not U5.
		k := between(1, m-2)
		d := 3 + r.IntN(8)
		rw := &g.rows[k]
		old := rw.end - rw.start + 1
		rw.start -= dates.Date(d)
		rw.value = scaleValue(rw.value, float64(old+dates.Date(d))/float64(old), g.dec())
		rw.charge = rw.charge * int64(old+dates.Date(d)) / int64(old)
		g.addLabel(a.kind, k, -1, false, rw.start,
			fmt.Sprintf("period ending %s starts %s, %d days before the previous period ends (%s): a %d-day overlap",
				rw.end, rw.start, d, g.rows[k-1].end, d))

	case U4ExactOverwrite:
		// An estimated read followed by the actual one: a second row with the
		// same date_to and duration and a different value, right after it.
		k := between(1, m-1)
		g.rows[k].est = 'E'
		fix := g.rows[k]
		fix.est = 'A'
		f := 0.8 + 0.4*r.Float64()
		fix.value = scaleValue(fix.value, f, g.dec())
		if fix.value == g.rows[k].value {
			fix.value += 100
		}
		if g.rows[k].value > 0 {
			fix.charge = fix.charge * fix.value / g.rows[k].value
		}
		g.rows = slices.Insert(g.rows, k+1, fix)
		g.addLabel(a.kind, k+1, -1, false, fix.end,
			fmt.Sprintf("period %s-%s sent again with the same date_to and duration: value %s (estimated) corrected to %s (actual)",
				fix.start, fix.end, fixedString(g.rows[k].value, g.dec()), fixedString(fix.value, g.dec())))

	case U5OverlappingOverwrite:
		// A rebill as the newest row: it starts where the last or second-last
		// period starts and runs through the next period, so it is longer than
		// any period it replaces and ends after every period on record.
		j := 1 + r.IntN(2)
		next := g.periods[m]
		last := g.rows[m-1]
		rb := row{start: g.rows[m-j].start, end: next.end, est: 'A', label: -1}
		for _, rw := range g.rows[m-j:] {
			rb.value += rw.value
			rb.charge += rw.charge
		}
		f := float64(next.end-next.start+1) / float64(last.end-last.start+1)
		rb.value += scaleValue(last.value, f, g.dec())
		rb.charge += int64(float64(last.charge) * f)
		g.rows = append(g.rows, rb)
		g.addLabel(a.kind, len(g.rows)-1, -1, false, rb.start,
			fmt.Sprintf("newest row %s-%s (%d days) starts with the period starting %s and replaces the last %d period(s)",
				rb.start, rb.end, int(rb.end-rb.start+1), rb.start, j))

	case U7ZeroLapse:
		// A temporary lapse: 1-3 chained periods of zero usage, account
		// untouched (A6): normal usage, not a gap.
		k, n := between(1, m-4), 1+r.IntN(3)
		for i := k; i < k+n; i++ {
			g.rows[i].value, g.rows[i].charge, g.rows[i].est = 0, 0, 'A'
		}
		g.addLabel(a.kind, k, -1, false, g.rows[k].start,
			fmt.Sprintf("%d period(s) of zero usage from %s to %s, periods chained, inactive_date empty",
				n, g.rows[k].start, g.rows[k+n-1].end))

	case A2Supersede:
		// The customer moves out and a new one moves in: new customer, new
		// account, active from the first period billed to them. The old
		// account gets no inactive_date: the newer active_date supersedes it.
		k := between(2, m-2)
		g.moveIn(a, base, k, rateCodes[r.IntN(len(rateCodes))])
		g.setState(k, len(g.rows), 1)
		g.addLabel(a.kind, k, 1, true, g.rows[k].start,
			fmt.Sprintf("customer %s (account %s) moves out after %s; customer %s moves in with account %s active from %s",
				customerID(base.custNo), g.accountID(base.seq), g.rows[k-1].end,
				customerID(a.extra), g.accountID(3), g.rows[k].start))

	case A3ActiveDateChanged:
		// The same account arrives with another active_date from a middle
		// period on; mostly later (A2 applies too), sometimes earlier.
		k := between(2, m-2)
		ch := base
		if r.IntN(10) < 7 {
			ch.active = g.rows[k].start
		} else {
			ch.active = base.active.AddDays(-1 - r.IntN(60))
		}
		g.accts = append(g.accts, ch)
		g.setState(k, len(g.rows), 1)
		g.addLabel(a.kind, k, 1, true, ch.active,
			fmt.Sprintf("account %s active_date changed from %s to %s from the period starting %s on",
				g.accountID(base.seq), base.active, ch.active, g.rows[k].start))

	case A4Termination:
		// A final bill: the last row carries inactive_date = its date_to and
		// no period follows.
		k := between(m/2, m-1)
		g.rows = g.rows[:k+1]
		t := base
		t.inactive, t.hasInactive = g.rows[k].end, true
		g.accts = append(g.accts, t)
		g.rows[k].state = 1
		g.addLabel(a.kind, k, 1, true, t.inactive,
			fmt.Sprintf("account %s terminated: final bill ending %s carries inactive_date %s; no later period",
				g.accountID(base.seq), g.rows[k].end, t.inactive))

	case A5Reactivation, A5InvalidReactivation:
		// A row with inactive_date terminates the account; the next row (the
		// labelled one) has an empty inactive_date and the same account_id.
		// Valid: the same active_date too. Invalid: active_date moved to the
		// new row's period start, so it does not match the terminated account
		// (this is also an active_date change, A3).
		k := between(2, m-3)
		t := base
		t.inactive, t.hasInactive = g.rows[k].end, true
		re := base
		what := "same account_id and active_date: a valid reactivation"
		if a.kind == A5InvalidReactivation {
			re.active = g.rows[k+1].start
			what = fmt.Sprintf("same account_id but active_date %s instead of %s: not a reactivation", re.active, base.active)
		}
		g.accts = append(g.accts, t, re)
		g.rows[k].state = 1
		g.setState(k+1, len(g.rows), 2)
		g.addLabel(a.kind, k+1, 2, true, g.rows[k+1].start,
			fmt.Sprintf("account %s terminated on the row ending %s (inactive_date %s); the next row has an empty inactive_date, %s",
				g.accountID(base.seq), g.rows[k].end, t.inactive, what))

	case A7RateNotAllowed:
		// A switch to the medical rate (off every default allowlist), sent with
		// the same account_id and active_date, kept to the end.
		k := between(2, m-2)
		med := base
		med.rate = rateMedical
		g.accts = append(g.accts, med)
		for i := k; i < m; i++ {
			g.rows[i].charge = g.rows[i].charge * 8 / 10
		}
		g.setState(k, len(g.rows), 1)
		g.addLabel(a.kind, k, 1, true, g.rows[k].start,
			fmt.Sprintf("account %s switches from rate %s to %s from the period starting %s",
				g.accountID(base.seq), base.rate, rateMedical, g.rows[k].start))

	case A8Deletion:
		// The only (hence most recent) account is deleted: its newest row
		// carries is_account_deletion.
		del := base
		del.deletion = deletionFlag[r.IntN(len(deletionFlag))]
		g.accts = append(g.accts, del)
		g.rows[m-1].state = 1
		g.addLabel(a.kind, m-1, 1, true, base.active,
			fmt.Sprintf("account %s (active from %s, the service point's only account) deleted: is_account_deletion=%s on its newest row",
				g.accountID(base.seq), base.active, del.deletion))

	case A8InvalidDeletion:
		// A move-in (as A2) makes a new account the most recent; then a row
		// asks to delete the old account. In the full layout that row repeats
		// the newest period with the same value (so rejecting it loses
		// nothing); in the split layout it is a customer-file row.
		k := between(2, m-2)
		g.moveIn(a, base, k, rateCodes[r.IntN(len(rateCodes))])
		del := base
		del.deletion = deletionFlag[r.IntN(len(deletionFlag))]
		g.accts = append(g.accts, del)
		g.setState(k, len(g.rows), 1)
		dup := g.rows[m-1]
		dup.state, dup.fullOnly, dup.label = 2, true, -1
		g.rows = append(g.rows, dup)
		g.addLabel(a.kind, len(g.rows)-1, 2, true, base.active,
			fmt.Sprintf("deletion of account %s (active from %s) after account %s (active from %s) superseded it: not the most recent account",
				g.accountID(base.seq), base.active, g.accountID(3), g.rows[k].start))

	case C2PropertyManager:
		// One customer_id holds active accounts at three premises; the third
		// premise in file order carries the label.
		if !a.c2Last {
			return
		}
		g.addLabel(a.kind, 0, 0, true, a.c2Date,
			fmt.Sprintf("customer %s (a property manager) is active at premises %s, %s and %s",
				customerID(a.c2Customer), premiseID(a.c2Premises[0]), premiseID(a.c2Premises[1]), premiseID(a.c2Premises[2])))

	case S1ServicePointReplace:
		// A new electric service point at the premise takes over from a
		// middle period on; the old one gets no period after that (and keeps
		// an empty inactive_date: it just stops). Same customer, new account.
		k := between(3, m-3)
		nw := base
		nw.spNo, nw.seq, nw.active, nw.meterAMI = a.extra, 3, g.rows[k].start, true
		g.accts = append(g.accts, nw)
		g.setState(k, len(g.rows), 1)
		g.addLabel(a.kind, k, 1, true, nw.active,
			fmt.Sprintf("service point %s replaces %s from %s (last period of the old one ends %s); new account %s",
				spID(nw.fuel, nw.spNo), spID(base.fuel, base.spNo), nw.active, g.rows[k-1].end, g.accountID(3)))

	case S2DualFuel:
		// The gas service point of a premise that also has electric: the pair
		// is complete with its first row.
		g.addLabel(a.kind, 0, 0, true, base.active,
			fmt.Sprintf("gas service point %s and electric %s at premise %s, same customer, both active from %s",
				spID('G', base.spNo), spID('E', base.spNo), premiseID(g.prem.no), base.active))

	case U9NegativeUsage:
		// A net-metering export row for the same days right after the period:
		// rejected without net metering, which loses nothing. No charge, so
		// that the negative usage_value is the row's only fault.
		k := between(0, m-1)
		neg := g.rows[k]
		neg.value = -scaleValue(neg.value, 0.05+0.35*r.Float64(), g.dec())
		if neg.value == 0 {
			neg.value = -100
		}
		neg.noCharge, neg.est = true, 'A'
		g.rows = slices.Insert(g.rows, k+1, neg)
		g.addLabel(a.kind, k+1, -1, false, neg.end,
			fmt.Sprintf("second row for period %s-%s with negative usage_value %s (net-metering export)",
				neg.start, neg.end, fixedString(neg.value, g.dec())))

	case BadDate, NullToken, ThousandsSeparator, FieldCount, BadDuration:
		// A broken copy of a period's row right after it: the reader rejects
		// the copy and the clean row stands, so the timeline has no hole.
		k := between(0, m-1)
		cp := g.rows[k]
		var note string
		switch a.kind {
		case BadDate:
			cp.bad = badDate
			note = fmt.Sprintf("copy of the row for %s-%s with date_to %s, not a calendar date", cp.start, cp.end, string(appendBadDate(nil, cp.end)))
		case NullToken:
			cp.bad, cp.token = badNullValue, uint8(r.IntN(len(nullTokens)))
			field := "usage_value"
			if r.IntN(2) == 0 {
				cp.bad, field = badNullCharge, "usage_charge"
			}
			note = fmt.Sprintf("copy of the row for %s-%s with %s %q, a null token in a number column", cp.start, cp.end, field, nullTokens[cp.token])
		case ThousandsSeparator:
			cp.bad = badThousands
			if cp.value < 100000 {
				cp.value += 100000
			}
			note = fmt.Sprintf("copy of the row for %s-%s with usage_value %s", cp.start, cp.end, string(appendFixed(nil, cp.value, g.dec(), true)))
		case FieldCount:
			cp.bad = badFieldCount
			note = fmt.Sprintf("copy of the row for %s-%s without the tab before usage_charge: one field short", cp.start, cp.end)
		case BadDuration:
			cp.bad = badDuration
			note = fmt.Sprintf("copy of the row for %s-%s with duration 0", cp.start, cp.end)
		}
		cp.label = -1
		g.rows = slices.Insert(g.rows, k+1, cp)
		g.addLabel(a.kind, k+1, -1, false, cp.end, note)

	case BadServiceType:
		// A copy of a period's row whose service_type is not on the list; in
		// the split layout, a copy of the account's customer-file row.
		k := between(0, m-1)
		bs := base
		bs.serviceType = badTypes[r.IntN(len(badTypes))]
		g.accts = append(g.accts, bs)
		cp := g.rows[k]
		cp.state, cp.fullOnly, cp.label = 1, true, -1
		g.rows = slices.Insert(g.rows, k+1, cp)
		g.addLabel(a.kind, k+1, 1, true, cp.end,
			fmt.Sprintf("copy of the row for %s-%s (split layout: of the customer row) with service_type %q", cp.start, cp.end, bs.serviceType))
	}
}

// setState puts rows [from, to) on account state s.
func (g *generator) setState(from, to, s int) {
	for i := from; i < to; i++ {
		g.rows[i].state = s
	}
}

// addLabel records a label on row (full layout) and, for the split layout, on
// the customer-file row of state when inCustomer, else on the same usage row.
func (g *generator) addLabel(k Kind, rowIdx, state int, inCustomer bool, date dates.Date, note string) {
	st := state
	if !inCustomer {
		st = g.rows[rowIdx].state
	}
	a := &g.accts[st]
	meta := kindInfo[k]
	g.pend = append(g.pend, pending{
		label: Label{
			Kind:           k,
			Rule:           meta.rule,
			RejectCode:     meta.rejectCode,
			ServicePointID: spID(a.fuel, a.spNo),
			CustomerID:     customerID(a.custNo),
			PremiseID:      premiseID(g.prem.no),
			Date:           dateString(date),
			Note:           note,
		},
		row: rowIdx, state: state, inCustomer: inCustomer,
	})
	g.rows[rowIdx].label = len(g.pend) - 1
}

// dec is the number of decimals of usage values of the service point being
// built: whole kWh, tenths of a therm.
func (g *generator) dec() int {
	if g.accts[0].fuel == 'G' {
		return 1
	}
	return 0
}

func (g *generator) accountID(seq int) string {
	return string(appendAccountID(nil, g.prem.no, seq))
}

func customerID(n int64) string           { return string(appendCustomerID(nil, n)) }
func premiseID(n int64) string            { return string(appendPremiseID(nil, n)) }
func spID(fuel byte, n int64) string      { return string(appendSPID(nil, fuel, n)) }
func fixedString(v int64, dec int) string { return string(appendFixed(nil, v, dec, false)) }

// scaleValue multiplies hundredths by f, keeping the fuel's precision.
func scaleValue(v int64, f float64, dec int) int64 { return roundTo(float64(v)/100*f, dec) }

// appendBadDate writes a yyyymmdd that is no calendar date, near d: the day
// after the last of d's month, or day 32 for a 31-day month.
func appendBadDate(b []byte, d dates.Date) []byte {
	y, m, _ := civil(d)
	day := monthDays(y, m) + 1
	if day > 31 {
		day = 32
	}
	return append(b,
		byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10),
		byte('0'+m/10), byte('0'+m%10), byte('0'+day/10), byte('0'+day%10))
}

// moveIn adds the account of a new customer (a.extra) who takes over the
// service point of base from the start of row k (A2, and A8's refused case).
func (g *generator) moveIn(a *assignment, base acct, k int, rate string) {
	g.accts = append(g.accts, acct{
		custNo: a.extra, seq: 3, active: g.rows[k].start,
		rate: rate, fuel: base.fuel, spNo: base.spNo,
		serviceType: base.serviceType, meterAMI: base.meterAMI,
	})
}
