// Package interval reads interval (AMI) data (docs/data-contract.md §3): Opower
// interval files (`..._interval<mm>_...`, plain, gzip or zip) into typed reads
// or rejected rows, and holds the one contract every read obeys, whichever
// way it comes in (a file, the Go SDK producers/adapter, POST /v1/intervals,
// or a record produced straight to intervals.v1 by an adapter in another
// language, which the interval stage checks): so that a read is the same
// record (records.IntervalRead), refused for the same reasons, on every path.
package interval

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/ellipsis"
	"github.com/usagestream/usagestream/producers/interval/readrules"
	"github.com/usagestream/usagestream/records"
)

// DefaultUnits returns the units list used when Options.Units is nil
// (docs/data-contract.md §3 decision: configurable), a fresh copy.
func DefaultUnits() []string {
	return []string{"KWH", "WH", "MWH", "KVARH", "THERM", "CCF", "HCF", "CF", "M3", "GAL"}
}

// Field names of the contract's reasons that are no file column: the
// length of an interval sent without a file, and its UTC end instant.
const (
	FieldMinutes     = "minutes"
	FieldIntervalEnd = "interval_end"
)

// endMillis derives the UTC instant from the local date, time and offset.
func endMillis(d dates.Date, localMin, offsetMin int) int64 {
	return (int64(d)*1440 + int64(localMin) - int64(offsetMin)) * 60_000
}

// Check holds the settings that decide whether a read is acceptable; the
// file reader, the adapter client, the NDJSON endpoint and the interval
// stage share it.
type Check struct {
	Units        []string // nil = DefaultUnits; compared case-insensitively
	ServiceTypes []string // nil = records.DefaultServiceTypes()
	// Dates is the plausible date window (readrules.Window; zero: 1990-01-01
	// .. today + 366 days).
	Dates readrules.Window
	// Location is the utility's time zone: a read given by its UTC end
	// instant alone gets its local date, time and offset from it, and a
	// file row without UTC_offset its offset. nil is UTC.
	Location *time.Location
}

// checker is a Check made ready for the hot path: canonical upper-case
// strings, so an accepted read's Units and ServiceType share them instead of
// allocating per row.
type checker struct {
	units        []string
	serviceTypes []string
	dates        readrules.Window
	loc          *time.Location
}

func (c Check) compile() (checker, error) {
	k := checker{dates: c.Dates, loc: c.Location}
	if k.loc == nil {
		k.loc = time.UTC
	}
	units := c.Units
	if units == nil {
		units = DefaultUnits()
	}
	for _, u := range units {
		if u = strings.ToUpper(strings.TrimSpace(u)); u != "" {
			k.units = append(k.units, u)
		}
	}
	if len(k.units) == 0 {
		return k, fmt.Errorf("the units list has no usable code; give nil for %s or list the allowed units", strings.Join(DefaultUnits(), ", "))
	}
	types := c.ServiceTypes
	if types == nil {
		types = records.DefaultServiceTypes()
	}
	for _, t := range types {
		if t = strings.ToUpper(strings.TrimSpace(t)); t != "" {
			k.serviceTypes = append(k.serviceTypes, t)
		}
	}
	if len(k.serviceTypes) == 0 {
		return k, fmt.Errorf("the service type list has no usable code; give nil for E, G, W or list the allowed codes")
	}
	return k, nil
}

func canonical(list []string, v string) (string, bool) {
	for _, c := range list {
		if strings.EqualFold(v, c) {
			return c, true
		}
	}
	return "", false
}

// Fields a parser already reported (a column it could not read), which the
// contract then leaves alone: one reason per fault.
type fieldSet uint16

const (
	badServicePoint fieldSet = 1 << iota
	badValue
	badDate
	badTime
	badUnits
	badEstimate
	badOffset
	badServiceType
	badChannel
)

// timeMode says how the contract treats a read's time fields.
type timeMode uint8

const (
	// incoming: a read on its way in. Its time is its UTC end instant
	// (EndMillis), its local date, time and offset, or both; whatever is
	// missing is derived (from the utility's zone when no offset is given),
	// and what is given twice must agree.
	incoming timeMode = iota
	// stored: a record on intervals.v1. Every time field is there and
	// nothing is derived: they must agree as they stand.
	stored
)

// zoneFunc returns the utility zone's offset on a local date and whether it
// changes that day; the file reader caches it per date.
type zoneFunc func(dates.Date) dayZone

