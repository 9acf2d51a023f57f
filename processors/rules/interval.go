package rules

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// Interval anomaly codes (rules I1-I7). Gaps, stale feeds, sum mismatches and
// runs are conditions: raised when they appear, cleared when they end.
const (
	AnomalyIntervalLength   = "INTERVAL_LENGTH_CHANGED"   // I1: a channel's reads change length
	AnomalyIntervalInvalid  = "INTERVAL_INVALID"          // a read no file reader would let through
	AnomalyIntervalGap      = "INTERVAL_GAP"              // I3: intervals missing inside a day
	AnomalyIntervalGapDays  = "INTERVAL_GAP_DAYS"         // I3: whole days missing between data
	AnomalyStaleFeed        = "STALE_FEED"                // I4
	AnomalyBillingMismatch  = "BILLING_INTERVAL_MISMATCH" // I6
	AnomalyIntervalNegative = "INTERVAL_NEGATIVE"         // I7
	AnomalyZeroRun          = "INTERVAL_ZERO_RUN"         // I7
	AnomalySpike            = "INTERVAL_SPIKE"            // I7
	AnomalyEstimateRun      = "INTERVAL_ESTIMATE_RUN"     // I7
	AnomalyLateCorrection   = "INTERVAL_LATE_CORRECTION"  // I2 beyond the detail window
)

// CorrectionInterval is the kind of an I2 correction.
const CorrectionInterval = "INTERVAL"

// IntervalPoint is the interval state of one service point: coverage and
// recent values per channel, the billed periods it is checked against (I6),
// and what it knows of the account from billing rows (I4, I5).
//
// Coverage is a bitmap per local day (Day), not a key per interval: a year of
// 15-minute reads is 366 days of a few words each.
type IntervalPoint struct {
	ID string
	// Utility is the utility code of the newest input, for events that a
	// timer causes (every event carries it).
	Utility  string
	Channels []*Channel // sorted by name; "" is the main channel
	Periods  []BilledPeriod
	Account  IntervalAccount
	// LastSeenMs is the wall-clock time (record timestamp, Unix ms) of the
	// newest read; Stale is set while STALE_FEED is raised (I4).
	LastSeenMs  int64
	StaleRaised bool
	// HistoryMonths last reported (I5).
	HistoryMonths int
	// Accounts are the accounts billing rows named for the service point,
	// one per account id (its newest row), sorted by active date: an
	// anomaly is stamped with the account whose active date is the latest
	// on or before the anomaly's effective date. Raised are the anomalies
	// reported and not cleared, with the account they were stamped with,
	// so that a billing row that changes which account a day belongs to
	// stamps them again: reads and bills come on two topics in no fixed
	// order, and the final stamp must not depend on which came first.
	Accounts []IntervalAccount
	Raised   []RaisedAnomaly
}

// RaisedAnomaly is an anomaly the interval stage reported and did not clear
// (identified, as its consumers do, by code, rule and effective date).
type RaisedAnomaly struct {
	Code, Rule string
	Date       dates.Date
	Until      dates.Date
	Message    string
	Source     Source
	// The stamp it was reported with (see IntervalPoint.Accounts).
	AccountID, CustomerID, PremiseID, SecondaryID string
}

// IntervalAccount is what billing rows said of the service point's account.
type IntervalAccount struct {
	Known       bool
	Active      bool
	ActiveDate  dates.Date
	AccountID   string
	CustomerID  string
	PremiseID   string
	SecondaryID string
	ServiceType string
}

// Channel is one channel's coverage.
//
// Invariants (checked by check): Days sorted by date without duplicates;
// each day's Values has one value per set bit of Bits while Detailed; runs
// and raised gaps refer to days within retention.
type Channel struct {
	Name    string
	Minutes int16
	Units   string
	Days    []Day
	// DayGaps are the raised whole-day gaps (I3), sorted.
	DayGaps []DateRange
	// Tail of the channel in time order, for I7 runs: the newest interval
	// end, and the runs of zero and of estimated reads ending there.
	LastEndMs     int64
	ZeroRunMin    int32
	EstRunMin     int32
	ZeroRaised    bool
	EstRaised     bool
	ZeroRunStart  int64
	EstRunStart   int64
	LengthWarned  bool
	NegativeDates []dates.Date // days whose negative reads were reported (within detail)
}

// DateRange is an inclusive range of days.
type DateRange struct{ From, To dates.Date }

