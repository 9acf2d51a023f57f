// Package readrules is the one set of rules an interval read's identity must
// pass, whichever way it comes in: the contract of producers/interval calls
// it for interval files, the Go SDK (producers/adapter), the NDJSON
// endpoint (producers/httpin) and the interval stage alike. It sits below
// them, and below the query API, so that a read accepted anywhere can be
// looked up (processors/query refuses ids longer than MaxIDBytes with the
// same constant).
//
// It depends on nothing but the calendar type and the record types (its
// reject codes are records.Code*: CodeInvalidUTF8, CodeControlChar,
// CodeTooLong, CodeDateOutOfWindow).
package readrules

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/ellipsis"
	"github.com/usagestream/usagestream/records"
)

// MaxIDBytes bounds an id or channel: ids are file columns, far shorter
// than this, and the query API cannot look up a longer one.
const MaxIDBytes = 256

// Field names of the violations: the data-contract column names, which the
// file reader, the adapter and the endpoint all report.
const (
	FieldServicePoint = "service_point_id"
	FieldChannel      = "service_quantity_identifier"
	FieldDate         = "date"
)

// DefaultEarliest is the earliest plausible interval date: AMI interval data
// does not go back further, and a year 0001 typo would otherwise open a gap
// of millions of days in a service point's coverage.
var DefaultEarliest = dates.FromCivil(1990, time.January, 1)

// DefaultDaysAhead is how far past today a read may end: clocks and time
// zones skew by hours, not years; 9999-12-31 is a placeholder, not a read.
const DefaultDaysAhead = 366

// Window configures the plausible dates of a read. The zero Window is the
// default: DefaultEarliest .. today + DefaultDaysAhead.
type Window struct {
	Earliest  dates.Date       // 0 (1970-01-01): DefaultEarliest
	DaysAhead int              // 0: DefaultDaysAhead
	Now       func() time.Time // nil: time.Now
}

// Bounds are a Window fixed at one moment: the first and last date allowed.
type Bounds struct{ First, Last dates.Date }

// Bounds fixes w at its clock's now. A file reader fixes it once per file; a
// long-running client fixes it per read, so that its window moves with time.
func (w Window) Bounds() Bounds {
	first := w.Earliest
	if first == 0 {
		first = DefaultEarliest
	}
	ahead := w.DaysAhead
	if ahead <= 0 {
		ahead = DefaultDaysAhead
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	return Bounds{First: first, Last: dates.FromCivil(now().UTC().Date()).AddDays(ahead)}
}

// Violation is one broken rule, naming its field (a data-contract column).
type Violation struct {
	Field   string
	Code    string
	Message string
}

func (v Violation) Error() string { return v.Field + " " + v.Code + ": " + v.Message }

// Fields are the parts of a read the rules look at. HasDate is false when
// the date could not be parsed at all (that is reported by the parser).
type Fields struct {
	ServicePointID string
	Channel        string
	Date           dates.Date
	HasDate        bool
}

// Check is the one check of a read's identity: service point id and channel
// are UTF-8 without U+FFFD, have no control characters and are at most
// MaxIDBytes long; the date lies within b. It returns every violation (nil
// when none). Empty ids are not its business: a required field is reported
// as REQUIRED by each way in.
func Check(f Fields, b Bounds) []Violation {
	var vs []Violation
	if v, bad := id(FieldServicePoint, f.ServicePointID); bad {
		vs = append(vs, v)
	}
	if v, bad := id(FieldChannel, f.Channel); bad {
		vs = append(vs, v)
	}
	if f.HasDate && (f.Date < b.First || f.Date > b.Last) {
		vs = append(vs, DateViolation(f.Date.ISO(), b))
	}
	return vs
}

// DateViolation is the violation of a date outside b, for a parser that
// cannot even represent the date (year 0000 in a file) but must reject it as
// Check would.
func DateViolation(date string, b Bounds) Violation {
	return Violation{Field: FieldDate, Code: records.CodeDateOutOfWindow,
		Message: fmt.Sprintf("date %s is outside the plausible window %s .. %s; check the year (the window is configurable)", clip(date), b.First.ISO(), b.Last.ISO())}
}

// CheckID is the id rule alone (UTF-8, no control characters, length), for
// ids that are not a read's: the query API's path ids. nil when v passes.
func CheckID(field, v string) error {
	if vi, bad := id(field, v); bad {
		return vi
	}
	return nil
}

func id(field, v string) (Violation, bool) {
	switch {
	case !utf8.ValidString(v) || strings.ContainsRune(v, utf8.RuneError):
		// JSON decoding turns bytes that are not UTF-8 into U+FFFD, so a
		// U+FFFD is refused too: the id it stands for is already lost.
		return Violation{Field: field, Code: records.CodeInvalidUTF8,
			Message: field + " is not valid UTF-8 (or holds U+FFFD, the mark of bytes lost to a wrong encoding); send it encoded as UTF-8"}, true
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return Violation{Field: field, Code: records.CodeControlChar,
			Message: field + " holds a control character (tab, newline, ...); ids are single-line text: remove it"}, true
	case len(v) > MaxIDBytes:
		return Violation{Field: field, Code: records.CodeTooLong,
			Message: fmt.Sprintf("%s is %d bytes long, over the limit of %d bytes; send the real id", field, len(v), MaxIDBytes)}, true
	}
	return Violation{}, false
}

// clip keeps a message short; s is ASCII or valid UTF-8 here.
func clip(s string) string { return ellipsis.Clip(s, 40) }
