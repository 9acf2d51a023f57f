package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Charts are drawn here as rectangles with coordinates, and the template only
// places them in inline SVG: the page needs no script library and no network.

// vChart is a vertical stacked bar chart.
type vChart struct {
	W, H         float64
	Left, Bottom float64 // plot origin
	Bars         []vBar
	Ticks        []tick
	Legend       []legendItem
	Marker       *marker // a vertical reference line
	Empty        string  // shown instead of the chart when there is no data
}

type vBar struct {
	X, W      float64
	Label     string
	ShowLabel bool
	Segs      []rect
}

type rect struct {
	X, Y, W, H float64
	Color      string
	Title      string
}

type tick struct {
	Y     float64
	Label string
}

type legendItem struct {
	Color, Label string
}

type marker struct {
	X, Y1, Y2 float64
	Label     string
}

// hChart is a horizontal stacked bar chart, one row per label.
type hChart struct {
	W, H   float64
	Left   float64
	Rows   []hRow
	Legend []legendItem
	Empty  string
}

type hRow struct {
	Y     float64
	Label string
	Total string
	Segs  []rect
}

var fuelColors = map[string]string{"E": "#2b6cb0", "G": "#dd6b20", "W": "#319795"}

const otherColor = "#718096"

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func ticks(top, plotH, bottom float64) []tick {
	var out []tick
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		out = append(out, tick{Y: bottom - plotH*float64(i)/4, Label: human(v)})
	}
	return out
}

// human writes a count shortly: 950, 12.5k, 3.2M.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e6), ".0") + "M"
	case v >= 1e4:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

const (
	chartW = 720.0
	chartH = 260.0
	left   = 56.0
	bottom = 220.0
	top    = 16.0
)

func monthsChart(r *Report) vChart {
	c := vChart{W: chartW, H: chartH, Left: left, Bottom: bottom}
	if len(r.RowsByMonth) == 0 {
		c.Empty = "No usage rows."
		return c
	}
	fuelSet := map[string]bool{}
	var most int64
	for _, m := range r.RowsByMonth {
		var sum int64
		for f, n := range m.ByFuel {
			fuelSet[f] = true
			sum += n
		}
		most = max(most, sum)
	}
	fuels := slices.Sorted(func(yield func(string) bool) {
		for f := range fuelSet {
			if !yield(f) {
				return
			}
		}
	})
	for _, f := range fuels {
		c.Legend = append(c.Legend, legendItem{Color: fuelColor(f), Label: fuelName(f)})
	}
	ymax := niceMax(float64(most))
	plotH := bottom - top
	slot := (chartW - left - 8) / float64(len(r.RowsByMonth))
	every := int(math.Ceil(float64(len(r.RowsByMonth)) / 12))
	for i, m := range r.RowsByMonth {
		b := vBar{X: left + float64(i)*slot + slot*0.1, W: slot * 0.8, Label: m.Month, ShowLabel: i%every == 0}
		y := bottom
		for _, f := range fuels {
			n := m.ByFuel[f]
			if n == 0 {
				continue
			}
			h := plotH * float64(n) / ymax
			y -= h
			b.Segs = append(b.Segs, rect{X: b.X, Y: y, W: b.W, H: h, Color: fuelColor(f), Title: fmt.Sprintf("%s %s: %d rows", m.Month, fuelName(f), n)})
		}
		c.Bars = append(c.Bars, b)
	}
	c.Ticks = ticks(ymax, plotH, bottom)
	return c
}

func fuelColor(f string) string {
	if c, ok := fuelColors[f]; ok {
		return c
	}
	return otherColor
}

func fuelName(f string) string {
	switch f {
	case "E":
		return "electric (E)"
	case "G":
		return "gas (G)"
	case "W":
		return "water (W)"
	case "?":
		return "unknown (usage file without its customer file)"
	}
	return f
}

func historyChart(r *Report) vChart {
	h := r.History
	c := vChart{W: chartW, H: chartH, Left: left, Bottom: bottom}
	if h.ServicePoints == 0 {
		c.Empty = "No active service point with usage."
		return c
	}
	var most int64
	for _, b := range h.Histogram {
		most = max(most, b.Count)
	}
	ymax := niceMax(float64(most))
	plotH := bottom - top
	slot := (chartW - left - 8) / float64(len(h.Histogram))
	for i, b := range h.Histogram {
		label := fmt.Sprint(b.Months)
		if b.OrMore {
			label += "+"
		}
		color, state := "#c53030", "short of"
		if b.Months >= h.NeedMonths {
			color, state = "#2f855a", "meets"
		}
		x := left + float64(i)*slot + slot*0.1
		hh := plotH * float64(b.Count) / ymax
		c.Bars = append(c.Bars, vBar{X: x, W: slot * 0.8, Label: label, ShowLabel: b.Months%3 == 0 || b.OrMore,
			Segs: []rect{{X: x, Y: bottom - hh, W: slot * 0.8, H: hh, Color: color,
				Title: fmt.Sprintf("%s months: %d service points (%s the %d-month need)", label, b.Count, state, h.NeedMonths)}}})
		if b.Months == h.NeedMonths {
			c.Marker = &marker{X: x - slot*0.1, Y1: top, Y2: bottom, Label: fmt.Sprintf("need: %d months", h.NeedMonths)}
		}
	}
	c.Ticks = ticks(ymax, plotH, bottom)
	c.Legend = []legendItem{{"#c53030", fmt.Sprintf("fewer than %d months", h.NeedMonths)}, {"#2f855a", fmt.Sprintf("%d months or more", h.NeedMonths)}}
	return c
}

