package records

import "github.com/usagestream/usagestream/internal/dates"

// intervalLengths are the only interval lengths, in minutes (docs/data-contract.md §3).
var intervalLengths = [...]int{5, 15, 30, 60, 1440}

// ValidIntervalLength says whether minutes is one of the interval lengths of docs/data-contract.md §3.
func ValidIntervalLength(minutes int) bool {
	for _, l := range intervalLengths {
		if l == minutes {
			return true
		}
	}
	return false
}

// IntervalRead is one interval read, accepted.
//
// A read keeps both what was sent (local date, local end time, UTC offset)
// and the UTC instant derived from them, so that the repeated hour at the end
// of daylight saving time stays two distinct intervals and the missing hour
// at its start is simply absent.
type IntervalRead struct {
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
	Estimate      Estimate
	Line          int64 // file or NDJSON line; 0 when there is none
}

// StartDate is the local date the interval starts on: an interval ending at
// 0000 belongs to the day before. The interval processor files coverage by it,
// so that days match billing periods, which are local calendar days.
func (r *IntervalRead) StartDate() dates.Date {
	if r.LocalTime == 0 {
		return r.LocalDate.AddDays(-1)
	}
	return r.LocalDate
}

// StartLocalMinute is the local clock minute the interval starts at, within
// StartDate (0..1439).
func (r *IntervalRead) StartLocalMinute() int {
	end := int(r.LocalTime)
	if end == 0 {
		end = 1440
	}
	return end - int(r.Minutes)
}