type dayZone struct {
	offset int16 // minutes east of UTC at noon
	change bool  // the zone changes its offset on this date
}

// zoneOn computes loc's offset on date d and whether it changes that day.
func zoneOn(loc *time.Location, d dates.Date) dayZone {
	y, m, day := d.Civil()
	start := time.Date(y, m, day, 0, 0, 0, 0, loc)
	end := time.Date(y, m, day+1, 0, 0, 0, 0, loc)
	_, o0 := start.Zone()
	_, o1 := end.Zone()
	_, on := time.Date(y, m, day, 12, 0, 0, 0, loc).Zone()
	return dayZone{offset: int16(on / 60), change: o0 != o1 || end.Sub(start) != 24*time.Hour}
}

// check is the contract of a read: the one implementation every way in
// calls. It appends a reason per fault to rs, each naming its field (a
// data-contract column, or minutes / interval_end), skipping the fields in
// bad (already reported by a parser). hasLocal says whether the local date
// and time were given. On an acceptable read of mode incoming it fills what
// was derived (EndMillis, or the local fields) and canonicalises the units,
// service type and estimate flag in place.
func (k *checker) check(r *records.IntervalRead, bad fieldSet, hasLocal bool, mode timeMode, b readrules.Bounds, zone zoneFunc, rs *[]records.Reason) {
	n0 := len(*rs)
	if bad&badServicePoint == 0 && strings.TrimSpace(r.ServicePointID) == "" {
		add(rs, readrules.FieldServicePoint, records.CodeRequired, records.RuleIntervalColumns, "service_point_id is empty; it is required, so fill it in")
	}
	lengthOK := records.ValidIntervalLength(int(r.Minutes))
	if !lengthOK {
		add(rs, FieldMinutes, records.CodeBadLength, records.RuleI1, fmt.Sprintf("interval length %d minutes is not one of 5, 15, 30, 60, 1440", r.Minutes))
	}
	timeOK := k.checkTime(r, bad, hasLocal, mode, zone, rs)
	if timeOK && lengthOK && !onGrid(int(r.LocalTime), int(r.Minutes)) {
		add(rs, records.IntervalColumn(cTime), records.CodeOffGrid, records.RuleI1, fmt.Sprintf("interval end %s is not on the %d-minute grid; intervals end on multiples of their length (I1), so a read of another length goes with its own length (in a file of its own)", hhmm(int(r.LocalTime)), r.Minutes))
	}
	if bad&badUnits == 0 {
		if u, ok := canonical(k.units, r.Units); ok {
			r.Units = u
		} else if strings.TrimSpace(r.Units) == "" {
			add(rs, records.IntervalColumn(cUnits), records.CodeRequired, records.RuleIntervalColumns, "units is empty; it is required, so fill it in")
		} else {
			add(rs, records.IntervalColumn(cUnits), records.CodeBadUnits, records.RuleIntervalColumns, fmt.Sprintf("units %q is not one of the allowed units %s", clip(r.Units), strings.Join(k.units, ", ")))
		}
	}
	if bad&badServiceType == 0 && r.ServiceType != "" {
		if t, ok := canonical(k.serviceTypes, r.ServiceType); ok {
			r.ServiceType = t
		} else {
			add(rs, records.IntervalColumn(cServiceType), records.CodeBadServiceType, records.RuleIntervalColumns, fmt.Sprintf("service_type %q is not one of the allowed codes %s", clip(r.ServiceType), strings.Join(k.serviceTypes, ", ")))
		}
	}
	if bad&badEstimate == 0 {
		switch r.Estimate {
		case 0:
			if mode == incoming {
				r.Estimate = records.EstimateEstimated
			} else {
				add(rs, records.IntervalColumn(cEstimate), records.CodeBadEstimate, records.RuleIntervalColumns, "is_estimate is empty; a stored read says A, E or U")
			}
		case records.EstimateActual, records.EstimateEstimated, records.EstimateUser:
		default:
			add(rs, records.IntervalColumn(cEstimate), records.CodeBadEstimate, records.RuleIntervalColumns, "is_estimate must be A, E or U (or empty for E)")
		}
	}
	if bad&badValue == 0 && (math.IsNaN(r.Value) || r.Value > maxValue || r.Value < -maxValue) {
		add(rs, records.IntervalColumn(cValue), records.CodeOutOfRange, records.RuleIntervalColumns, fmt.Sprintf("usage_value %v is not a number within ±%d", r.Value, maxValue))
	}
	// The date window applies to a date that was read, even when the rest
	// of the time is wrong.
	dateKnown := timeOK || (hasLocal && bad&badDate == 0)
	f := readrules.Fields{ServicePointID: r.ServicePointID, Channel: r.Channel, Date: r.LocalDate, HasDate: dateKnown}
	if bad&badServicePoint != 0 {
		f.ServicePointID = ""
	}
	if bad&badChannel != 0 {
		f.Channel = ""
	}
	for _, vi := range readrules.Check(f, b) {
		add(rs, vi.Field, vi.Code, records.RuleIntervalColumns, vi.Message)
	}
	if len(*rs) > n0 && mode == incoming && !hasLocal {
		// A refused read keeps no derived local fields: they were not sent.
		r.LocalDate, r.LocalTime, r.OffsetMinutes = 0, 0, 0
	}
}

