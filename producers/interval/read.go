// Package interval reads interval (AMI) data (docs/data-contract.md §3): Opower
// interval files (`..._interval<mm>_...`, plain, gzip or zip) into typed reads
// or rejected rows, and checks reads that adapters send by other ways, so that
// a read is the same record (records.IntervalRead) whichever way it came in.
package interval

import (
	"fmt"
	"strings"

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

// endMillis derives the UTC instant from the local date, time and offset.
func endMillis(d dates.Date, localMin, offsetMin int) int64 {
	return (int64(d)*1440 + int64(localMin) - int64(offsetMin)) * 60_000
}

// Check holds the settings that decide whether a read is acceptable; the
// file reader, the adapter client and the NDJSON endpoint share it.
type Check struct {
	Units        []string // nil = DefaultUnits; compared case-insensitively
	ServiceTypes []string // nil = records.DefaultServiceTypes()
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
func (v *Validator) Validate(r *records.IntervalRead) []records.Reason {
	var rs []records.Reason
	add := func(field, code, rule, format string, args ...any) {
		rs = append(rs, records.Reason{Field: field, Code: code, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(r.ServicePointID) == "" {
		add("service_point_id", records.CodeRequired, records.RuleIntervalColumns, "service_point_id is empty; it is required, so fill it in")
	}
	if !records.ValidIntervalLength(int(r.Minutes)) {
		add("minutes", records.CodeBadLength, records.RuleI1, "interval length %d minutes is not one of 5, 15, 30, 60, 1440", r.Minutes)
	}
	if r.LocalTime < 0 || r.LocalTime >= 1440 {
		add("time", records.CodeBadTime, records.RuleIntervalColumns, "local time %d minutes is not a time of day", r.LocalTime)
	} else if records.ValidIntervalLength(int(r.Minutes)) && !onGrid(int(r.LocalTime), int(r.Minutes)) {
		add("time", records.CodeOffGrid, records.RuleI1, "interval end %s is not on the %d-minute grid; intervals end on multiples of their length (I1)", hhmm(int(r.LocalTime)), r.Minutes)
	}
	if r.OffsetMinutes < -12*60 || r.OffsetMinutes > 14*60 || r.OffsetMinutes%15 != 0 {
		add("UTC_offset", records.CodeBadOffset, records.RuleIntervalColumns, "UTC offset %d minutes is not a real offset (-1200..+1400 in quarter hours)", r.OffsetMinutes)
	}
	if u, ok := canonical(v.k.units, r.Units); ok {
		r.Units = u
	} else {
		add("units", records.CodeBadUnits, records.RuleIntervalColumns, "units %q is not one of the allowed units %s", clip(r.Units), strings.Join(v.k.units, ", "))
	}
	if r.ServiceType != "" {
		if t, ok := canonical(v.k.serviceTypes, r.ServiceType); ok {
			r.ServiceType = t
		} else {
			add("service_type", records.CodeBadServiceType, records.RuleIntervalColumns, "service_type %q is not one of the allowed codes %s", clip(r.ServiceType), strings.Join(v.k.serviceTypes, ", "))
		}
	}
	switch r.Estimate {
	case 0:
		r.Estimate = records.EstimateEstimated
	case records.EstimateActual, records.EstimateEstimated, records.EstimateUser:
	default:
		add("is_estimate", records.CodeBadEstimate, records.RuleIntervalColumns, "is_estimate must be A, E or U (or empty for E)")
	}
	if r.Value != r.Value || r.Value > maxValue || r.Value < -maxValue {
		add("usage_value", records.CodeOutOfRange, records.RuleIntervalColumns, "usage_value is not a number within ±%d", maxValue)
	}
	for _, vi := range readrules.Check(readrules.Fields{ServicePointID: r.ServicePointID, Channel: r.Channel, Date: r.LocalDate, HasDate: true}, v.k.dates.Bounds()) {
		add(vi.Field, vi.Code, records.RuleIntervalColumns, "%s", vi.Message)
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
func clip(s string) string { return ellipsis.Clip(s, 40) }
