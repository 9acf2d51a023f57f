// Package interval reads interval (AMI) data (docs/data-contract.md §3): Opower
// interval files (`..._interval<mm>_...`, plain, gzip or zip) into typed reads
// or rejected rows, and checks reads that adapters send by other ways, so that
// a read is the same record whichever way it came in.
//
// A read keeps both what was sent (local date, local end time, UTC offset) and
// the UTC instant derived from them, so that the repeated hour at the end of
// daylight saving time stays two distinct intervals and the missing hour at
// its start is simply absent.
package interval

import (
	"fmt"
	"strings"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/interval/readrules"
)

// Reject codes that only interval data has; the others (FIELD_COUNT,
// REQUIRED, BAD_DATE, BAD_NUMBER, ...) are billing's, with the same meaning.
const (
	CodeBadTime          = "BAD_TIME"           // not HHmm, or not a time of day
	CodeOffGrid          = "OFF_GRID"           // I1: not on the file's interval grid (a different length)
	CodeBadUnits         = "BAD_UNITS"          // not on the configured units list
	CodeBadOffset        = "BAD_OFFSET"         // UTC_offset not ±HHMM within -1200..+1400
	CodeMissingUTCOffset = "MISSING_UTC_OFFSET" // empty UTC_offset on a daylight-saving change day
	CodeBadLength        = "BAD_LENGTH"         // an adapter's interval length is not 5, 15, 30, 60 or 1440
)

// Rule ids cited in reasons.
const (
	RuleColumns = "DC-3" // docs/data-contract.md §3, interval columns
	RuleI1      = "I1"   // one length per file, on its grid
)

// DefaultUnits is the units list used when Options.Units is nil
// (docs/data-contract.md §3 decision: configurable). It is never modified.
var DefaultUnits = []string{"KWH", "WH", "MWH", "KVARH", "THERM", "CCF", "HCF", "CF", "M3", "GAL"}

// Lengths are the only interval lengths, in minutes (docs/data-contract.md §3).
var Lengths = [...]int{5, 15, 30, 60, 1440}

// ValidLength says whether minutes is one of Lengths.
func ValidLength(minutes int) bool {
	for _, l := range Lengths {
		if l == minutes {
			return true
		}
	}
	return false
}

// Read is one interval read, accepted.
type Read struct {
	ServicePointID string
	Channel        string // service_quantity_identifier; "" is the main channel
	ServiceType    string // "" when not given
	// EndMillis is the end of the interval, Unix milliseconds (UTC).
	EndMillis int64
	// LocalDate and LocalTime (minutes after midnight, 0..1439) are the end
	// of the interval as sent; OffsetMinutes is the local time's offset from
	// UTC (east positive: -0500 is -300).
	LocalDate     dates.Date
	LocalTime     int16
	OffsetMinutes int16
	OffsetGiven   bool // false: the offset came from the configured time zone
	Minutes       int16
	Value         float64
	Units         string // upper case
	Estimate      billing.Estimate
	Line          int64 // file or NDJSON line; 0 when there is none
}

// StartDate is the local date the interval starts on: an interval ending at
// 0000 belongs to the day before. The interval processor files coverage by it,
// so that days match billing periods, which are local calendar days.
func (r *Read) StartDate() dates.Date {
	if r.LocalTime == 0 {
		return r.LocalDate.AddDays(-1)
	}
	return r.LocalDate
}

// StartLocalMinute is the local clock minute the interval starts at, within
// StartDate (0..1439).
func (r *Read) StartLocalMinute() int {
	end := int(r.LocalTime)
	if end == 0 {
		end = 1440
	}
	return end - int(r.Minutes)
}

// endMillis derives the UTC instant from the local date, time and offset.
func endMillis(d dates.Date, localMin, offsetMin int) int64 {
	return (int64(d)*1440 + int64(localMin) - int64(offsetMin)) * 60_000
}

// Check holds the settings that decide whether a read is acceptable; the
// file reader, the adapter client and the NDJSON endpoint share it.
type Check struct {
	Units        []string // nil = DefaultUnits; compared case-insensitively
	ServiceTypes []string // nil = billing.DefaultServiceTypes
	// Dates is the plausible date window (readrules.Window; zero: 1990-01-01
	// .. today + 366 days).
	Dates readrules.Window
}

// checker is a Check made ready for the hot path: canonical upper-case
// strings, so an accepted read's Units and ServiceType share them instead of
// allocating per row.
type checker struct {
	units        []string
	serviceTypes []string
	dates        readrules.Window
}

