// Package gen writes realistic Opower legacy billing files
// (docs/data-contract.md §2) with injected, labelled anomalies: test fixtures, benchmark input
// and demo data.
//
// Output is a pure function of Config: the same Config (Seed and Now included)
// gives the same bytes. Rows are produced service point by service point into a
// reused buffer, so memory stays flat whatever the size; only the anomaly plan
// (a few entries per requested anomaly) is held for the whole run.
//
// Every injected anomaly has exactly one Label naming the file and physical line
// of the row that carries it. Everything not labelled is clean: periods chain
// (rule U1), durations are 28-33 days, one account per service point, values
// are valid and allowed.
package gen

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
)

// Config says what to generate. The zero value is usable: WithDefaults fills it.
type Config struct {
	Utility     string // 3 or 4 letters or digits. Default: DefaultUtility.
	Population  string // res, nonres, nonres-smb, nonres-lci. Default: DefaultPopulation.
	SpecVersion string // Default: DefaultSpecVersion.
	// ServicePoints is the approximate number of service points: every premise
	// has an electric one and GasShare of them a gas one too. Default:
	// DefaultServicePoints.
	ServicePoints int
	// Months of monthly billing history per service point. Default: as many
	// whole months as fit between Start and the month before Now.
	Months int
	// Start is the earliest first period start; each premise's read cycle
	// (01-20) moves its first period 0-19 days later, as real read routes do.
	// Default: January 1 of the year before Now (docs/data-contract.md §2.6).
	Start dates.Date
	// Now sets the defaults and the file-name timestamp; zero means time.Now(),
	// which makes the output differ from run to run. WithDefaults moves it
	// later when Months runs the periods past it: no bill ends after its file.
	Now  time.Time
	Seed int64
	// GasShare is the share of premises that also have gas; a negative
	// value means no gas at all. Default (0): DefaultGasShare.
	GasShare float64
	// Split writes a "customer" and a "usage" file instead of one "full" file.
	Split bool
	// Compression is "gzip", "zip" or "none" (plain .tsv). Default:
	// DefaultCompression.
	Compression string
	// Anomalies says how many of each kind to inject, each on its own premise.
	Anomalies map[Kind]int
}

// Defaults, exported so callers and the CLI can show them.
const (
	DefaultUtility       = "gec"
	DefaultPopulation    = "res"
	DefaultSpecVersion   = "v1-19-0"
	DefaultServicePoints = 1000
	DefaultGasShare      = 0.3
	DefaultCompression   = "gzip"
)

// MinMonthsForAnomalies is the history an anomaly needs around it: a few
// clean periods before and after, so that its consequence is unambiguous.
const MinMonthsForAnomalies = 6