// Day is one local calendar day of a channel. Slot s covers the interval
// starting (s * length) minutes after the instant (date 00:00 UTC - 14h),
// the earliest local midnight of any time zone: every interval of a local
// day, DST days included (23 or 25 hours), lands in its own slot without
// knowing the zone.
type Day struct {
	Date dates.Date
	Bits []uint64
	Est  []uint64 // estimated (E or U) slots
	// FirstLocal is the local start minute of the lowest slot's interval,
	// LastLocalEnd the local end minute of the highest slot's (1440 at
	// midnight): the day is complete when they are 0 and 1440 with no hole.
	FirstLocal   int16
	LastLocalEnd int16
	Sum          float64
	Detailed     bool      // Values are held
	Values       []float64 // one per set bit, in slot order
	SumUnknown   bool      // a value changed after the detail window: Sum is not exact
	GapRaised    int16     // missing intervals reported (I3), 0 when none
	SpikeRaised  bool
}

// BilledPeriod is a billing period of the service point (I6).
type BilledPeriod struct {
	DateTo   dates.Date
	Duration int32
	Value    float64
	Source   Source
	Mismatch bool // BILLING_INTERVAL_MISMATCH raised
}

func (b BilledPeriod) start() dates.Date { return b.DateTo.AddDays(1 - int(b.Duration)) }

// IntervalCorrection reports an interval sent again with another value or
// estimate flag (I2).
type IntervalCorrection struct {
	ServicePointID string
	Channel        string
	EndMs          int64
	Minutes        int16
	Date           dates.Date // local day the interval starts on
	OldValue       float64
	NewValue       float64
	OldEstimate    bool
	NewEstimate    bool
	Source         Source
}

// IntervalHistory reports the months of interval history of a service point
// (I5) when it changes, with the customer and premise stage 2 needs.
type IntervalHistory struct {
	ServicePointID string     `json:"service_point_id"`
	CustomerID     string     `json:"customer_id"`
	PremiseID      string     `json:"premise_id"`
	Months         int        `json:"months"`
	Since          dates.Date `json:"since"`
	Source         Source     `json:"source"`
}

// IntervalOutput is everything one input caused, in a deterministic order.
type IntervalOutput struct {
	Corrections []IntervalCorrection
	Anomalies   []Anomaly
	History     *IntervalHistory
	// StaleTimer is when to call Stale next (zero: no change to the timer).
	StaleTimer time.Time
}

const slotSpanMinutes = 840 + 720 + 1500 // earliest midnight (UTC+14) to the latest day end (UTC-12, 25 hours)

func slotsPerDay(minutes int) int { return (slotSpanMinutes + minutes - 1) / minutes }

// slotOf is the slot of a read within its start day, or -1.
func slotOf(r *records.IntervalRead) int {
	startMin := r.EndMillis/60_000 - int64(r.Minutes)
	e := startMin - (int64(r.StartDate())*1440 - 840)
	if e < 0 || r.Minutes <= 0 {
		return -1
	}
	s := int(e / int64(r.Minutes))
	if s >= slotsPerDay(int(r.Minutes)) {
		return -1
	}
	return s
}

func (ip *IntervalPoint) anomaly(code, rule string, day dates.Date, src Source, format string, args ...any) Anomaly {
	a := ip.accountAt(day)
	return Anomaly{ServicePointID: ip.ID, Code: code, Rule: rule, Message: fmt.Sprintf(format, args...),
		EffectiveDate: day, AccountID: a.AccountID, CustomerID: a.CustomerID, PremiseID: a.PremiseID,
		SecondaryID: a.SecondaryID, Source: src}
}

func (ip *IntervalPoint) channel(name string) *Channel {
	i, ok := slices.BinarySearchFunc(ip.Channels, name, func(c *Channel, n string) int {
		switch {
		case c.Name < n:
			return -1
		case c.Name > n:
			return 1
		}
		return 0
	})
	if ok {
		return ip.Channels[i]
	}
	c := &Channel{Name: name}
	ip.Channels = slices.Insert(ip.Channels, i, c)
	return c
}

// day returns the day d of c, creating it (with values when it is after
// noDetail); the bool says it is new.
func (c *Channel) day(d, noDetail dates.Date) (*Day, bool) {
	n := len(c.Days)
	if n > 0 && c.Days[n-1].Date == d { // the usual case: reads in time order
		return &c.Days[n-1], false
	}
	i, ok := slices.BinarySearchFunc(c.Days, d, func(x Day, d dates.Date) int { return int(x.Date) - int(d) })
	if ok {
		return &c.Days[i], false
	}
	words := (slotsPerDay(int(c.Minutes)) + 63) / 64
	c.Days = slices.Insert(c.Days, i, Day{Date: d, Bits: make([]uint64, words), Est: make([]uint64, words), Detailed: d > noDetail})
	return &c.Days[i], true
}

func (c *Channel) find(d dates.Date) *Day {
	i, ok := slices.BinarySearchFunc(c.Days, d, func(x Day, d dates.Date) int { return int(x.Date) - int(d) })
	if !ok {
		return nil
	}
	return &c.Days[i]
}

func (d *Day) has(s int) bool { return d.Bits[s/64]&(1<<(s%64)) != 0 }

