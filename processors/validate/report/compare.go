package report

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
)

// Round is one validation round in a report's trend.
type Round struct {
	Time     string   `json:"time"`
	Inputs   []string `json:"inputs"`
	Pass     bool     `json:"pass"`
	Lines    int64    `json:"lines"`
	Rejected int64    `json:"rejected"`
	Errors   int64    `json:"errors"`
	Warnings int64    `json:"warnings"`
}

// Comparison is what changed since the previous round: findings fixed,
// new and persisting, by rule and by service point. A finding is known
// across rounds by its rule and service point (line numbers move when a
// file is sent again), so the counts are per (rule, service point): two
// gaps at a service point that had one are one persisting and one new.
type Comparison struct {
	Previous   string `json:"previous"` // the previous round's time
	Fixed      int64  `json:"fixed"`
	New        int64  `json:"new"`
	Persisting int64  `json:"persisting"`
	// ByRule is every rule with findings in either round, most new first.
	ByRule []Delta `json:"by_rule"`
	// ServicePoints lists the service points whose findings changed or
	// persist, new ones first, then persisting, then fixed: at most
	// ExamplesPerGroup of them (the report's cap; 0: all); ByStatus counts
	// them all.
	ServicePoints []SPDelta        `json:"service_points"`
	ByStatus      map[string]int64 `json:"service_points_by_status"`
}

// Delta counts findings fixed, new and persisting.
type Delta struct {
	Rule       string `json:"rule"`
	Fixed      int64  `json:"fixed"`
	New        int64  `json:"new"`
	Persisting int64  `json:"persisting"`
}

// SPDelta is a service point's change: Status is "new" (no finding in the
// previous round), "fixed" (none in this one), "persisting" (some finding
// in both) or "changed" (findings in both rounds, none of the same rule),
// with the counts per rule.
type SPDelta struct {
	ServicePointID string  `json:"service_point_id"`
	Status         string  `json:"status"`
	ByRule         []Delta `json:"by_rule"`
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the previous report: %w; give the JSON report (--json) of an earlier validate run", err)
	}
	defer f.Close()
	var r Report
	if err := json.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&r); err != nil {
		return nil, fmt.Errorf("reading the previous report %s: %w; give the JSON report (--json) of an earlier validate run", path, err)
	}
	if r.OpenByServicePoint == nil && len(r.Rules) > 0 {
		return nil, fmt.Errorf("the previous report %s has no open_by_service_point: it was written by a validate older than --compare; run that round again", path)
	}
	return &r, nil
}

// RoundOf summarises a report as a round of the trend.
func RoundOf(r *Report) Round {
	rd := Round{Time: r.Run.Time, Pass: r.Pass, Lines: r.Lines, Rejected: r.Rejected,
		Errors: r.Totals.Errors, Warnings: r.Totals.Warnings, Inputs: []string{}}
	for _, in := range r.Run.Inputs {
		rd.Inputs = append(rd.Inputs, in.Name)
	}
	return rd
}

// Compare sets cur's comparison with prev and its trend: prev's rounds
// (which end with prev itself when it was compared in turn), then cur.
func Compare(prev, cur *Report) {
	rounds := slices.Clone(prev.Rounds)
	if len(rounds) == 0 {
		rounds = []Round{RoundOf(prev)}
	}
	cur.Rounds = append(rounds, RoundOf(cur))
	c := &Comparison{Previous: prev.Run.Time, ByRule: []Delta{}, ServicePoints: []SPDelta{},
		ByStatus: map[string]int64{"new": 0, "changed": 0, "persisting": 0, "fixed": 0}}
	byRule := map[string]*Delta{}
	sps := map[string]bool{}
	for sp := range prev.OpenByServicePoint {
		sps[sp] = true
	}
	for sp := range cur.OpenByServicePoint {
		sps[sp] = true
	}
	for _, sp := range slices.Sorted(maps.Keys(sps)) {
		p, q := prev.OpenByServicePoint[sp], cur.OpenByServicePoint[sp]
		rules := map[string]bool{}
		for r := range p {
			rules[r] = true
		}
		for r := range q {
			rules[r] = true
		}
		d := SPDelta{ServicePointID: sp}
		var pt, qt, kept int64
		for _, rule := range slices.Sorted(maps.Keys(rules)) {
			a, b := p[rule], q[rule]
			pt, qt = pt+a, qt+b
			x := Delta{Rule: rule, Fixed: max(a-b, 0), New: max(b-a, 0), Persisting: min(a, b)}
			if x == (Delta{Rule: rule}) {
				continue
			}
			d.ByRule = append(d.ByRule, x)
			kept += x.Persisting
			g := byRule[rule]
			if g == nil {
				g = &Delta{Rule: rule}
				byRule[rule] = g
			}
			g.Fixed, g.New, g.Persisting = g.Fixed+x.Fixed, g.New+x.New, g.Persisting+x.Persisting
			c.Fixed, c.New, c.Persisting = c.Fixed+x.Fixed, c.New+x.New, c.Persisting+x.Persisting
		}
		switch {
		case len(d.ByRule) == 0:
			continue
		case pt == 0:
			d.Status = "new"
		case qt == 0:
			d.Status = "fixed"
		case kept == 0:
			d.Status = "changed" // findings in both rounds, none the same
		default:
			d.Status = "persisting"
		}
		c.ServicePoints = append(c.ServicePoints, d)
	}
	for _, g := range byRule {
		c.ByRule = append(c.ByRule, *g)
	}
	slices.SortFunc(c.ByRule, func(a, b Delta) int {
		return cmp.Or(cmp.Compare(b.New, a.New), cmp.Compare(b.Persisting, a.Persisting), cmp.Compare(b.Fixed, a.Fixed), cmp.Compare(a.Rule, b.Rule))
	})
	rank := map[string]int{"new": 0, "changed": 1, "persisting": 2, "fixed": 3}
	slices.SortStableFunc(c.ServicePoints, func(a, b SPDelta) int { return cmp.Compare(rank[a.Status], rank[b.Status]) })
	for _, sp := range c.ServicePoints {
		c.ByStatus[sp.Status]++
	}
	if n := cur.ExamplesPerGroup; n > 0 && len(c.ServicePoints) > n {
		c.ServicePoints = c.ServicePoints[:n]
	}
	cur.Comparison = c
}