// checkTime applies the one notion of a read's time (docs/intervals.md,
// "A read's time"): the UTC end instant, with the local date, time and
// offset either derived from the utility's zone or given and agreeing with
// it. It reports whether the read's time is known and sound.
func (k *checker) checkTime(r *records.IntervalRead, bad fieldSet, hasLocal bool, mode timeMode, zone zoneFunc, rs *[]records.Reason) bool {
	if bad&(badDate|badTime|badOffset) != 0 {
		return false
	}
	hasEnd := r.EndMillis != 0
	if hasEnd && r.EndMillis%60_000 != 0 {
		add(rs, FieldIntervalEnd, records.CodeBadTime, records.RuleIntervalColumns, fmt.Sprintf("interval_end %s is not on a whole minute; intervals end on their grid", time.UnixMilli(r.EndMillis).UTC().Format(time.RFC3339Nano)))
		return false
	}
	if hasLocal && (r.LocalTime < 0 || r.LocalTime >= 1440) {
		add(rs, records.IntervalColumn(cTime), records.CodeBadTime, records.RuleIntervalColumns, fmt.Sprintf("local time %d minutes after midnight is not a time of day (0..1439)", r.LocalTime))
		return false
	}
	if (hasLocal || mode == stored) && !validOffset(int(r.OffsetMinutes)) {
		add(rs, records.IntervalColumn(cOffset), records.CodeBadOffset, records.RuleIntervalColumns, fmt.Sprintf("UTC offset %d minutes is not a real offset (-1200..+1400 in quarter hours)", r.OffsetMinutes))
		return false
	}
	switch {
	case mode == stored && (!hasEnd || !hasLocal):
		add(rs, FieldIntervalEnd, records.CodeRequired, records.RuleIntervalColumns, "a record on intervals.v1 carries both interval_end (UTC) and local_date, local_time and utc_offset_minutes; one is missing (zero)")
		return false
	case !hasEnd && !hasLocal:
		add(rs, FieldIntervalEnd, records.CodeRequired, records.RuleIntervalColumns, "the read has no time: give its UTC end instant, or its local date and time (with the UTC offset, or the utility's zone supplies it)")
		return false
	case !hasLocal: // the instant alone: local fields from the utility's zone
		t := time.UnixMilli(r.EndMillis).In(k.loc)
		_, off := t.Zone()
		if off%60 != 0 || !validOffset(off/60) {
			add(rs, FieldIntervalEnd, records.CodeBadOffset, records.RuleIntervalColumns, fmt.Sprintf("the zone %s has offset %ds at %s, not a real UTC offset in quarter hours", k.loc, off, t.Format(time.RFC3339)))
			return false
		}
		r.LocalDate = dates.FromCivil(t.Date())
		r.LocalTime = int16(t.Hour()*60 + t.Minute())
		r.OffsetMinutes, r.OffsetGiven = int16(off/60), false
		return true
	case mode == stored || r.OffsetGiven:
		derived := endMillis(r.LocalDate, int(r.LocalTime), int(r.OffsetMinutes))
		if hasEnd && derived != r.EndMillis {
			add(rs, FieldIntervalEnd, records.CodeInconsistentTime, records.RuleIntervalColumns, fmt.Sprintf("interval_end %s is not the local end %s %s at offset %s (that is %s); send one, or both agreeing",
				time.UnixMilli(r.EndMillis).UTC().Format(time.RFC3339), r.LocalDate.ISO(), hhmm(int(r.LocalTime)), offsetText(int(r.OffsetMinutes)), time.UnixMilli(derived).UTC().Format(time.RFC3339)))
			return false
		}
		r.EndMillis = derived
		return true
	case hasEnd: // local date and time and the instant, no offset: the zone's clock at that instant must show that local time
		t := time.UnixMilli(r.EndMillis).In(k.loc)
		_, off := t.Zone()
		if dates.FromCivil(t.Date()) != r.LocalDate || int16(t.Hour()*60+t.Minute()) != r.LocalTime {
			add(rs, FieldIntervalEnd, records.CodeInconsistentTime, records.RuleIntervalColumns, fmt.Sprintf("interval_end %s is %s %s in %s, not the local end %s %s given; send one, or both agreeing",
				time.UnixMilli(r.EndMillis).UTC().Format(time.RFC3339), dates.FromCivil(t.Date()).ISO(), hhmm(t.Hour()*60+t.Minute()), k.loc, r.LocalDate.ISO(), hhmm(int(r.LocalTime))))
			return false
		}
		r.OffsetMinutes = int16(off / 60)
		return true
	default: // local date and time without an offset: the zone's, unless it changes that day
		if zone == nil {
			zone = func(d dates.Date) dayZone { return zoneOn(k.loc, d) }
		}
		z := zone(r.LocalDate)
		if z.change {
			add(rs, records.IntervalColumn(cOffset), records.CodeMissingUTCOffset, records.RuleIntervalColumns, fmt.Sprintf("UTC_offset is empty on %s, a day when %s changes between daylight saving and standard time; the local time alone is ambiguous there, so send UTC_offset", r.LocalDate.ISO(), k.loc))
			return false
		}
		r.OffsetMinutes = z.offset
		r.EndMillis = endMillis(r.LocalDate, int(r.LocalTime), int(z.offset))
		return true
	}
}

