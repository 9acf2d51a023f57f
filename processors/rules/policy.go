package rules

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Policy is the configurable part of the rules (docs/rules.md marks these
// **decision** or "configured"). It is a plain value: the runtime loads it once
// and passes the same value to every Apply, so that a replay with the same
// policy gives the same events.
type Policy struct {
	// RateAllowlist lists the rate codes eligible for programs (A7). Empty
	// means every code is allowed. A row with an empty rate_code is treated as
	// allowed: the column is optional and an absent code is no evidence of a
	// rate that must be left off.
	RateAllowlist []string `yaml:"rate_allowlist"`
	// NetMetering accepts negative usage (U9). The reader rejects negative
	// rows without it; the rules reject them too, as a second line of defence.
	NetMetering bool `yaml:"net_metering"`
	// GapHorizonDays is how long a gap or an overlap keeps blocking (U2, U3):
	// the reason holds while the newest date_to of the service point is at
	// most GapHorizonDays after the day the gap ends (event time).
	GapHorizonDays int `yaml:"gap_horizon_days"`
	// MinPeriodDays and MaxPeriodDays bound a plausible billing period
	// (U11): a period outside them is reported, kept on the timeline, and
	// counts for no history in validate. A first or final bill after a move
	// is legitimately short, so the lower bound is 1 (off) by default.
	MinPeriodDays int `yaml:"min_period_days"`
	MaxPeriodDays int `yaml:"max_period_days"`
	// ReplacementHistoryMonths of chained usage on the new service point end
	// a SERVICE_POINT_CHANGED reason (S1).
	ReplacementHistoryMonths int `yaml:"replacement_history_months"`
	// ReplacementOverlapDays is how far the old service point's last bill may
	// run past the new one's first day and still be a replacement (S1): a
	// meter exchanged mid-cycle, the old meter billed to its cycle end.
	ReplacementOverlapDays int `yaml:"replacement_overlap_days"`
	// SumTolerancePct and SumToleranceUnits bound the interval/billing sum
	// check (I6); not used by the billing rules yet.
	SumTolerancePct   float64 `yaml:"sum_tolerance_pct"`
	SumToleranceUnits float64 `yaml:"sum_tolerance_units"`
	// PropertyManagerPremises: a customer active at more than this many
	// premises is a property manager (C2).
	PropertyManagerPremises int `yaml:"property_manager_premises"`
	// IntervalHistoryMonths of interval data on an active service point make a
	// premise eligible for disaggregation (I5).
	IntervalHistoryMonths int `yaml:"interval_history_months"`
	// Intervals holds the interval rules' own settings (I4, I7, how much
	// history the interval stage keeps).
	Intervals IntervalPolicy `yaml:"intervals"`
	// Validation holds the pass/fail thresholds of `usagestream validate`;
	// the streaming rules do not read it.
	Validation Validation `yaml:"validation"`
}

// Validation is when a file fails offline validation (docs/data-contract.md §2.6: a
// sample historical file is sent again until it passes diagnostics).
type Validation struct {
	// MaxRejectedRowShare is the largest share of data lines (0..1) the
	// reader may reject.
	MaxRejectedRowShare float64 `yaml:"max_rejected_row_share"`
	// HistoryMonths of usage a service point needs (docs/data-contract.md §3: 13
	// months for active accounts), and MinHistoryShare the smallest share of
	// active service points with usage (0..1) that must have them.
	HistoryMonths   int     `yaml:"history_months"`
	MinHistoryShare float64 `yaml:"min_history_share"`
	// MaxFindingsPerRule caps the findings (rejected rows, anomalies raised,
	// corrections, refused account changes) per rule id, such as U2 or
	// DC-2.4; a rule not listed has no cap.
	MaxFindingsPerRule map[string]int64 `yaml:"max_findings_per_rule"`
}

// UnmarshalYAML decodes the validation section key by key over the values
// already there, so that a missing key keeps its default and a misspelt one
// is an error, as at the top level.
func (v *Validation) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: validation must be a mapping of keys to values", n.Line)
	}
	fields := map[string]any{
		"max_rejected_row_share": &v.MaxRejectedRowShare,
		"history_months":         &v.HistoryMonths,
		"min_history_share":      &v.MinHistoryShare,
		"max_findings_per_rule":  &v.MaxFindingsPerRule,
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		dst, ok := fields[k.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown key validation.%s; the known keys are %s", k.Line, k.Value, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
		}
		if err := n.Content[i+1].Decode(dst); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) { // yaml would merge a TypeError into its own list, dropping the key
				err = errors.New(strings.Join(te.Errors, "; "))
			}
			return fmt.Errorf("validation.%s: %w", k.Value, err)
		}
	}
	return nil
}

// DefaultPolicy returns the defaults of docs/rules.md. The default rate allowlist
// is R1, R2 and TOU1: the residential, second-tier and time-of-use codes the
// project's data use; the medical rate MED1 is left off, as A7 asks.
func DefaultPolicy() Policy {
	return Policy{
		RateAllowlist:            []string{"R1", "R2", "TOU1"},
		NetMetering:              false,
		GapHorizonDays:           730,
		MinPeriodDays:            1,
		MaxPeriodDays:            100,
		ReplacementHistoryMonths: 12,
		ReplacementOverlapDays:   35,
		SumTolerancePct:          2,
		SumToleranceUnits:        1,
		PropertyManagerPremises:  2,
		IntervalHistoryMonths:    13,
		Intervals:                DefaultIntervalPolicy(),
		Validation: Validation{
			MaxRejectedRowShare: 0.01,
			HistoryMonths:       13,
			MinHistoryShare:     0.9,
			MaxFindingsPerRule:  map[string]int64{},
		},
	}
}