// rank is the index in Values of slot s: the set bits below it.
func (d *Day) rank(s int) int {
	n := 0
	for w := 0; w < s/64; w++ {
		n += bits.OnesCount64(d.Bits[w])
	}
	return n + bits.OnesCount64(d.Bits[s/64]&(1<<(s%64)-1))
}

func (d *Day) count() int {
	n := 0
	for _, w := range d.Bits {
		n += bits.OnesCount64(w)
	}
	return n
}

func (d *Day) lowHigh() (int, int) {
	lo, hi := -1, -1
	for w, x := range d.Bits {
		if x == 0 {
			continue
		}
		if lo < 0 {
			lo = w*64 + bits.TrailingZeros64(x)
		}
		hi = w*64 + 63 - bits.LeadingZeros64(x)
	}
	return lo, hi
}

// missing is how many intervals of the day are absent: holes between the
// first and last slot, plus those before the first and after the last.
func (d *Day) missing(minutes int) int {
	lo, hi := d.lowHigh()
	if lo < 0 {
		return 1440 / minutes
	}
	holes := hi - lo + 1 - d.count()
	return holes + int(d.FirstLocal)/minutes + (1440-int(d.LastLocalEnd))/minutes
}

// ApplyRead runs the interval rules for one read (I1-I3, I5-I7) and notes
// when the feed was last seen (I4). atMs is the record's wall-clock time.
func (ip *IntervalPoint) ApplyRead(p Policy, ipol IntervalPolicy, r *records.IntervalRead, atMs int64, src Source) IntervalOutput {
	out := ip.applyRead(p, ipol, r, atMs, src)
	ip.track(out.Anomalies)
	ip.pruneRaised(ipol)
	return out
}

// maxRaised bounds the anomalies a service point keeps to stamp again.
const maxRaised = 512

// pruneRaised forgets the raised anomalies whose day left the retention,
// once an account is stamped on them: the reads that could end them are
// gone, and a bill that moves which account such an old day belongs to is
// rare. One no account was known for yet is kept until one is (the bills
// of a service point may come long after its reads), within maxRaised,
// the oldest dropped first.
func (ip *IntervalPoint) pruneRaised(ipol IntervalPolicy) {
	if c := ip.find(""); c != nil && len(c.Days) > 0 {
		oldest := c.Days[len(c.Days)-1].Date.AddDays(-ipol.RetentionDays)
		ip.Raised = slices.DeleteFunc(ip.Raised, func(r RaisedAnomaly) bool { return r.Date <= oldest && r.AccountID != "" })
	}
	if n := len(ip.Raised) - maxRaised; n > 0 {
		slices.SortStableFunc(ip.Raised, func(a, b RaisedAnomaly) int { return int(a.Date - b.Date) })
		ip.Raised = slices.Delete(ip.Raised, 0, n)
	}
}

func (ip *IntervalPoint) applyRead(p Policy, ipol IntervalPolicy, r *records.IntervalRead, atMs int64, src Source) IntervalOutput {
	var out IntervalOutput
	if ip.ID == "" {
		ip.ID = r.ServicePointID
	}
	// I4: any read clears a stale feed and pushes the timer back.
	if ip.StaleRaised {
		ip.StaleRaised = false
		// Dated like the raise (the last read before the silence), so
		// that the clear names the condition it ends.
		a := ip.anomaly(AnomalyStaleFeed, "I4", dates.FromTime(time.UnixMilli(ip.LastSeenMs).UTC()), src,
			"interval data arrived again at %s", time.UnixMilli(atMs).UTC().Format(time.RFC3339))
		a.Cleared = true
		out.Anomalies = append(out.Anomalies, a)
	}
	if atMs > ip.LastSeenMs {
		ip.LastSeenMs = atMs
		out.StaleTimer = time.UnixMilli(atMs).Add(ipol.StaleAfter)
	}

	c := ip.channel(r.Channel)
	if c.Minutes == 0 {
		c.Minutes, c.Units = r.Minutes, r.Units
	}
	if r.Minutes != c.Minutes { // I1 across files: a channel keeps one length
		if !c.LengthWarned {
			c.LengthWarned = true
			out.Anomalies = append(out.Anomalies, ip.anomaly(AnomalyIntervalLength, "I1", r.StartDate(), src,
				"channel %q has %d-minute intervals and a %d-minute read arrived; reads of another length are not counted until the channel is re-sent at one length", r.Channel, c.Minutes, r.Minutes))
		}
		return out
	}
	slot := slotOf(r)
	if slot < 0 || !records.ValidIntervalLength(int(r.Minutes)) {
		out.Anomalies = append(out.Anomalies, ip.anomaly(AnomalyIntervalInvalid, "I1", r.StartDate(), src,
			"the read's local time, offset and instant do not agree; check the producer"))
		return out
	}
	date := r.StartDate()
	newest := dates.Date(0)
	if n := len(c.Days); n > 0 {
		newest = c.Days[n-1].Date
		if date <= newest.AddDays(-ipol.RetentionDays) {
			return out // older than the history kept: nothing to compare it with
		}
	}
	noDetail := max(newest, date).AddDays(-ipol.DetailDays)
	d, isNew := c.day(date, noDetail)
	est := r.Estimate != records.EstimateActual

	if d.has(slot) { // I2: the same interval again
		ip.correct(p, ipol, c, d, slot, r, est, src, &out)
	} else {
		ip.add(c, d, slot, r, est)
		if ip.checkDayGap(c, d, src, &out) {
			ip.checkPeriods(p, c, d.Date, src, &out)
		}
	}
	if isNew && len(c.Days) > 1 {
		ip.newDay(ipol, c, date, newest, src, &out)
	}
	ip.runs(ipol, c, r, est, src, &out)
	if r.Value < 0 && !p.NetMetering && c.Name == "" {
		if !slices.Contains(c.NegativeDates, date) {
			c.NegativeDates = append(c.NegativeDates, date)
			out.Anomalies = append(out.Anomalies, ip.anomaly(AnomalyIntervalNegative, "I7", date, src,
				"a negative interval value (%v %s at %s) and net metering is off; reported, the data are kept", r.Value, r.Units, time.UnixMilli(r.EndMillis).UTC().Format(time.RFC3339)))
		}
	}
	ip.retain(ipol, c, src, &out)
	ip.history(p, c, src, &out)
	return out
}

