package billing

import (
	"strconv"
	"strings"
)

// Reject codes: stable, upper-case, one per kind of problem. Reports and the
// rejected topic key on them, so never rename one.
const (
	CodeFieldCount           = "FIELD_COUNT"
	CodeBlankLine            = "BLANK_LINE"
	CodeLineTooLong          = "LINE_TOO_LONG"
	CodeInvalidUTF8          = "INVALID_UTF8"
	CodeRequired             = "REQUIRED"
	CodeNullToken            = "NULL_TOKEN"
	CodeBadDate              = "BAD_DATE"
	CodeInactiveBeforeActive = "INACTIVE_BEFORE_ACTIVE"
	CodeBadNumber            = "BAD_NUMBER"
	CodeThousandsSeparator   = "THOUSANDS_SEPARATOR"
	CodeOutOfRange           = "OUT_OF_RANGE"
	CodeNegativeUsage        = "NEGATIVE_USAGE"
	CodeBadInteger           = "BAD_INTEGER"
	CodeBadDuration          = "BAD_DURATION"
	CodeBadEstimate          = "BAD_ESTIMATE"
	CodeBadServiceType       = "BAD_SERVICE_TYPE"
	CodeBadFlag              = "BAD_FLAG"
	CodeBadState             = "BAD_STATE"
	CodeBadZip               = "BAD_ZIP"
)

// Rule ids cited in Reason.Rule: data contract sections (docs/data-contract.md)
// or rule ids; docs/rules.md explains each (docs/rules.md#DC-2.1, ...).
const (
	RuleFormat  = "DC-2.1" // file format: fields, lines, encoding, nulls
	RuleColumns = "DC-2.4" // column types and per-column rules
	RuleU9      = "U9"     // negative usage only with net metering
)

// FileError is a problem with the file as a whole: the reader stops there.
// Rows returned before it stand.
type FileError struct {
	File  string
	Line  int64  // 0 when no line is concerned (open, compression container)
	Field string // column name, when one is concerned
	Err   error  // "<what is wrong>; <what to do>"
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("file ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(", line ")
		b.WriteString(strconv.FormatInt(e.Line, 10))
	}
	if e.Field != "" {
		b.WriteString(", field ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// Record is one data line: exactly one of Row or Rejected is set.
type Record struct {
	Row      *Row
	Rejected *Rejected
}

// Rejected is a data line that did not pass, with every reason found.
type Rejected struct {
	Line           int64  // 1-based physical line (header = line 1)
	Raw            string // the line, personal fields redacted unless Options.KeepPersonal; always valid UTF-8
	ServicePointID string // when the row had a readable one (the Kafka key), else ""
	Reasons        []Reason
}

// Reason is one problem of a rejected row.
type Reason struct {
	Field   string // column name, or "" for whole-row problems
	Code    string // one of the Code* constants
	Rule    string // "DC-2.1", "DC-2.4" or a docs/rules.md id such as "U9"
	Message string // for a person; never holds a personal value unless Options.KeepPersonal
}

// Stats counts data lines (the header excluded). Lines == Accepted + Rejected
// always holds. RejectedByCode counts rejected rows per code: a row rejected
// for two codes counts once under each, so the sum may exceed Rejected.
type Stats struct {
	Lines, Accepted, Rejected int64
	RejectedByCode            map[string]int64
}
