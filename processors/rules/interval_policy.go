package rules

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// IntervalPolicy holds the interval rules' own settings (I4, I7 and how much
// history the state keeps): the `intervals:` section of the policy file. The
// sum tolerances (I6), net metering (I7) and the history months (I5) are
// top-level Policy keys, shared with the billing rules.
type IntervalPolicy struct {
	// StaleAfter without interval data raises STALE_FEED on an active
	// service point (I4; docs/data-contract.md §3: reads come within 72 hours).
	StaleAfter time.Duration
	// RetentionDays of coverage are kept per channel, counted back from the
	// newest day with data: 13 months for I5 plus a margin.
	RetentionDays int
	// DetailDays of interval values are kept (for I2's old values, I6 and
	// I7 spikes); older days keep only coverage and their sum. A billing
	// period is at most about 35 days, and reads come within 3.
	DetailDays int
	// ZeroRunMinutes of consecutive zero reads is a VEE finding (I7), except
	// on gas service points.
	ZeroRunMinutes int
	// EstimateRunMinutes of consecutive estimated reads is a VEE finding (I7).
	EstimateRunMinutes int
	// SpikeRatio: a day whose highest interval is more than SpikeRatio times
	// its next highest, and at least SpikeMinimum units, has a spike (I7).
	SpikeRatio   float64
	SpikeMinimum float64
}

// DefaultIntervalPolicy returns the project's decisions for the interval rules.
func DefaultIntervalPolicy() IntervalPolicy {
	return IntervalPolicy{
		StaleAfter:         72 * time.Hour,
		RetentionDays:      400,
		DetailDays:         40,
		ZeroRunMinutes:     24 * 60,
		EstimateRunMinutes: 48 * 60,
		SpikeRatio:         10,
		SpikeMinimum:       1,
	}
}

// Ranges of the interval settings. The limits keep the state per service
// point bounded (a day of detail is up to 288 values) and the rules
// meaningful: a feed is not stale within the hour, nor fresh after 90 days.
const (
	minStaleAfter    = time.Hour
	maxStaleAfter    = 90 * 24 * time.Hour
	maxDetailDays    = 366
	maxRetentionDays = 3660
	maxRun           = 366 * 24 * time.Hour
)

// UnmarshalYAML decodes the intervals section key by key over the values
// already there, so that a missing key keeps its default and a misspelt one
// is an error, as at the top level. Durations are written as "72h" or "90m".
func (p *IntervalPolicy) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: intervals must be a mapping of keys to values", n.Line)
	}
	zeroRun := time.Duration(p.ZeroRunMinutes) * time.Minute
	estRun := time.Duration(p.EstimateRunMinutes) * time.Minute
	fields := map[string]any{
		"stale_after":    &p.StaleAfter,
		"retention_days": &p.RetentionDays,
		"detail_days":    &p.DetailDays,
		"zero_run":       &zeroRun,
		"estimate_run":   &estRun,
		"spike_ratio":    &p.SpikeRatio,
		"spike_minimum":  &p.SpikeMinimum,
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		dst, ok := fields[k.Value]
		switch {
		case !ok:
			return fmt.Errorf("line %d: unknown key intervals.%s; the known keys are %s", k.Line, k.Value, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
		case seen[k.Value]:
			return fmt.Errorf("line %d: key intervals.%s given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		if err := n.Content[i+1].Decode(dst); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) { // yaml would merge a TypeError into its own list, dropping the key
				err = errors.New(strings.Join(te.Errors, "; "))
			}
			if _, isDuration := dst.(*time.Duration); isDuration {
				err = fmt.Errorf("%w (give a duration such as 72h or 90m)", err)
			}
			return fmt.Errorf("intervals.%s: %w", k.Value, err)
		}
	}
	for _, r := range []struct {
		key string
		d   time.Duration
	}{{"zero_run", zeroRun}, {"estimate_run", estRun}} {
		if r.d%time.Minute != 0 {
			return fmt.Errorf("intervals.%s is %s; give whole minutes (reads are at least 5 minutes long)", r.key, r.d)
		}
	}
	p.ZeroRunMinutes, p.EstimateRunMinutes = int(zeroRun/time.Minute), int(estRun/time.Minute)
	return nil
}

// Validate reports a setting the interval rules cannot work with, naming its
// key in the policy file.
func (p IntervalPolicy) Validate() error {
	var errs []error
	if p.StaleAfter < minStaleAfter || p.StaleAfter > maxStaleAfter {
		errs = append(errs, fmt.Errorf("intervals.stale_after is %s; give a duration from %s to %s (72h: docs/data-contract.md §3)", p.StaleAfter, minStaleAfter, maxStaleAfter))
	}
	if p.DetailDays < 1 || p.DetailDays > maxDetailDays {
		errs = append(errs, fmt.Errorf("intervals.detail_days is %d; give 1 to %d days (40 covers a billing period and late reads)", p.DetailDays, maxDetailDays))
	}
	if p.RetentionDays < p.DetailDays || p.RetentionDays > maxRetentionDays {
		errs = append(errs, fmt.Errorf("intervals.retention_days is %d; give from detail_days (%d) to %d days", p.RetentionDays, p.DetailDays, maxRetentionDays))
	}
	for _, r := range []struct {
		key     string
		minutes int
	}{{"zero_run", p.ZeroRunMinutes}, {"estimate_run", p.EstimateRunMinutes}} {
		if r.minutes < 1 || int64(r.minutes) > int64(maxRun/time.Minute) {
			errs = append(errs, fmt.Errorf("intervals.%s is %d minutes; give a duration from 1m to %s", r.key, r.minutes, maxRun))
		}
	}
	if !(p.SpikeRatio > 1) { // also refuses NaN
		errs = append(errs, fmt.Errorf("intervals.spike_ratio is %v; give a ratio above 1 (10: the highest interval is over 10 times the next)", p.SpikeRatio))
	}
	if !(p.SpikeMinimum >= 0) {
		errs = append(errs, fmt.Errorf("intervals.spike_minimum is %v; give 0 or more units", p.SpikeMinimum))
	}
	return errors.Join(errs...)
}
