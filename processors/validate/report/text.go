package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as an indented JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	return nil
}

// textFindings is how many findings of each group the terminal shows.
const textFindings = 3

// TextOptions configures WriteTextWith.
type TextOptions struct {
	// Color marks the verdict, failed checks and severities with ANSI
	// colours: for a terminal only, never for a file or a pipe.
	Color bool
}

// WriteText writes the terminal summary without colour.
func WriteText(w io.Writer, r *Report) error { return WriteTextWith(w, r, TextOptions{}) }

// ANSI colours of the terminal summary.
const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

// WriteTextWith writes the terminal summary: the verdict and the checks
// first, then the counts, the rules with findings (worst first, a few
// examples each), eligibility and the worst service points.
func WriteTextWith(w io.Writer, r *Report, o TextOptions) error {
	ew := &errWriter{w: w}
	paint := func(color, s string) string {
		if !o.Color {
			return s
		}
		return color + s + ansiReset
	}
	verdict := paint(ansiBold+ansiGreen, "PASS")
	if !r.Pass {
		verdict = paint(ansiBold+ansiRed, "FAIL")
	}
	ew.printf("%s  %s, %s: %d accepted, %d rejected", verdict, plural(len(r.Files), "file"), plural(r.Lines, "row"), r.Accepted, r.Rejected)
	if r.Phase != "" {
		ew.printf(" (phase %s)", r.Phase)
	}
	ew.printf("\n")
	t := r.Totals
	ew.printf("      %s and %s open, on %s", plural(t.Errors, "error"), plural(t.Warnings, "warning"), plural(t.Rows, "row"))
	if t.KnockOn > 0 {
		ew.printf("; %s follow from rejected rows", plural(t.KnockOn, "finding"))
	}
	ew.printf("\n")
	for _, c := range r.Checks {
		mark := paint(ansiGreen, "ok  ")
		if !c.Pass {
			mark = paint(ansiRed, "FAIL")
		}
		ew.printf("  %s %s: %s\n", mark, c.Name, c.Detail)
	}
	if n := resolvedCount(r); n > 0 {
		what := "anomalies"
		if n == 1 {
			what = "anomaly"
		}
		ew.printf("  %d %s raised and cleared within the run (%s): listed apart, not judged by the thresholds\n", n, what, resolvedByRule(r))
	}

	ew.printf("\nFiles\n")
	tw := tabwriter.NewWriter(ew, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  \tlayout\trows\taccepted\trejected\t\n")
	for _, f := range r.Files {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t\n", f.Name, f.Layout, f.Lines, f.Accepted, f.Rejected)
	}
	tw.Flush()
	for _, f := range r.Files {
		switch {
		case f.NotTaken:
			ew.printf("  %s not taken: %s\n", f.Name, f.Error)
		case f.Error != "":
			ew.printf("  %s stopped early: %s\n", f.Name, f.Error)
		}
		for _, warn := range f.Warnings {
			ew.printf("  %s: %s\n", f.Name, warn)
		}
	}

	e := r.Entities
	ew.printf("\nEntities  %d customers, %d premises, %d accounts, %d service points", e.Customers, e.Premises, e.Accounts, e.ServicePoints)
	if r.FirstDay != "" {
		ew.printf("; usage from %s to %s", r.FirstDay, r.LastDay)
	}
	ew.printf("\nHistory   %d of %d active service points with usage have %d months (%.1f%%)\n",
		r.History.WithNeed, r.History.ServicePoints, r.History.NeedMonths, 100*r.History.Share)
	for _, s := range r.History.Short[:min(len(r.History.Short), 10)] {
		ew.printf("  %-20s %s, %s short\n", s.ServicePointID, plural(s.Months, "month"), plural(s.Missing, "month"))
	}
	if n := r.History.ShortCount; n > 10 {
		ew.printf("  ... %d more short (see the JSON or HTML report)\n", n-10)
	}

	if c := r.Comparison; c != nil {
		ew.printf("\nSince the previous round (%s): %s, %s, %s\n", c.Previous,
			paint(ansiGreen, fmt.Sprintf("%d fixed", c.Fixed)), paint(ansiRed, fmt.Sprintf("%d new", c.New)), fmt.Sprintf("%d persisting", c.Persisting))
		tw := tabwriter.NewWriter(ew, 2, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  rule\tfixed\tnew\tpersisting\t\n")
		for _, d := range c.ByRule {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t\n", orDash(d.Rule), d.Fixed, d.New, d.Persisting)
		}
		tw.Flush()
		n := c.ByStatus
		ew.printf("  service points: %d new, %d changed, %d persisting, %d fixed\n", n["new"], n["changed"], n["persisting"], n["fixed"])
		for _, sp := range c.ServicePoints[:min(len(c.ServicePoints), 10)] {
			ew.printf("    %-10s %-20s %s\n", sp.Status, orDash(sp.ServicePointID), deltas(sp.ByRule))
		}
		if all := n["new"] + n["changed"] + n["persisting"] + n["fixed"]; all > 10 {
			ew.printf("    ... %d more (see the JSON or HTML report)\n", all-10)
		}
		if len(r.Rounds) > 2 {
			ew.printf("  trend (errors + warnings per round): ")
			for i, rd := range r.Rounds {
				if i > 0 {
					ew.printf(" -> ")
				}
				ew.printf("%d", rd.Errors+rd.Warnings)
			}
			ew.printf("\n")
		}
	}

	if ih := r.IntervalHistory; ih != nil {
		ew.printf("Intervals %d of %d service points with interval reads have %d months of interval history (%.1f%%)\n",
			ih.WithNeed, ih.ServicePoints, ih.NeedMonths, 100*ih.Share)
		for _, s := range ih.Short[:min(len(ih.Short), 10)] {
			ew.printf("  %-20s %s, %s short\n", s.ServicePointID, plural(s.Months, "month"), plural(s.Missing, "month"))
		}
		if len(ih.Short) > 10 {
			ew.printf("  ... %d more short (see the JSON or HTML report)\n", len(ih.Short)-10)
		}
	}

	if len(r.RejectedByCode) > 0 {
		ew.printf("\nRejected rows by reason\n")
		for _, c := range r.RejectedByCode {
			ew.printf("  %-8s %-24s %d\n", c.Rule, c.Code, c.Count)
		}
	}

	if len(r.KnockOns) > 0 {
		ew.printf("\nFindings that follow from rejected rows (fix the rows and these go too)\n")
		for _, k := range r.KnockOns {
			ew.printf("  %-8s %-24s %s caused %s (%s)\n", k.Rule, k.Code, plural(k.Rows, "rejected row"), plural(k.Findings, "finding"), byRule(k.ByRule))
		}
	}
	list := func(title string, fs []Finding) {
		if len(fs) == 0 {
			return
		}
		ew.printf("\n%s\n", title)
		for _, f := range fs[:min(len(fs), 10)] {
			ew.printf("  %s:%d %s %s: %s\n", f.File, f.Line, orDash(f.ServicePointID), orDash(f.AccountID), oneLine(f.Message))
		}
		if len(fs) > 10 {
			ew.printf("  ... %d more (see the JSON or HTML report)\n", len(fs)-10)
		}
	}
	list("Breaks with the loaded history (phase incremental)", r.Continuity)
	if len(r.NoUsage) > 0 {
		ew.printf("\nService points with an account and no usage (%d): %s", r.NoUsageCount, strings.Join(r.NoUsage[:min(len(r.NoUsage), 10)], ", "))
		if r.NoUsageCount > 10 {
			ew.printf(", ...")
		}
		ew.printf("\n")
	}
	list("Duplicate rows (a period or interval sent again)", r.Duplicates)
	list("Accounts whose active date changed (A3)", r.ActiveDateChanges)

	ew.printf("\nFindings by rule (errors and warnings first)\n")
	if len(r.Rules) == 0 {
		ew.printf("  none\n")
	}
	for _, g := range r.Rules {
		extra := ""
		if g.Cleared > 0 {
			extra = fmt.Sprintf(" (%d cleared)", g.Cleared)
		}
		sev := fmt.Sprintf("%-7s", g.Severity)
		switch g.Severity {
		case SeverityError:
			sev = paint(ansiRed, sev)
		case SeverityWarning:
			sev = paint(ansiYellow, sev)
		}
		if g.KnockOn > 0 {
			extra += fmt.Sprintf(" (%d follow from rejected rows)", g.KnockOn)
		}
		ew.printf("  %s %-8s %-10s %-26s %d%s\n", sev, g.Rule, g.Kind, g.Code, g.Count, extra)
		if g.Severity == SeverityInfo {
			continue
		}
		for _, f := range g.Findings[:min(len(g.Findings), textFindings)] {
			ew.printf("           %s:%d %s: %s\n", f.File, f.Line, orDash(f.ServicePointID), oneLine(f.Message))
			for _, l := range f.LedTo {
				ew.printf("             -> led to %s %s at %s:%d\n", l.Rule, l.Code, l.File, l.Line)
			}
		}
		if g.Count > textFindings {
			ew.printf("           ... %d more (see the JSON or HTML report)\n", g.Count-textFindings)
		}
	}

	if len(r.Resolved) > 0 {
		ew.printf("\nRaised and cleared within the run (not open at the end)\n")
		for _, x := range r.Resolved[:min(len(r.Resolved), 10)] {
			ew.printf("  %-8s %-22s %s %s:%d -> %s:%d: %s\n", x.Raised.Rule, x.Raised.Code, orDash(x.Raised.ServicePointID),
				x.Raised.File, x.Raised.Line, x.Cleared.File, x.Cleared.Line, oneLine(x.Raised.Message))
		}
		if n := resolvedCount(r); n > 10 {
			ew.printf("  ... %d more (see the JSON or HTML report)\n", n-10)
		}
	}

	ew.printf("\nEligibility (customer at a premise, after the last file)\n")
	for _, p := range r.Eligibility {
		var rs []string
		for _, x := range p.Reasons {
			rs = append(rs, fmt.Sprintf("%s/%s %d", x.Code, x.Rule, x.Subjects))
		}
		ew.printf("  %-20s %d of %d eligible", p.Program, p.Eligible, p.Subjects)
		if len(rs) > 0 {
			ew.printf("; blocked by %s", strings.Join(rs, ", "))
		}
		ew.printf("\n")
	}

	if len(r.WorstOffenders) > 0 {
		ew.printf("\nWorst service points (errors and warnings)\n")
		for _, o := range r.WorstOffenders[:min(len(r.WorstOffenders), 10)] {
			ew.printf("  %-20s %s, %s (%s)\n", o.ServicePointID, plural(o.Rows, "row"), plural(o.Findings, "finding"), byRule(o.ByRule))
		}
	}
	ew.printf("\nRun  %s, usagestream %s, policy %s", r.Run.Time, r.Run.Version, r.Run.Policy.Name)
	if r.Run.Policy.SHA256 != "" {
		ew.printf(" (sha256 %s)", r.Run.Policy.SHA256)
	}
	ew.printf("\n")
	for _, in := range r.Run.Inputs {
		ew.printf("  %s  %d bytes  sha256 %s\n", in.Name, in.Size, in.SHA256)
	}

	return ew.err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// errWriter keeps the first write error, so the report code reads straight.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = fmt.Errorf("writing the report: %w", err)
	}
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// byRule lists counts by rule, most first.
func byRule(m map[string]int64) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// resolvedCount is how many anomalies were raised and cleared within the
// run (Report.Resolved may list fewer).
func resolvedCount(r *Report) int64 {
	var n int64
	for _, g := range r.Rules {
		n += g.Resolved
	}
	return n
}

// resolvedByRule says how many anomalies each rule raised and cleared
// within the run: "U2 3, U3 1".
func resolvedByRule(r *Report) string {
	m := map[string]int64{}
	for _, g := range r.Rules {
		m[g.Rule] += g.Resolved
	}
	var parts []string
	for _, rule := range slices.Sorted(maps.Keys(m)) {
		if m[rule] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", rule, m[rule]))
		}
	}
	return strings.Join(parts, ", ")
}

// plural writes a count with its noun, singular for one: "1 month", "2 months".
func plural[N int | int64](n N, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	if strings.HasSuffix(noun, "y") && !strings.HasSuffix(noun, "ey") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// deltas shows a service point's changes per rule.
func deltas(ds []Delta) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%s: %d fixed, %d new, %d persisting", orDash(d.Rule), d.Fixed, d.New, d.Persisting)
	}
	return strings.Join(parts, "; ")
}