var severityColors = map[string]string{SeverityError: "#c53030", SeverityWarning: "#d69e2e", SeverityInfo: "#a0aec0"}

// rulesChart: errors and warnings per rule (info findings are the ordinary
// life of accounts, not problems).
func rulesChart(r *Report) hChart {
	type agg struct{ err, warn int64 }
	per := map[string]*agg{}
	for _, g := range r.Rules {
		if g.Severity == SeverityInfo {
			continue
		}
		a := per[g.Rule]
		if a == nil {
			a = &agg{}
			per[g.Rule] = a
		}
		n := g.Count - g.Cleared
		if g.Severity == SeverityError {
			a.err += n
		} else {
			a.warn += n
		}
	}
	c := hChart{W: chartW, Left: 90}
	if len(per) == 0 {
		c.Empty = "No errors or warnings."
		return c
	}
	rulesList := make([]string, 0, len(per))
	var most int64
	for k, a := range per {
		rulesList = append(rulesList, k)
		most = max(most, a.err+a.warn)
	}
	slices.SortFunc(rulesList, func(a, b string) int {
		if d := (per[b].err + per[b].warn) - (per[a].err + per[a].warn); d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	plotW := chartW - c.Left - 70
	for i, rule := range rulesList {
		a := per[rule]
		y := 8 + float64(i)*24
		row := hRow{Y: y, Label: rule, Total: fmt.Sprint(a.err + a.warn)}
		x := c.Left
		for _, s := range []struct {
			n     int64
			sev   string
			label string
		}{{a.err, SeverityError, "rejected-row reasons"}, {a.warn, SeverityWarning, "warnings"}} {
			if s.n == 0 {
				continue
			}
			w := plotW * float64(s.n) / float64(most)
			row.Segs = append(row.Segs, rect{X: x, Y: y, W: w, H: 16, Color: severityColors[s.sev], Title: fmt.Sprintf("%s: %d %s", rule, s.n, s.label)})
			x += w
		}
		c.Rows = append(c.Rows, row)
	}
	c.H = 16 + float64(len(rulesList))*24
	c.Legend = []legendItem{{severityColors[SeverityError], "errors (rejected rows, by reason)"}, {severityColors[SeverityWarning], "warnings (anomalies, corrections, refused changes)"}}
	return c
}

func eligibilityChart(r *Report) hChart {
	c := hChart{W: chartW, Left: 150}
	var most int64
	for _, p := range r.Eligibility {
		most = max(most, p.Subjects)
	}
	if most == 0 {
		c.Empty = "No customer was evaluated (a usage file alone carries no accounts)."
		return c
	}
	plotW := chartW - c.Left - 70
	for i, p := range r.Eligibility {
		y := 8 + float64(i)*24
		row := hRow{Y: y, Label: p.Program, Total: fmt.Sprintf("%.0f%%", 100*float64(p.Eligible)/float64(max(p.Subjects, 1)))}
		we := plotW * float64(p.Eligible) / float64(most)
		wn := plotW * float64(p.NotEligible) / float64(most)
		row.Segs = []rect{
			{X: c.Left, Y: y, W: we, H: 16, Color: "#2f855a", Title: fmt.Sprintf("%s: %d eligible", p.Program, p.Eligible)},
			{X: c.Left + we, Y: y, W: wn, H: 16, Color: "#c53030", Title: fmt.Sprintf("%s: %d not eligible", p.Program, p.NotEligible)},
		}
		c.Rows = append(c.Rows, row)
	}
	c.H = 16 + float64(len(r.Eligibility))*24
	c.Legend = []legendItem{{"#2f855a", "eligible"}, {"#c53030", "not eligible"}}
	return c
}

// trendChart draws the errors and warnings of each round, oldest first.
func trendChart(r *Report) vChart {
	c := vChart{W: chartW, H: chartH, Left: left, Bottom: bottom}
	if len(r.Rounds) == 0 {
		c.Empty = "One round only: give the JSON report of the previous round with --compare."
		return c
	}
	var most int64
	for _, rd := range r.Rounds {
		most = max(most, rd.Errors+rd.Warnings)
	}
	ymax := niceMax(float64(most))
	plotH := bottom - top
	slot := (chartW - left - 8) / float64(max(len(r.Rounds), 6))
	for i, rd := range r.Rounds {
		b := vBar{X: left + float64(i)*slot + slot*0.15, W: slot * 0.7, Label: fmt.Sprintf("round %d", i+1), ShowLabel: true}
		y := bottom
		for _, s := range []struct {
			n   int64
			sev string
		}{{rd.Errors, SeverityError}, {rd.Warnings, SeverityWarning}} {
			if s.n == 0 {
				continue
			}
			h := plotH * float64(s.n) / ymax
			y -= h
			b.Segs = append(b.Segs, rect{X: b.X, Y: y, W: b.W, H: h, Color: severityColors[s.sev], Title: fmt.Sprintf("round %d (%s): %d %ss", i+1, rd.Time, s.n, s.sev)})
		}
		c.Bars = append(c.Bars, b)
	}
	c.Ticks = ticks(ymax, plotH, bottom)
	c.Legend = []legendItem{{severityColors[SeverityError], "errors"}, {severityColors[SeverityWarning], "warnings open"}}
	return c
}