func validOffset(o int) bool { return o >= -12*60 && o <= 14*60 && o%15 == 0 }

func offsetText(o int) string {
	sign := '+'
	if o < 0 {
		sign, o = '-', -o
	}
	return fmt.Sprintf("%c%02d%02d", sign, o/60, o%60)
}

// Validator checks reads that arrive without a file (the Go SDK, the NDJSON
// endpoint) and records read from intervals.v1 by the same contract as file
// rows. Safe for concurrent use.
type Validator struct{ k checker }

// NewValidator compiles c.
func NewValidator(c Check) (*Validator, error) {
	k, err := c.compile()
	if err != nil {
		return nil, err
	}
	return &Validator{k: k}, nil
}

// Validate checks a read on its way in and completes it in place: the
// local date, time and offset from the utility's zone when only EndMillis
// is given (LocalDate 0, 1970-01-01, before any plausible window, means
// "not given"), EndMillis from the local fields when it is 0, and both
// must agree when both are given; units and service type canonical, an
// empty estimate flag E. It returns every fault (nil when r is acceptable),
// each naming its field.
func (v *Validator) Validate(r *records.IntervalRead) []records.Reason {
	var rs []records.Reason
	v.k.check(r, 0, r.LocalDate != 0, incoming, v.k.dates.Bounds(), nil, &rs)
	return rs
}

// CheckStored checks a record read from intervals.v1 (written by any
// producer, such as an adapter in another language) without changing it:
// every time field present and agreeing, and the rest of the contract. The
// interval stage quarantines a record it refuses.
func (v *Validator) CheckStored(r *records.IntervalRead) []records.Reason {
	var rs []records.Reason
	c := *r // checked, never changed: the stage keeps what was written
	v.k.check(&c, 0, c.LocalDate != 0, stored, v.k.dates.Bounds(), nil, &rs)
	return rs
}

const maxValue = 999999999

// add appends one reason: a function, not a closure, so that the row
// path allocates nothing for a good row.
func add(rs *[]records.Reason, field, code, rule, msg string) {
	*rs = append(*rs, records.Reason{Field: field, Code: code, Rule: rule, Message: msg})
}

func onGrid(localMin, length int) bool {
	if length == 1440 {
		return localMin == 0
	}
	return localMin%length == 0
}

func hhmm(min int) string { return fmt.Sprintf("%02d%02d", min/60, min%60) }

// clip keeps messages short when a value is absurdly long.
func clip(s string) string { return ellipsis.Clip(s, 40) }
