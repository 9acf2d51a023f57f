// Package report is the model of an offline validation report and its three
// renderings: a terminal summary, a JSON document and a self-contained HTML
// page. It holds no logic about billing rules: processors/validate fills it.
package report

// Finding kinds.
const (
	KindRejected   = "rejected"   // a row the reader rejected (one finding per reason)
	KindAnomaly    = "anomaly"    // an anomaly raised or cleared by stage 1
	KindCorrection = "correction" // usage replaced by a later row (U4, U5)
	KindAccount    = "account"    // an account event
)

// Severities. Errors and warnings are what a utility must look at and what
// the per-rule caps count; info findings are the ordinary life of accounts
// (activations, move-ins, terminations) and anomalies that cleared.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// Report is everything validate found in a set of files.
type Report struct {
	// Run says when, with what and on what the report was made.
	Run    RunInfo `json:"run"`
	Pass   bool    `json:"pass"`
	Checks []Check `json:"checks"`
	// Totals count each finding once: an account event that is also an
	// anomaly is one finding, and the rows it sits on are counted apart.
	Totals Totals `json:"totals"`
	// Phase is the phase of the data transfer the files were judged for:
	// sample, historical or incremental.
	Phase string `json:"phase"`
	// NoUsage lists the service points with an account (active or
	// inactive) and no usage row (at most ExamplesPerGroup; NoUsageCount
	// counts all): a historical file must hold the history of every
	// account.
	NoUsage      []string `json:"no_usage"`
	NoUsageCount int64    `json:"no_usage_count"`
	// Continuity lists, for an incremental file, the gaps after the loaded
	// history and the changed active dates on service points already
	// loaded (at most ExamplesPerGroup; ContinuityCount counts all).
	Continuity      []Finding `json:"continuity,omitempty"`
	ContinuityCount int64     `json:"continuity_count,omitempty"`
	// Store is where rule state was kept: "memory" or "pebble".
	Store string `json:"store"`
	Files []File `json:"files"`
	// Lines counts data lines (headers excluded) of every file:
	// Lines == Accepted + Rejected.
	Lines    int64 `json:"lines"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	// Entities are distinct ids among accepted rows.
	Entities Entities `json:"entities"`
	// FirstDay and LastDay bound the usage periods of accepted rows
	// (yyyy-mm-dd), empty without usage rows.
	FirstDay string `json:"first_day,omitempty"`
	LastDay  string `json:"last_day,omitempty"`
	// RejectedByCode counts rejected rows per reason (a row with two
	// reasons counts under both).
	RejectedByCode []CodeCount `json:"rejected_by_code"`
	RowsByMonth    []MonthRows `json:"rows_by_month"`
	History        History     `json:"history"`
	// IntervalHistory is set when the run had interval files: the months
	// of interval history (I5) of each service point with reads.
	IntervalHistory *IntervalHistory `json:"interval_history,omitempty"`
	Rules           []RuleFindings   `json:"rules"`
	Eligibility     []Program        `json:"eligibility"`
	// Resolved lists the anomalies raised and cleared within the run (a
	// gap a historical file opens at one row and fills a few rows later),
	// in the order they cleared, at most ExamplesPerGroup per group: a
	// record of what the data showed, which no threshold judges, since
	// nothing of it is open at the end.
	Resolved []Resolved `json:"resolved"`
	// WorstOffenders are the service points with the most errors and
	// warnings, most first.
	WorstOffenders []Offender `json:"worst_offenders"`
	// KnockOns group the findings that follow from rejected rows by the
	// rejected rows' reason.
	KnockOns []KnockOn `json:"knock_ons"`
	// Duplicates are the rows that repeat a period or an interval already
	// on file (U10 the same again, U4 with another value, I2),
	// ActiveDateChanges the rows that
	// change an account's active date (A3); at most ExamplesPerGroup each.
	Duplicates        []Finding `json:"duplicates"`
	ActiveDateChanges []Finding `json:"active_date_changes"`
	// OpenByServicePoint counts, per service point and rule, the errors
	// and warnings open at the end of the run ("" for rows without a
	// service point): what --compare compares round over round.
	OpenByServicePoint map[string]map[string]int64 `json:"open_by_service_point"`
	// Comparison is set when the run was compared with a previous round;
	// Rounds is then the trend: the previous rounds, oldest first, and
	// this one last.
	Comparison *Comparison `json:"comparison,omitempty"`
	Rounds     []Round     `json:"rounds,omitempty"`
	// ExamplesPerGroup is the cap on findings and examples kept per group
	// (0: all of them).
	ExamplesPerGroup int `json:"examples_per_group"`
}

// Check is one threshold of the policy's validation section.
type Check struct {
	// ID is stable across releases and rounds: "files", "rejected-rows",
	// "history", "interval-history", "rule-<rule id>".
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Pass      bool    `json:"pass"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Detail    string  `json:"detail"`
}