func (ip *IntervalPoint) add(c *Channel, d *Day, slot int, r *records.IntervalRead, est bool) {
	lo, hi := d.lowHigh()
	d.Bits[slot/64] |= 1 << (slot % 64)
	if est {
		d.Est[slot/64] |= 1 << (slot % 64)
	}
	if d.Detailed {
		d.Values = slices.Insert(d.Values, d.rank(slot), r.Value)
	}
	d.Sum += r.Value
	if lo < 0 || slot < lo {
		d.FirstLocal = int16(r.StartLocalMinute())
	}
	if hi < 0 || slot > hi {
		d.LastLocalEnd = int16(r.StartLocalMinute() + int(r.Minutes))
	}
}

// correct applies I2: the new value replaces the old one; a correction event
// says both, unless nothing changed (a resend is not a correction).
func (ip *IntervalPoint) correct(p Policy, ipol IntervalPolicy, c *Channel, d *Day, slot int, r *records.IntervalRead, est bool, src Source, out *IntervalOutput) {
	wasEst := d.Est[slot/64]&(1<<(slot%64)) != 0
	if est {
		d.Est[slot/64] |= 1 << (slot % 64)
	} else {
		d.Est[slot/64] &^= 1 << (slot % 64)
	}
	if !d.Detailed {
		d.SumUnknown = true
		out.Anomalies = append(out.Anomalies, ip.anomaly(AnomalyLateCorrection, "I2", d.Date, src,
			"channel %q: the interval ending %s was sent again, more than %d days back, where only coverage is kept; its old value is unknown and the day is left out of sum checks",
			c.Name, time.UnixMilli(r.EndMillis).UTC().Format(time.RFC3339), ipol.DetailDays))
		return
	}
	i := d.rank(slot)
	old := d.Values[i]
	if old == r.Value && wasEst == est {
		return
	}
	d.Values[i] = r.Value
	d.Sum += r.Value - old
	out.Corrections = append(out.Corrections, IntervalCorrection{ServicePointID: ip.ID, Channel: c.Name, EndMs: r.EndMillis,
		Minutes: r.Minutes, Date: d.Date, OldValue: old, NewValue: r.Value, OldEstimate: wasEst, NewEstimate: est, Source: src})
	if d.GapRaised == 0 && d.missing(int(c.Minutes)) == 0 {
		ip.checkPeriods(p, c, d.Date, src, out)
	}
}

// checkDayGap clears I3 for a day that became complete; it reports whether
// the day is complete. Gaps are raised by closeDays, when a later day starts:
// raising them read by read would report every day being back-filled.
func (ip *IntervalPoint) checkDayGap(c *Channel, d *Day, src Source, out *IntervalOutput) bool {
	m := d.missing(int(c.Minutes))
	if m == 0 && d.GapRaised > 0 {
		d.GapRaised = 0
		a := ip.anomaly(AnomalyIntervalGap, "I3", d.Date, src, "channel %q: the day's intervals are complete", c.Name)
		a.Until, a.Cleared = d.Date, true
		out.Anomalies = append(out.Anomalies, a)
	}
	return m == 0
}