// WithDefaults returns c with every unset field filled.
func (c Config) WithDefaults() Config {
	if c.Utility == "" {
		c.Utility = DefaultUtility
	}
	if c.Population == "" {
		c.Population = DefaultPopulation
	}
	if c.SpecVersion == "" {
		c.SpecVersion = DefaultSpecVersion
	}
	if c.ServicePoints == 0 {
		c.ServicePoints = DefaultServicePoints
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	if c.Start == 0 {
		c.Start = dates.FromCivil(c.Now.Year()-1, time.January, 1)
	}
	if c.Months == 0 {
		// The last period must end before Now even for read cycle 20, whose
		// periods end up to 19 days (plus jitter) after the month boundary.
		sy, sm, _ := civil(c.Start)
		ny, nm, _ := c.Now.Date()
		c.Months = max(1, (ny-sy)*12+int(nm)-sm-1)
	}
	// A bill cannot end after its file was made (the reader rejects it,
	// DATE_AFTER_FILE). With Months given, the periods may run past Now: the
	// file-name timestamp then moves to the day after the last date_to can
	// be (makePeriods: a read cycle up to 19 days late, ends up to 2 days
	// after the same day of the month).
	if bound := c.Start.AddDays(19).AddMonths(c.Months) + 2; dates.FromTime(c.Now) < bound {
		c.Now = c.Now.AddDate(0, 0, int(bound-dates.FromTime(c.Now)))
	}
	if c.GasShare == 0 {
		c.GasShare = DefaultGasShare
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	return c
}

// validate checks a Config after WithDefaults; messages say what to change.
func (c Config) validate() error {
	if n := len(c.Utility); (n != 3 && n != 4) || !isLowerAlnum(c.Utility) {
		return fmt.Errorf("gen: utility %q must be 3 or 4 lower-case letters or digits (file names, docs/data-contract.md §2.3)", c.Utility)
	}
	switch c.Population {
	case "res", "nonres", "nonres-smb", "nonres-lci":
	default:
		return fmt.Errorf("gen: population %q must be res, nonres, nonres-smb or nonres-lci", c.Population)
	}
	if !isSpecVersion(c.SpecVersion) {
		return fmt.Errorf("gen: spec version %q must be 'v' then digits separated by hyphens, like v1-19-0", c.SpecVersion)
	}
	if c.ServicePoints < 1 {
		return fmt.Errorf("gen: service points %d must be at least 1", c.ServicePoints)
	}
	if c.Months < 1 {
		return fmt.Errorf("gen: months %d must be at least 1", c.Months)
	}
	if c.GasShare > 1 || math.IsNaN(c.GasShare) {
		return fmt.Errorf("gen: gas share %v must be at most 1 (negative for no gas)", c.GasShare)
	}
	switch c.Compression {
	case "gzip", "zip", "none":
	default:
		return fmt.Errorf("gen: compression %q must be gzip, zip or none", c.Compression)
	}
	if y, _, _ := civil(c.Start); y < 1900 || y > 9000 {
		return fmt.Errorf("gen: start %s is out of range: give a date between 1900 and 9000", c.Start)
	}
	total := 0
	for k, n := range c.Anomalies {
		if _, ok := kindInfo[k]; !ok {
			return fmt.Errorf("gen: unknown anomaly kind %q; known kinds: %s", k, kindList())
		}
		if n < 0 {
			return fmt.Errorf("gen: anomaly %s count %d must not be negative", k, n)
		}
		total += n
	}
	if total > 0 && c.Months < MinMonthsForAnomalies {
		return fmt.Errorf("gen: anomalies need at least %d months of history, got %d: raise Months", MinMonthsForAnomalies, c.Months)
	}
	return nil
}

func (c Config) gasShare() float64 {
	if c.GasShare < 0 {
		return 0
	}
	return c.GasShare
}

// Kind is one injected scenario, named after its docs/rules.md id (or, for rows the
// reader must reject, after the reader's reject code).
type Kind string

const (
	U2Gap                  Kind = "U2_GAP"
	U3Overlap              Kind = "U3_OVERLAP"
	U4ExactOverwrite       Kind = "U4_EXACT_OVERWRITE"
	U5OverlappingOverwrite Kind = "U5_OVERLAPPING_OVERWRITE"
	U7ZeroLapse            Kind = "U7_ZERO_LAPSE"
	U9NegativeUsage        Kind = "U9_NEGATIVE_USAGE"
	A2Supersede            Kind = "A2_SUPERSEDE"
	A3ActiveDateChanged    Kind = "A3_ACTIVE_DATE_CHANGED"
	A4Termination          Kind = "A4_TERMINATION"
	A5Reactivation         Kind = "A5_REACTIVATION"
	A5InvalidReactivation  Kind = "A5_INVALID_REACTIVATION"
	A7RateNotAllowed       Kind = "A7_RATE_NOT_ALLOWED"
	A8Deletion             Kind = "A8_DELETION"
	A8InvalidDeletion      Kind = "A8_INVALID_DELETION"
	C2PropertyManager      Kind = "C2_PROPERTY_MANAGER"
	S1ServicePointReplace  Kind = "S1_SERVICE_POINT_REPLACEMENT"
	S2DualFuel             Kind = "S2_DUAL_FUEL"
	BadDate                Kind = "BAD_DATE"
	NullToken              Kind = "NULL_TOKEN"
	ThousandsSeparator     Kind = "THOUSANDS_SEPARATOR"
	FieldCount             Kind = "FIELD_COUNT"
	BadServiceType         Kind = "BAD_SERVICE_TYPE"
	BadDuration            Kind = "BAD_DURATION"
)

// Reject codes and rule ids of the billing reader (producers/billing), repeated
// here so that the generator does not depend on the reader being built.
const (
	ruleFormat  = "DC-2.1"
	ruleColumns = "DC-2.4"
)

type kindMeta struct {
	rule       string
	rejectCode string
	premises   int // distinct premises one instance needs
}

// kindOrder is the canonical order: planning walks it, so it fixes which
// premise each anomaly lands on for a given seed. Append only.
var kindOrder = []Kind{
	U2Gap, U3Overlap, U4ExactOverwrite, U5OverlappingOverwrite, U7ZeroLapse,
	A2Supersede, A3ActiveDateChanged, A4Termination, A5Reactivation, A5InvalidReactivation,
	A7RateNotAllowed, A8Deletion, A8InvalidDeletion, C2PropertyManager,
	S1ServicePointReplace, S2DualFuel, U9NegativeUsage,
	BadDate, NullToken, ThousandsSeparator, FieldCount, BadServiceType, BadDuration,
}

var kindInfo = map[Kind]kindMeta{
	U2Gap:                  {rule: "U2", premises: 1},
	U3Overlap:              {rule: "U3", premises: 1},
	U4ExactOverwrite:       {rule: "U4", premises: 1},
	U5OverlappingOverwrite: {rule: "U5", premises: 1},
	U7ZeroLapse:            {rule: "U7", premises: 1},
	A2Supersede:            {rule: "A2", premises: 1},
	A3ActiveDateChanged:    {rule: "A3", premises: 1},
	A4Termination:          {rule: "A4", premises: 1},
	A5Reactivation:         {rule: "A5", premises: 1},
	A5InvalidReactivation:  {rule: "A5", premises: 1},
	A7RateNotAllowed:       {rule: "A7", premises: 1},
	A8Deletion:             {rule: "A8", premises: 1},
	A8InvalidDeletion:      {rule: "A8", premises: 1},
	C2PropertyManager:      {rule: "C2", premises: 3},
	S1ServicePointReplace:  {rule: "S1", premises: 1},
	S2DualFuel:             {rule: "S2", premises: 1},
	U9NegativeUsage:        {rule: "U9", rejectCode: "NEGATIVE_USAGE", premises: 1},
	BadDate:                {rule: ruleColumns, rejectCode: "BAD_DATE", premises: 1},
	NullToken:              {rule: ruleFormat, rejectCode: "NULL_TOKEN", premises: 1},
	ThousandsSeparator:     {rule: ruleColumns, rejectCode: "THOUSANDS_SEPARATOR", premises: 1},
	FieldCount:             {rule: ruleFormat, rejectCode: "FIELD_COUNT", premises: 1},
	BadServiceType:         {rule: ruleColumns, rejectCode: "BAD_SERVICE_TYPE", premises: 1},
	BadDuration:            {rule: ruleColumns, rejectCode: "BAD_DURATION", premises: 1},
}

// Kinds lists every Kind in canonical order.
func Kinds() []Kind { return slices.Clone(kindOrder) }

// Rule is the docs/rules.md id ("U2") or data contract section ("DC-2.4") a Kind tests.
func (k Kind) Rule() string { return kindInfo[k].rule }

// RejectCode is the reader's reject code for kinds whose row the reader must
// reject, else "".
func (k Kind) RejectCode() string { return kindInfo[k].rejectCode }

func kindList() string {
	s := make([]string, len(kindOrder))
	for i, k := range kindOrder {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// ParseAnomalies reads a flag value such as "U2_GAP=3,A7_RATE_NOT_ALLOWED=2".
// "all=N" asks for N of every kind; later entries override earlier ones, so
// "all=1,U2_GAP=5" means five gaps and one of everything else. Kind names are
// case-insensitive; a bare kind means 1.
func ParseAnomalies(spec string) (map[Kind]int, error) {
	out := map[Kind]int{}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, num, hasNum := strings.Cut(part, "=")
		name = strings.ToUpper(strings.TrimSpace(name))
		n := 1
		if hasNum {
			v, err := strconv.Atoi(strings.TrimSpace(num))
			if err != nil || v < 0 {
				return nil, fmt.Errorf("gen: anomaly %q: count %q must be a whole number >= 0", name, num)
			}
			n = v
		}
		if name == "ALL" {
			for _, k := range kindOrder {
				out[k] = n
			}
			continue
		}
		k := Kind(name)
		if _, ok := kindInfo[k]; !ok {
			return nil, fmt.Errorf("gen: unknown anomaly kind %q; known kinds: all, %s", name, kindList())
		}
		out[k] = n
	}
	return out, nil
}

// Label is the ground truth for one injected anomaly.
type Label struct {
	Kind           Kind   `json:"kind"`
	Rule           string `json:"rule"`                  // docs/rules.md id ("U2") or "DC-2.1"/"DC-2.4" for malformed rows
	RejectCode     string `json:"reject_code,omitempty"` // for rows the reader must reject
	File           string `json:"file"`                  // base name
	Line           int64  `json:"line"`                  // physical line of the row that carries it (header = 1)
	ServicePointID string `json:"service_point_id"`
	CustomerID     string `json:"customer_id,omitempty"`
	PremiseID      string `json:"premise_id,omitempty"`
	Date           string `json:"date,omitempty"` // the date the anomaly takes effect (yyyymmdd)
	Note           string `json:"note"`           // what was done, for a person
}

// Result describes what Generate wrote.
type Result struct {
	Files      []string         // paths, in processing order
	Labels     []Label          // in file, then line order
	Rows       int64            // data rows, headers excluded, all files
	RowsByFile map[string]int64 // by base name
}

var errTooFewPremises = errors.New("not enough premises for the anomalies asked")

func isLowerAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

func isSpecVersion(s string) bool {
	rest, ok := strings.CutPrefix(s, "v")
	if !ok || rest == "" {
		return false
	}
	for g := range strings.SplitSeq(rest, "-") {
		if g == "" {
			return false
		}
		for i := 0; i < len(g); i++ {
			if g[i] < '0' || g[i] > '9' {
				return false
			}
		}
	}
	return true
}