func (c Check) compile() (checker, error) {
	k := checker{dates: c.Dates}
	units := c.Units
	if units == nil {
		units = DefaultUnits
	}
	for _, u := range units {
		if u = strings.ToUpper(strings.TrimSpace(u)); u != "" {
			k.units = append(k.units, u)
		}
	}
	if len(k.units) == 0 {
		return k, fmt.Errorf("the units list has no usable code; give nil for %s or list the allowed units", strings.Join(DefaultUnits, ", "))
	}
	types := c.ServiceTypes
	if types == nil {
		types = billing.DefaultServiceTypes
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

// Validator checks reads that arrive without a file (adapters, the NDJSON
// endpoint) by the same rules as file rows.
type Validator struct{ k checker }

// NewValidator compiles c.
func NewValidator(c Check) (*Validator, error) {
	k, err := c.compile()
	if err != nil {
		return nil, err
	}
	return &Validator{k: k}, nil
}

// Validate checks r and canonicalises its units and service type in place.
// It returns every problem found (nil when r is acceptable); each reason names
// its field.
func (v *Validator) Validate(r *Read) []billing.Reason {
	var rs []billing.Reason
	add := func(field, code, rule, format string, args ...any) {
		rs = append(rs, billing.Reason{Field: field, Code: code, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(r.ServicePointID) == "" {
		add("service_point_id", billing.CodeRequired, RuleColumns, "service_point_id is empty; it is required, so fill it in")
	}
	if !ValidLength(int(r.Minutes)) {
		add("minutes", CodeBadLength, RuleI1, "interval length %d minutes is not one of 5, 15, 30, 60, 1440", r.Minutes)
	}
	if r.LocalTime < 0 || r.LocalTime >= 1440 {
		add("time", CodeBadTime, RuleColumns, "local time %d minutes is not a time of day", r.LocalTime)
	} else if ValidLength(int(r.Minutes)) && !onGrid(int(r.LocalTime), int(r.Minutes)) {
		add("time", CodeOffGrid, RuleI1, "interval end %s is not on the %d-minute grid; intervals end on multiples of their length (I1)", hhmm(int(r.LocalTime)), r.Minutes)
	}
	if r.OffsetMinutes < -12*60 || r.OffsetMinutes > 14*60 || r.OffsetMinutes%15 != 0 {
		add("UTC_offset", CodeBadOffset, RuleColumns, "UTC offset %d minutes is not a real offset (-1200..+1400 in quarter hours)", r.OffsetMinutes)
	}
	if u, ok := canonical(v.k.units, r.Units); ok {
		r.Units = u
	} else {
		add("units", CodeBadUnits, RuleColumns, "units %q is not one of the allowed units %s", clip(r.Units), strings.Join(v.k.units, ", "))
	}
	if r.ServiceType != "" {
		if t, ok := canonical(v.k.serviceTypes, r.ServiceType); ok {
			r.ServiceType = t
		} else {
			add("service_type", billing.CodeBadServiceType, RuleColumns, "service_type %q is not one of the allowed codes %s", clip(r.ServiceType), strings.Join(v.k.serviceTypes, ", "))
		}
	}
	switch r.Estimate {
	case 0:
		r.Estimate = billing.EstimateEstimated
	case billing.EstimateActual, billing.EstimateEstimated, billing.EstimateUser:
	default:
		add("is_estimate", billing.CodeBadEstimate, RuleColumns, "is_estimate must be A, E or U (or empty for E)")
	}
	if r.Value != r.Value || r.Value > maxValue || r.Value < -maxValue {
		add("usage_value", billing.CodeOutOfRange, RuleColumns, "usage_value is not a number within ±%d", maxValue)
	}
	for _, vi := range readrules.Check(readrules.Fields{ServicePointID: r.ServicePointID, Channel: r.Channel, Date: r.LocalDate, HasDate: true}, v.k.dates.Bounds()) {
		add(vi.Field, vi.Code, RuleColumns, "%s", vi.Message)
	}
	if len(rs) == 0 {
		r.EndMillis = endMillis(r.LocalDate, int(r.LocalTime), int(r.OffsetMinutes))
	}
	return rs
}

const maxValue = 999999999

func onGrid(localMin, length int) bool {
	if length == 1440 {
		return localMin == 0
	}
	return localMin%length == 0
}

func hhmm(min int) string { return fmt.Sprintf("%02d%02d", min/60, min%60) }

// clip keeps messages short when a value is absurdly long.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}