// closeDays raises I3 for the incomplete days of the detail window before the
// new newest day, or reports them again when the count of missing intervals
// changed since.
func (ip *IntervalPoint) closeDays(ipol IntervalPolicy, c *Channel, newest dates.Date, src Source, out *IntervalOutput) {
	from := newest.AddDays(-ipol.DetailDays)
	for i := len(c.Days) - 2; i >= 0 && c.Days[i].Date > from; i-- {
		d := &c.Days[i]
		if m := d.missing(int(c.Minutes)); m > 0 && int(d.GapRaised) != m {
			d.GapRaised = int16(m)
			a := ip.anomaly(AnomalyIntervalGap, "I3", d.Date, src, "channel %q: %d of the day's %d-minute intervals are missing", c.Name, m, c.Minutes)
			a.Until = d.Date
			out.Anomalies = append(out.Anomalies, a)
		}
	}
}

// newDay handles a day that was not there: it closes the previous newest
// day (I3 inside it), and raises or splits whole-day gaps (I3).
func (ip *IntervalPoint) newDay(ipol IntervalPolicy, c *Channel, date, newest dates.Date, src Source, out *IntervalOutput) {
	if date > newest {
		ip.closeDays(ipol, c, date, src, out)
		if prev := c.find(newest); prev != nil {
			ip.spike(ipol, c, prev, src, out)
		}
		if date > newest.AddDays(1) {
			g := DateRange{newest.AddDays(1), date.AddDays(-1)}
			c.DayGaps = append(c.DayGaps, g)
			out.Anomalies = append(out.Anomalies, ip.gapDays(c, g, false, src))
		}
		return
	}
	// A day inside the history: it may fill a raised whole-day gap.
	for i, g := range c.DayGaps {
		if date < g.From || date > g.To {
			continue
		}
		c.DayGaps = slices.Delete(c.DayGaps, i, i+1)
		out.Anomalies = append(out.Anomalies, ip.gapDays(c, g, true, src))
		var parts []DateRange
		if date > g.From {
			parts = append(parts, DateRange{g.From, date.AddDays(-1)})
		}
		if date < g.To {
			parts = append(parts, DateRange{date.AddDays(1), g.To})
		}
		for _, part := range parts {
			out.Anomalies = append(out.Anomalies, ip.gapDays(c, part, false, src))
		}
		c.DayGaps = slices.Insert(c.DayGaps, i, parts...)
		return
	}
	// A new first day: the days up to the old first one are a gap.
	if c.Days[0].Date == date && c.Days[1].Date > date.AddDays(1) {
		g := DateRange{date.AddDays(1), c.Days[1].Date.AddDays(-1)}
		c.DayGaps = slices.Insert(c.DayGaps, 0, g)
		out.Anomalies = append(out.Anomalies, ip.gapDays(c, g, false, src))
	}
}

func (ip *IntervalPoint) gapDays(c *Channel, g DateRange, cleared bool, src Source) Anomaly {
	n := int(g.To-g.From) + 1
	msg := fmt.Sprintf("channel %q: %d whole day(s) without intervals between days with data", c.Name, n)
	if cleared {
		msg = fmt.Sprintf("channel %q: the gap of %d day(s) changed or was filled", c.Name, n)
	}
	a := ip.anomaly(AnomalyIntervalGapDays, "I3", g.From, src, "%s", msg)
	a.Until, a.Cleared = g.To, cleared
	return a
}

// historyStart is the first day of the newest stretch of days without a
// whole-day gap (I5 counts unbroken history).
func (c *Channel) historyStart() dates.Date {
	if n := len(c.DayGaps); n > 0 {
		return c.DayGaps[n-1].To.AddDays(1)
	}
	return c.Days[0].Date
}

// spike applies I7's spike check to a closed day.
func (ip *IntervalPoint) spike(ipol IntervalPolicy, c *Channel, d *Day, src Source, out *IntervalOutput) {
	if !d.Detailed || d.SpikeRaised || len(d.Values) < 2 {
		return
	}
	hi, next := math.Inf(-1), math.Inf(-1)
	for _, v := range d.Values {
		if v > hi {
			hi, next = v, hi
		} else if v > next {
			next = v
		}
	}
	if hi >= ipol.SpikeMinimum && (next <= 0 || hi > ipol.SpikeRatio*next) {
		d.SpikeRaised = true
		out.Anomalies = append(out.Anomalies, ip.anomaly(AnomalySpike, "I7", d.Date, src,
			"channel %q: the day's highest interval (%v %s) is more than %v times the next highest (%v); reported, the data are kept", c.Name, hi, c.Units, ipol.SpikeRatio, next))
	}
}

