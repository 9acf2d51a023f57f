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
}).Parse(pageTemplate))

// WriteHTML writes the report as one self-contained page: inline CSS, SVG
// charts drawn here, and a small inline script that pages through long
// tables. It fetches nothing from the network.
func WriteHTML(w io.Writer, r *Report) error {
	data := struct {
		*Report
		MonthsC, HistoryC vChart
		RulesC, EligC     hChart
		Errors, Warnings  int64
	}{Report: r, MonthsC: monthsChart(r), HistoryC: historyChart(r), RulesC: rulesChart(r), EligC: eligibilityChart(r)}
	for _, g := range r.Rules {
		switch g.Severity {
		case SeverityError:
			data.Errors += g.Count
		case SeverityWarning:
			data.Warnings += g.Count - g.Cleared
		}
	}
	if err := page.Execute(w, data); err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	return nil
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