//go:embed default-policy.yaml
var defaultPolicyYAML string

// DefaultPolicyYAML is the text of default-policy.yaml, the commented defaults:
// a starting point for an operator's own policy file.
func DefaultPolicyYAML() string { return defaultPolicyYAML }

// LoadPolicy reads a YAML policy file. Keys missing from the file keep their
// defaults; an unknown key is an error that names it (a misspelt key must not
// silently leave a default in force). An empty file is the default policy.
func LoadPolicy(path string) (Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("rules: reading policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return Policy{}, fmt.Errorf("rules: policy %s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy is LoadPolicy on bytes already read.
//
// The document is decoded key by key, so that every error names its key and
// line: yaml's own type errors do not say which key they are about.
func ParsePolicy(b []byte) (Policy, error) {
	p := DefaultPolicy()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return p, nil
	case err != nil:
		return Policy{}, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Policy{}, errors.New("the file holds more than one YAML document; keep one")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return p, nil
	}
	if root.Kind != yaml.MappingNode {
		return Policy{}, fmt.Errorf("line %d: the policy must be a mapping of keys to values", root.Line)
	}
	fields := p.fields()
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		dst, ok := fields[k.Value]
		switch {
		case !ok:
			return Policy{}, fmt.Errorf("line %d: unknown key %q; the known keys are %s", k.Line, k.Value, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
		case seen[k.Value]:
			return Policy{}, fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		if err := v.Decode(dst); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) { // one line per error, not yaml's indented list
				err = errors.New(strings.Join(te.Errors, "; "))
			}
			return Policy{}, fmt.Errorf("key %q: %w", k.Value, err)
		}
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// fields maps each YAML key of Policy to the address of its field.
func (p *Policy) fields() map[string]any {
	v := reflect.ValueOf(p).Elem()
	out := make(map[string]any, v.NumField())
	for i := 0; i < v.NumField(); i++ {
		if tag := v.Type().Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			out[tag] = v.Field(i).Addr().Interface()
		}
	}
	return out
}

// Validate reports a setting no rule can work with.
func (p Policy) Validate() error {
	var errs []error
	if p.GapHorizonDays < 0 {
		errs = append(errs, fmt.Errorf("gap_horizon_days is %d; give 0 or more days (730 is two years)", p.GapHorizonDays))
	}
	if p.MinPeriodDays < 1 || p.MaxPeriodDays < p.MinPeriodDays {
		errs = append(errs, fmt.Errorf("min_period_days %d and max_period_days %d: give 1 or more days, the maximum not below the minimum (1 and 100 by default)", p.MinPeriodDays, p.MaxPeriodDays))
	}
	if p.ReplacementOverlapDays < 0 {
		errs = append(errs, fmt.Errorf("replacement_overlap_days is %d; give 0 or more days (35 is a billing cycle)", p.ReplacementOverlapDays))
	}
	if p.ReplacementHistoryMonths < 0 {
		errs = append(errs, fmt.Errorf("replacement_history_months is %d; give 0 or more months", p.ReplacementHistoryMonths))
	}
	if p.PropertyManagerPremises < 1 {
		errs = append(errs, fmt.Errorf("property_manager_premises is %d; give 1 or more", p.PropertyManagerPremises))
	}
	if p.IntervalHistoryMonths < 0 {
		errs = append(errs, fmt.Errorf("interval_history_months is %d; give 0 or more months", p.IntervalHistoryMonths))
	}
	if p.SumTolerancePct < 0 || p.SumToleranceUnits < 0 {
		errs = append(errs, errors.New("sum_tolerance_pct and sum_tolerance_units must not be negative"))
	}
	if err := p.Intervals.Validate(); err != nil {
		errs = append(errs, err)
	}
	// I5 counts months in the coverage the interval stage keeps: a shorter
	// retention would never let a premise reach interval_history_months.
	if need := (p.IntervalHistoryMonths*61 + 1) / 2; p.Intervals.RetentionDays < need {
		errs = append(errs, fmt.Errorf("intervals.retention_days is %d, too short for interval_history_months %d; keep at least %d days (30.5 a month)", p.Intervals.RetentionDays, p.IntervalHistoryMonths, need))
	}
	v := p.Validation
	if v.MaxRejectedRowShare < 0 || v.MaxRejectedRowShare > 1 || v.MinHistoryShare < 0 || v.MinHistoryShare > 1 {
		errs = append(errs, errors.New("validation: max_rejected_row_share and min_history_share are shares; give a number from 0 to 1 (0.01 is 1%)"))
	}
	if v.HistoryMonths < 0 {
		errs = append(errs, fmt.Errorf("validation.history_months is %d; give 0 or more months", v.HistoryMonths))
	}
	for _, r := range slices.Sorted(maps.Keys(v.MaxFindingsPerRule)) {
		if v.MaxFindingsPerRule[r] < 0 {
			errs = append(errs, fmt.Errorf("validation.max_findings_per_rule.%s is %d; give 0 or more", r, v.MaxFindingsPerRule[r]))
		}
	}
	for i, c := range p.RateAllowlist {
		if c == "" {
			errs = append(errs, fmt.Errorf("rate_allowlist entry %d is empty; remove it", i+1))
		}
	}
	return errors.Join(errs...)
}

// RateAllowed says whether a rate code is eligible under A7.
func (p Policy) RateAllowed(code string) bool {
	return code == "" || len(p.RateAllowlist) == 0 || slices.Contains(p.RateAllowlist, code)
}

// PlausiblePeriod says whether a billing period of that many days is within
// the policy's bounds (U11).
func (p Policy) PlausiblePeriod(days int) bool {
	return days >= p.MinPeriodDays && days <= p.MaxPeriodDays
}