// runs applies I7's zero and estimate runs to reads arriving in time order;
// a read that is not the next interval starts the runs again.
func (ip *IntervalPoint) runs(ipol IntervalPolicy, c *Channel, r *records.IntervalRead, est bool, src Source, out *IntervalOutput) {
	if r.EndMillis <= c.LastEndMs {
		return // a late or corrected interval: runs follow the newest data
	}
	next := r.EndMillis == c.LastEndMs+int64(r.Minutes)*60_000
	c.LastEndMs = r.EndMillis
	date := r.StartDate()
	step := func(on bool, run *int32, start *int64, raised *bool, code string, limit int, what string) {
		switch {
		case on && next && *run > 0:
			*run += int32(r.Minutes)
		case on: // a run begins here: after a read off the run, or a break in the intervals
			*run, *start = int32(r.Minutes), r.EndMillis-int64(r.Minutes)*60_000
		default:
			*run = 0
			if *raised {
				*raised = false
				a := ip.anomaly(code, "I7", date, src, "channel %q: the run of %s ended", c.Name, what)
				a.Cleared = true
				out.Anomalies = append(out.Anomalies, a)
			}
			return
		}
		if !*raised && int(*run) >= limit {
			*raised = true
			out.Anomalies = append(out.Anomalies, ip.anomaly(code, "I7", dates.FromTime(time.UnixMilli(*start).UTC()), src,
				"channel %q: %d minutes of %s since %s; reported, the data are kept", c.Name, *run, what, time.UnixMilli(*start).UTC().Format(time.RFC3339)))
		}
	}
	gas := ip.Account.ServiceType == "G" || r.ServiceType == "G"
	step(r.Value == 0 && !gas, &c.ZeroRunMin, &c.ZeroRunStart, &c.ZeroRaised, AnomalyZeroRun, ipol.ZeroRunMinutes, "zero usage")
	step(est, &c.EstRunMin, &c.EstRunStart, &c.EstRaised, AnomalyEstimateRun, ipol.EstimateRunMinutes, "estimated reads")
}

// retain drops days beyond the retention and values beyond the detail
// window, and the billed periods that start beyond the retention.
func (ip *IntervalPoint) retain(ipol IntervalPolicy, c *Channel, src Source, out *IntervalOutput) {
	newest := c.Days[len(c.Days)-1].Date
	cut := 0
	for cut < len(c.Days) && c.Days[cut].Date <= newest.AddDays(-ipol.RetentionDays) {
		cut++
	}
	if cut > 0 {
		c.Days = slices.Delete(c.Days, 0, cut)
		first := c.Days[0].Date
		for len(c.DayGaps) > 0 && c.DayGaps[0].To < first {
			c.DayGaps = slices.Delete(c.DayGaps, 0, 1)
		}
	}
	// Days leave the detail window oldest first, so walking back from the
	// newest day stops at the first one already without values: the cost
	// per read does not grow with the history.
	detail := newest.AddDays(-ipol.DetailDays)
	for i := len(c.Days) - 1; i >= 0; i-- {
		d := &c.Days[i]
		if d.Date > detail {
			continue
		}
		if !d.Detailed {
			break
		}
		d.Detailed, d.Values = false, nil
	}
	c.NegativeDates = slices.DeleteFunc(c.NegativeDates, func(x dates.Date) bool { return x <= detail })
	// A billed period is judged (I6) only while every day of it is kept:
	// one whose first day left the retention is dropped, and its mismatch
	// cleared. Keeping the judgement until the whole period left would make
	// the final state depend on whether the bill came before the reads
	// (judged, then kept) or after (its first days gone: never judged).
	if c.Name == "" && len(ip.Periods) > 0 {
		oldest := newest.AddDays(-ipol.RetentionDays)
		ip.Periods = slices.DeleteFunc(ip.Periods, func(b BilledPeriod) bool {
			if b.start() > oldest {
				return false
			}
			if b.Mismatch {
				a := ip.anomaly(AnomalyBillingMismatch, "I6", b.start(), src,
					"the billing period %s..%s left the %d days of interval data kept; it is no longer checked", b.start(), b.DateTo, ipol.RetentionDays)
				a.Until, a.Cleared = b.DateTo, true
				out.Anomalies = append(out.Anomalies, a)
			}
			return true
		})
	}
}

// history reports I5's months of main-channel history when they change.
func (ip *IntervalPoint) history(p Policy, c *Channel, src Source, out *IntervalOutput) {
	if c.Name != "" || len(c.Days) == 0 {
		return
	}
	since := c.historyStart()
	months := wholeMonths(since, c.Days[len(c.Days)-1].Date+1)
	if months == ip.HistoryMonths {
		return
	}
	ip.HistoryMonths = months
	if !ip.Account.Known {
		return
	}
	out.History = &IntervalHistory{ServicePointID: ip.ID, CustomerID: ip.Account.CustomerID, PremiseID: ip.Account.PremiseID,
		Months: months, Since: since, Source: src}
}

// HistoryEligible says whether months of history satisfy I5.
func HistoryEligible(p Policy, months int) bool { return months >= p.IntervalHistoryMonths }

// ApplyBilling records what a billing row says about the account (I4, I5)
// and its billed period (I6), and checks that period against the intervals.
func (ip *IntervalPoint) ApplyBilling(p Policy, row *records.BillingRow, src Source) IntervalOutput {
	changed := row.Layout != records.LayoutUsage && ip.noteAccount(row)
	out := ip.applyBilling(p, row, src)
	ip.track(out.Anomalies)
	if changed {
		again := ip.restamp(src)
		ip.track(again)
		out.Anomalies = append(out.Anomalies, again...)
	}
	return out
}

