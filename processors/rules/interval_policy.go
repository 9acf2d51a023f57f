package rules

import (
	"errors"
	"fmt"
	"time"
)

// IntervalPolicy holds the interval rules' settings that Policy does not have
// yet (I4, I7 and how much history the state keeps). The sum tolerances (I6),
// net metering (I7) and the history months (I5) come from Policy.
type IntervalPolicy struct {
	// StaleAfter without interval data raises STALE_FEED on an active
	// service point (I4; data contract 3: reads come within 72 hours).
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

// Validate reports a setting the interval rules cannot work with.
func (p IntervalPolicy) Validate() error {
	var errs []error
	if p.StaleAfter <= 0 {
		errs = append(errs, fmt.Errorf("stale-after is %s; give a positive duration such as 72h", p.StaleAfter))
	}
	if p.DetailDays < 1 || p.RetentionDays < p.DetailDays {
		errs = append(errs, fmt.Errorf("retention days (%d) must be at least detail days (%d), which must be at least 1", p.RetentionDays, p.DetailDays))
	}
	if p.ZeroRunMinutes < 1 || p.EstimateRunMinutes < 1 {
		errs = append(errs, errors.New("zero-run and estimate-run minutes must be positive"))
	}
	if p.SpikeRatio <= 1 {
		errs = append(errs, fmt.Errorf("spike ratio %v must be above 1", p.SpikeRatio))
	}
	return errors.Join(errs...)
}
