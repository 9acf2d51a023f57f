package report

import (
	"fmt"
	"io"
	"strings"
)

// WriteSummary writes a one-page Markdown summary for the utility's
// engineers: the verdict, the checks, what to fix (rejected rows by reason
// with the remedy, what follows from them, the other findings), the
// service points short of history, the change since the previous round,
// and the files it was made from. Ids of service points appear; no
// personal column does.
func WriteSummary(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	ew.printf("# Sample file validation: %s\n\n", verdict)
	ew.printf("%s, %s: %s accepted, %s rejected. %s and %s open, on %s.\n\n",
		pluralNum(int64(len(r.Files)), "file"), pluralNum(r.Lines, "row"), thousands(r.Accepted), thousands(r.Rejected),
		pluralNum(r.Totals.Errors, "error"), pluralNum(r.Totals.Warnings, "warning"), pluralNum(r.Totals.Rows, "row"))
	ew.printf("| check | result | detail |\n|---|---|---|\n")
	for _, c := range r.Checks {
		res := "pass"
		if !c.Pass {
			res = "**FAIL**"
		}
		ew.printf("| %s (`%s`) | %s | %s |\n", c.Name, c.ID, res, md(c.Detail))
	}
	for _, f := range r.Files {
		if f.Error != "" {
			what := "stopped early"
			if f.NotTaken {
				what = "not taken"
			}
			ew.printf("\n**%s %s**: %s\n", f.Name, what, md(f.Error))
		}
	}

	ew.printf("\n## What to fix\n\n")
	if len(r.RejectedByCode) == 0 {
		ew.printf("No row was rejected.\n")
	} else {
		ew.printf("| rows | reason | rule | how to fix |\n|---:|---|---|---|\n")
		for _, c := range r.RejectedByCode {
			ew.printf("| %s | %s | %s | %s |\n", thousands(c.Count), c.Code, c.Rule, md(FixFor(c.Code, c.Rule)))
		}
		ew.printf("\nEvery rejected row, with its line, column and value, is in the export of rejected rows (`--export-rejected`).\n")
	}
	for _, k := range r.KnockOns {
		ew.printf("\n%s rejected for %s left %s (%s): they go when the rows are fixed.\n",
			plural(k.Rows, "row"), k.Code, plural(k.Findings, "finding"), byRule(k.ByRule))
	}
	var warn []RuleFindings
	for _, g := range r.Rules {
		if g.Severity == SeverityWarning && g.Open > 0 {
			warn = append(warn, g)
		}
	}
	if len(warn) > 0 {
		ew.printf("\n| open | finding | rule | first at |\n|---:|---|---|---|\n")
		for _, g := range warn {
			first := ""
			if len(g.Findings) > 0 {
				f := g.Findings[0]
				first = fmt.Sprintf("%s:%d %s", f.File, f.Line, f.ServicePointID)
			}
			ew.printf("| %s | %s | %s (docs/rules.md#%s) | %s |\n", thousands(g.Open), g.Code, g.Rule, g.Rule, md(first))
		}
	}

	h := r.History
	if h.ShortCount > 0 {
		ew.printf("\n## History\n\n%s of %s active service points have %d months of history; %s short:\n\n",
			thousands(h.WithNeed), thousands(h.ServicePoints), h.NeedMonths, thousands(h.ShortCount))
		var parts []string
		for _, s := range h.Short[:min(len(h.Short), 10)] {
			parts = append(parts, fmt.Sprintf("%s (%s missing)", s.ServicePointID, plural(s.Missing, "month")))
		}
		ew.printf("%s", strings.Join(parts, ", "))
		if h.ShortCount > 10 {
			ew.printf(", and %s more", thousands(h.ShortCount-10))
		}
		ew.printf(".\n")
	}

	if c := r.Comparison; c != nil {
		ew.printf("\n## Since the previous round (%s)\n\n%d fixed, %d new, %d persisting.", c.Previous, c.Fixed, c.New, c.Persisting)
		if len(r.Rounds) > 1 {
			var t []string
			for _, rd := range r.Rounds {
				t = append(t, fmt.Sprint(rd.Errors+rd.Warnings))
			}
			ew.printf(" Errors and warnings per round: %s.", strings.Join(t, " → "))
		}
		ew.printf("\n")
	}

	ew.printf("\n---\nMade %s by usagestream %s, policy %s", r.Run.Time, r.Run.Version, r.Run.Policy.Name)
	if r.Run.Policy.SHA256 != "" {
		ew.printf(" (sha256 `%s`)", r.Run.Policy.SHA256[:min(len(r.Run.Policy.SHA256), 16)])
	}
	ew.printf(", from:\n")
	for _, in := range r.Run.Inputs {
		ew.printf("- `%s`, %s bytes, sha256 `%s`\n", in.Name, thousands(in.Size), in.SHA256)
	}
	return ew.err
}

// md keeps a value on its table row: no pipe or newline breaks the table.
func md(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