func (ip *IntervalPoint) applyBilling(p Policy, row *records.BillingRow, src Source) IntervalOutput {
	var out IntervalOutput
	if ip.ID == "" {
		ip.ID = row.ServicePointID
	}
	if row.Layout != records.LayoutUsage {
		a := &ip.Account
		if !a.Known || row.ActiveDate >= a.ActiveDate {
			moved := !a.Known || a.CustomerID != row.CustomerID || a.PremiseID != row.PremiseID
			*a = IntervalAccount{Known: true, ActiveDate: row.ActiveDate, AccountID: row.AccountID, CustomerID: row.CustomerID,
				PremiseID: row.PremiseID, SecondaryID: row.SecondaryID, ServiceType: row.ServiceType,
				Active: !row.InactiveDate.Valid && !row.IsAccountDeletion}
			// I5 is judged per customer at a premise: a new one learns the
			// history the service point already has.
			if moved && ip.HistoryMonths > 0 {
				if c := ip.find(""); c != nil && len(c.Days) > 0 {
					out.History = &IntervalHistory{ServicePointID: ip.ID, CustomerID: a.CustomerID, PremiseID: a.PremiseID,
						Months: ip.HistoryMonths, Since: c.historyStart(), Source: src}
				}
			}
		}
	}
	if row.Layout == records.LayoutCustomer || row.Duration < 1 {
		return out
	}
	bp := BilledPeriod{DateTo: row.DateTo, Duration: row.Duration, Value: row.UsageValue, Source: src}
	// The newest row for a day wins: a period it overlaps is replaced (U4,
	// U5); the billing stage judges whether that was a valid correction.
	var cleared []BilledPeriod
	ip.Periods = slices.DeleteFunc(ip.Periods, func(o BilledPeriod) bool {
		if o.DateTo >= bp.start() && o.start() <= bp.DateTo {
			if o.Mismatch {
				cleared = append(cleared, o)
			}
			return true
		}
		return false
	})
	for _, o := range cleared {
		a := ip.anomaly(AnomalyBillingMismatch, "I6", o.start(), src, "the billing period was replaced by another row")
		a.Until, a.Cleared = o.DateTo, true
		out.Anomalies = append(out.Anomalies, a)
	}
	i, _ := slices.BinarySearchFunc(ip.Periods, bp.DateTo, func(b BilledPeriod, d dates.Date) int { return int(b.DateTo) - int(d) })
	ip.Periods = slices.Insert(ip.Periods, i, bp)
	if c := ip.find(""); c != nil {
		ip.checkPeriod(p, c, &ip.Periods[i], src, &out)
	}
	return out
}

