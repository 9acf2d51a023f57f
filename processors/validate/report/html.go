package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":    func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
	"f1":     func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"byRule": byRule,
	"more":   func(count int64, shown int) int64 { return count - int64(shown) },
	"fuel":   fuelName,
	"num":    thousands,
	"plural": func(n any, noun string) string {
		switch v := n.(type) {
		case int:
			return pluralNum(int64(v), noun)
		case int64:
			return pluralNum(v, noun)
		}
		return fmt.Sprint(n, " ", noun)
	},
	"len64": func(s []ShortHistory) int64 { return int64(len(s)) },
	"sub":   func(a, b int64) int64 { return a - b },
	"sum3":  func(m map[string]int64) int { return int(m["new"] + m["changed"] + m["persisting"] + m["fixed"]) },
}).Parse(pageTemplate))

// WriteHTML writes the report as one self-contained page: inline CSS, SVG
// charts drawn here, and a small inline script that pages through long
// tables. It fetches nothing from the network.
func WriteHTML(w io.Writer, r *Report) error {
	data := struct {
		*Report
		MonthsC, HistoryC, TrendC vChart
		RulesC, EligC             hChart
	}{Report: r, MonthsC: monthsChart(r), HistoryC: historyChart(r), RulesC: rulesChart(r), EligC: eligibilityChart(r), TrendC: trendChart(r)}
	if err := page.Execute(w, data); err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	return nil
}

// pluralNum writes a count with thousands separators and its noun in the
// right number: "1 row", "5,000 rows".
func pluralNum(n int64, noun string) string {
	s := plural(n, noun)
	return thousands(n) + s[strings.IndexByte(s, ' '):]
}

// thousands writes a count with thousands separators: 5,000,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
