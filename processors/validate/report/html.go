package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":    func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
	"f1":     func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"byRule": byRule,
	"more":   func(count int64, shown int) int64 { return count - int64(shown) },
	"fuel":   fuelName,
}).Parse(pageTemplate))

// WriteHTML writes the report as one self-contained page: inline CSS, SVG
// charts drawn here, and a small inline script that pages through long
// tables. It fetches nothing from the network.
func WriteHTML(w io.Writer, r *Report) error {
	data := struct {
		*Report
		Months, History  vChart
		RulesC, EligC    hChart
		Errors, Warnings int64
	}{Report: r, Months: monthsChart(r), History: historyChart(r), RulesC: rulesChart(r), EligC: eligibilityChart(r)}
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