func (ip *IntervalPoint) find(name string) *Channel {
	for _, c := range ip.Channels {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// checkPeriods runs I6 on the billed periods that contain date.
func (ip *IntervalPoint) checkPeriods(p Policy, c *Channel, date dates.Date, src Source, out *IntervalOutput) {
	if c.Name != "" {
		return
	}
	for i := range ip.Periods {
		bp := &ip.Periods[i]
		if date >= bp.start() && date <= bp.DateTo {
			ip.checkPeriod(p, c, bp, src, out)
		}
	}
}

// checkPeriod compares a billed period with the sum of its intervals, once
// every day of it is complete (I6).
func (ip *IntervalPoint) checkPeriod(p Policy, c *Channel, bp *BilledPeriod, src Source, out *IntervalOutput) {
	sum := 0.0
	for d := bp.start(); d <= bp.DateTo; d++ {
		day := c.find(d)
		if day == nil || day.SumUnknown || day.missing(int(c.Minutes)) > 0 {
			return
		}
		sum += day.Sum
	}
	tol := math.Max(math.Abs(bp.Value)*p.SumTolerancePct/100, p.SumToleranceUnits)
	bad := math.Abs(sum-bp.Value) > tol
	switch {
	case bad && !bp.Mismatch:
		bp.Mismatch = true
		a := ip.anomaly(AnomalyBillingMismatch, "I6", bp.start(), src,
			"the intervals of the billing period %s..%s add up to %.3f %s, the bill says %.3f (tolerance %.3f; billing row %s line %d)",
			bp.start(), bp.DateTo, sum, c.Units, bp.Value, tol, bp.Source.File, bp.Source.Line)
		a.Until = bp.DateTo
		out.Anomalies = append(out.Anomalies, a)
	case !bad && bp.Mismatch:
		bp.Mismatch = false
		a := ip.anomaly(AnomalyBillingMismatch, "I6", bp.start(), src,
			"the intervals of the billing period %s..%s now add up to %.3f, within %.3f of the bill", bp.start(), bp.DateTo, sum, tol)
		a.Until, a.Cleared = bp.DateTo, true
		out.Anomalies = append(out.Anomalies, a)
	}
}

// CheckStale applies I4 when the stale-feed timer fires at atMs.
func (ip *IntervalPoint) CheckStale(ipol IntervalPolicy, atMs int64, src Source) IntervalOutput {
	out := ip.checkStale(ipol, atMs, src)
	ip.track(out.Anomalies)
	return out
}

func (ip *IntervalPoint) checkStale(ipol IntervalPolicy, atMs int64, src Source) IntervalOutput {
	var out IntervalOutput
	active := !ip.Account.Known || ip.Account.Active
	if ip.StaleRaised || !active || ip.LastSeenMs == 0 || atMs < ip.LastSeenMs+ipol.StaleAfter.Milliseconds() {
		return out
	}
	ip.StaleRaised = true
	last := time.UnixMilli(ip.LastSeenMs).UTC()
	out.Anomalies = append(out.Anomalies, ip.anomaly(AnomalyStaleFeed, "I4", dates.FromTime(last), src,
		"no interval data since %s, more than %s ago, on an active service point", last.Format(time.RFC3339), ipol.StaleAfter))
	return out
}

// accountAt is the account a day belongs to: of the accounts billing rows
// named, the one with the latest active date on or before day; none before
// the first.
func (ip *IntervalPoint) accountAt(day dates.Date) IntervalAccount {
	var a IntervalAccount
	for _, x := range ip.Accounts {
		if x.ActiveDate > day {
			break
		}
		a = x
	}
	return a
}

// noteAccount records what a billing row says of its account in Accounts
// and reports whether that changed them.
func (ip *IntervalPoint) noteAccount(row *records.BillingRow) bool {
	n := IntervalAccount{Known: true, ActiveDate: row.ActiveDate, AccountID: row.AccountID, CustomerID: row.CustomerID,
		PremiseID: row.PremiseID, SecondaryID: row.SecondaryID, ServiceType: row.ServiceType,
		Active: !row.InactiveDate.Valid && !row.IsAccountDeletion}
	i := slices.IndexFunc(ip.Accounts, func(a IntervalAccount) bool { return a.AccountID == n.AccountID })
	if i >= 0 {
		if ip.Accounts[i] == n {
			return false
		}
		ip.Accounts = slices.Delete(ip.Accounts, i, i+1)
	}
	j, _ := slices.BinarySearchFunc(ip.Accounts, n, compareAccounts)
	ip.Accounts = slices.Insert(ip.Accounts, j, n)
	return true
}

func compareAccounts(a, b IntervalAccount) int {
	if a.ActiveDate != b.ActiveDate {
		return int(a.ActiveDate - b.ActiveDate)
	}
	return strings.Compare(a.AccountID, b.AccountID)
}

// restamp reports again, stamped anew and citing src, each raised anomaly
// whose day now belongs to another account.
func (ip *IntervalPoint) restamp(src Source) []Anomaly {
	var out []Anomaly
	for _, r := range ip.Raised {
		a := ip.accountAt(r.Date)
		if a.AccountID == r.AccountID && a.CustomerID == r.CustomerID && a.PremiseID == r.PremiseID && a.SecondaryID == r.SecondaryID {
			continue
		}
		out = append(out, Anomaly{ServicePointID: ip.ID, Code: r.Code, Rule: r.Rule, Message: r.Message, EffectiveDate: r.Date,
			Until: r.Until, AccountID: a.AccountID, CustomerID: a.CustomerID, PremiseID: a.PremiseID, SecondaryID: a.SecondaryID,
			Source: src})
	}
	return out
}

// track keeps Raised in step with the anomalies just reported: a cleared
// one is forgotten, any other (re)placed under its code, rule and date.
func (ip *IntervalPoint) track(as []Anomaly) {
	for _, a := range as {
		i := slices.IndexFunc(ip.Raised, func(r RaisedAnomaly) bool {
			return r.Code == a.Code && r.Rule == a.Rule && r.Date == a.EffectiveDate
		})
		if a.Cleared {
			if i >= 0 {
				ip.Raised = slices.Delete(ip.Raised, i, i+1)
			}
			continue
		}
		r := RaisedAnomaly{Code: a.Code, Rule: a.Rule, Date: a.EffectiveDate, Until: a.Until, Message: a.Message, Source: a.Source,
			AccountID: a.AccountID, CustomerID: a.CustomerID, PremiseID: a.PremiseID, SecondaryID: a.SecondaryID}
		if i >= 0 {
			ip.Raised[i] = r
		} else {
			ip.Raised = append(ip.Raised, r)
		}
	}
}

// Coverage is how many intervals of the day are present and how many are
// missing for a channel of the given length (the query API shows it).
func (d *Day) Coverage(minutes int) (present, missing int) { return d.count(), d.missing(minutes) }