// File is what the reader made of one file.
type File struct {
	Name           string      `json:"name"` // base name
	Layout         string      `json:"layout"`
	Lines          int64       `json:"lines"`
	Accepted       int64       `json:"accepted"`
	Rejected       int64       `json:"rejected"`
	RejectedByCode []CodeCount `json:"rejected_by_code,omitempty"`
	// Error says why the file could not be read to its end (the rows before
	// that point count), empty when it was.
	Error string `json:"error,omitempty"`
	// ErrorLine and ErrorField say where the reading stopped (0 and ""
	// when no line or field is concerned, as for a file name).
	ErrorLine  int64  `json:"error_line,omitempty"`
	ErrorField string `json:"error_field,omitempty"`
	// NotTaken is set when the file could not be opened as the layout its
	// name (or --layout) says: no row of it was read.
	NotTaken bool     `json:"not_taken,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Entities counts distinct ids.
type Entities struct {
	Customers     int64 `json:"customers"`
	Premises      int64 `json:"premises"`
	Accounts      int64 `json:"accounts"`
	ServicePoints int64 `json:"service_points"`
}

// CodeCount is a count per reject code.
type CodeCount struct {
	Rule  string `json:"rule"`
	Code  string `json:"code"`
	Count int64  `json:"count"`
}

// MonthRows counts accepted usage rows by the month of their date_to and by
// fuel (service_type; "?" when not known, as for a usage file whose
// customer file was not given).
type MonthRows struct {
	Month  string           `json:"month"` // yyyy-mm
	ByFuel map[string]int64 `json:"by_fuel"`
}

// History is the history length of service points against the months a
// service point needs.
type History struct {
	NeedMonths int `json:"need_months"`
	// ServicePoints counts the active service points with usage: those the
	// need applies to.
	ServicePoints int64   `json:"service_points"`
	WithNeed      int64   `json:"with_need"`
	Share         float64 `json:"share"`
	// Histogram counts those service points by months of history: the days
	// from the first period start to the last date_to in months of 30.44
	// days, rounded (gaps inside are U2 findings, not counted here); its
	// last bucket holds every longer history.
	Histogram []MonthsCount `json:"histogram"`
	// Short lists the service points short of NeedMonths, the most
	// missing first (at most ExamplesPerGroup); ShortCount counts all.
	Short      []ShortHistory `json:"short"`
	ShortCount int64          `json:"short_count"`
}

// MonthsCount is one histogram bucket.
type MonthsCount struct {
	Months int   `json:"months"`
	Count  int64 `json:"count"`
	OrMore bool  `json:"or_more,omitempty"`
}

// RuleFindings is one group of findings: the same kind, rule and code.
type RuleFindings struct {
	Rule     string `json:"rule"`
	Kind     string `json:"kind"`
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Count    int64  `json:"count"`
	// Cleared counts anomalies of this code that ended (they are in Count
	// too, as info findings).
	Cleared int64 `json:"cleared,omitempty"`
	// Open counts the errors and warnings of the group still open at the
	// end of the run: every one but the anomalies raised and cleared within
	// it (Resolved). The policy's max_findings_per_rule judges these.
	Open int64 `json:"open"`
	// Resolved counts anomalies raised and cleared within the run: they
	// are in Count, not in Open, and listed apart (Report.Resolved).
	Resolved int64 `json:"resolved,omitempty"`
	// KnockOn counts the findings that follow from a rejected row
	// (Finding.CausedBy).
	KnockOn int64 `json:"knock_on,omitempty"`
	// Findings are the first ones found, in file and line order, at most
	// ExamplesPerGroup of them.
	Findings []Finding `json:"findings"`
}

// Finding is one thing found at one line of one file.
type Finding struct {
	Kind           string `json:"kind"`
	Rule           string `json:"rule"`
	Code           string `json:"code"`
	Severity       string `json:"severity"`
	File           string `json:"file"`
	Line           int64  `json:"line"`
	ServicePointID string `json:"service_point_id,omitempty"`
	AccountID      string `json:"account_id,omitempty"`
	CustomerID     string `json:"customer_id,omitempty"`
	PremiseID      string `json:"premise_id,omitempty"`
	Field          string `json:"field,omitempty"`
	Date           string `json:"date,omitempty"` // when it takes effect, yyyy-mm-dd
	Cleared        bool   `json:"cleared,omitempty"`
	Message        string `json:"message"`
	// CausedBy is the rejected row this finding follows from (a gap where
	// the rejected row's period would have been), when there is one.
	CausedBy *Cause `json:"caused_by,omitempty"`
	// LedTo lists, under a rejected row, the findings that follow from it
	// (at most 20), so they read as one problem.
	LedTo []Ref `json:"led_to,omitempty"`
}

// Ref points at a finding.
type Ref struct {
	Rule string `json:"rule"`
	Code string `json:"code"`
	File string `json:"file"`
	Line int64  `json:"line"`
	Date string `json:"date,omitempty"`
}

// Cause is a rejected row that other findings follow from.
type Cause struct {
	File string `json:"file"`
	Line int64  `json:"line"`
	Rule string `json:"rule"`
	Code string `json:"code"`
}

// KnockOn counts the findings that follow from rejected rows of one reason.
type KnockOn struct {
	Rule string `json:"rule"` // of the rejected rows
	Code string `json:"code"`
	// Rows counts the rejected rows with knock-on findings, Findings those
	// findings, ByRule them by their own rule.
	Rows     int64            `json:"rows"`
	Findings int64            `json:"findings"`
	ByRule   map[string]int64 `json:"by_rule"`
}

// Totals counts distinct findings and the rows they sit on.
type Totals struct {
	Errors   int64 `json:"errors"`
	Warnings int64 `json:"warnings"` // open at the end of the run
	// Rows counts the distinct rows (file and line) with an error or a
	// warning; KnockOn the warnings that follow from rejected rows.
	Rows    int64 `json:"rows"`
	KnockOn int64 `json:"knock_on"`
}

// RunInfo is the provenance of a report.
type RunInfo struct {
	Time    string  `json:"time"` // RFC 3339, UTC
	Version string  `json:"version"`
	Policy  Input   `json:"policy"` // Name "" for the built-in default
	Inputs  []Input `json:"inputs"`
}

// Input is one file a report was made from.
type Input struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Resolved is an anomaly raised and cleared within the run.
type Resolved struct {
	Raised  Finding `json:"raised"`
	Cleared Finding `json:"cleared"`
}

// Program is the final eligibility of every (customer, premise) for one
// program.
type Program struct {
	Program     string        `json:"program"`
	Subjects    int64         `json:"subjects"`
	Eligible    int64         `json:"eligible"`
	NotEligible int64         `json:"not_eligible"`
	Reasons     []ReasonCount `json:"reasons"`
	// Examples are subjects not eligible at the end, by customer and
	// premise, at most ExamplesPerGroup of them.
	Examples []Subject `json:"examples"`
}

// ReasonCount counts the subjects a reason blocks.
type ReasonCount struct {
	Code     string `json:"code"`
	Rule     string `json:"rule"`
	Subjects int64  `json:"subjects"`
}

// Subject is one (customer, premise) not eligible, with its reasons.
type Subject struct {
	CustomerID  string   `json:"customer_id"`
	PremiseID   string   `json:"premise_id"`
	SecondaryID string   `json:"secondary_id,omitempty"`
	Reasons     []Reason `json:"reasons"`
}

// Reason is one reason a subject is not eligible, with the row that began it.
type Reason struct {
	Code           string `json:"code"`
	Rule           string `json:"rule"`
	ServicePointID string `json:"service_point_id,omitempty"`
	Since          string `json:"since,omitempty"`
	Until          string `json:"until,omitempty"`
	File           string `json:"file,omitempty"`
	Line           int64  `json:"line,omitempty"`
}

// Offender is a service point with errors or warnings.
type Offender struct {
	ServicePointID string `json:"service_point_id"`
	// Rows counts the distinct rows with an error or warning; Findings the
	// findings on them (a row may have several).
	Rows     int64            `json:"rows"`
	Findings int64            `json:"findings"`
	ByRule   map[string]int64 `json:"by_rule"`
}

// IntervalHistory is the interval history (I5) of the service points with
// interval reads.
type IntervalHistory struct {
	NeedMonths    int     `json:"need_months"`
	ServicePoints int64   `json:"service_points"`
	WithNeed      int64   `json:"with_need"`
	Share         float64 `json:"share"`
	// Short lists every service point short of NeedMonths, the most
	// missing first.
	Short []ShortHistory `json:"short"`
}

// ShortHistory is a service point with less history than it needs.
type ShortHistory struct {
	ServicePointID string `json:"service_point_id"`
	Months         int    `json:"months"`
	Missing        int    `json:"missing"`
}
