package records

// Reject codes: stable, upper-case, one per kind of problem, shared by every
// way a record comes in (billing files, interval files, the adapter client,
// the NDJSON endpoint). Reports and the rejected topic key on them, so never
// rename one.
const (
	// Billing and interval files alike.
	CodeFieldCount           = "FIELD_COUNT"
	CodeBlankLine            = "BLANK_LINE"
	CodeLineTooLong          = "LINE_TOO_LONG"
	CodeInvalidUTF8          = "INVALID_UTF8" // also an id that holds U+FFFD
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
	CodeDateAfterFile        = "DATE_AFTER_FILE" // date_to or inactive_date after the file's timestamp (beyond the tolerance)

	// Interval reads only.
	CodeBadTime          = "BAD_TIME"           // not HHmm, or not a time of day
	CodeOffGrid          = "OFF_GRID"           // I1: not on the file's interval grid (a different length)
	CodeBadUnits         = "BAD_UNITS"          // not on the configured units list
	CodeBadOffset        = "BAD_OFFSET"         // UTC_offset not ±HHMM within -1200..+1400
	CodeMissingUTCOffset = "MISSING_UTC_OFFSET" // empty UTC_offset on a daylight-saving change day
	CodeBadLength        = "BAD_LENGTH"         // an adapter's interval length is not 5, 15, 30, 60 or 1440
	// CodeInconsistentTime: a read's UTC end instant and its local date,
	// time and offset are both given and name different instants.
	CodeInconsistentTime = "INCONSISTENT_TIME"

	// A read's identity, whichever way it came in (producers/interval/readrules).
	CodeControlChar     = "CONTROL_CHARACTER" // a tab, newline or other control character
	CodeTooLong         = "TOO_LONG"          // over the id length limit
	CodeDateOutOfWindow = "DATE_OUT_OF_RANGE" // outside the plausible date window
)

// Rule ids cited in Reason.Rule: data contract sections, or rules.md ids.
const (
	RuleFormat          = "DC-2.1" // file format: fields, lines, encoding, nulls
	RuleBillingColumns  = "DC-2.4" // billing column types and per-column rules
	RuleIntervalColumns = "DC-3"   // interval columns
	RuleU9              = "U9"     // negative usage only with net metering
	RuleI1              = "I1"     // one interval length per file, on its grid
)

// Rejected is a data line that did not pass, with every reason found.
type Rejected struct {
	Line           int64  // 1-based physical line (header = line 1)
	Raw            string // the line, personal fields redacted unless kept on purpose; always valid UTF-8
	ServicePointID string // when the row had a readable one (the Kafka key), else ""
	Reasons        []Reason
}

// Reason is one problem of a rejected row.
type Reason struct {
	Field   string // column name, or "" for whole-row problems
	Code    string // one of the Code* constants
	Rule    string // one of the Rule* constants
	Message string // for a person; never holds a personal value unless kept on purpose
}
