package validate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/records"
)

// hand is one row of a small hand-made billing file: the columns it names,
// the rest from handDefaults.
type hand map[string]string

var handDefaults = hand{"customer_id": "C1", "premise_id": "P1", "account_id": "A1", "active_date": "20230101",
	"rate_code": "R1", "service_point_id": "SP1", "service_type": "E", "usage_value": "500", "is_estimate": "A"}

// month is the full row of a calendar month, yyyymm, with the defaults.
func month(ym string, over hand) hand {
	s := dates.MustParse(ym + "01")
	e := s.AddMonths(1) - 1
	h := hand{"date_to": e.String(), "duration": strconv.Itoa(int(e - s + 1))}
	for k, v := range over {
		h[k] = v
	}
	return h
}

// handFile writes a full-layout file named with the given timestamp
// (yyyymmddHHMMSS) holding rows, and returns its path.
func handFile(t *testing.T, dir, stamp string, rows ...hand) string {
	t.Helper()
	return handLayoutFile(t, dir, records.LayoutFull, stamp, "", rows...)
}

// handLayoutFile writes a file of layout l holding rows, then tail, and
// returns its path.
func handLayoutFile(t *testing.T, dir string, l records.Layout, stamp, tail string, rows ...hand) string {
	t.Helper()
	cols := records.LayoutColumns(l)
	lines := []string{records.HeaderLine(l)}
	for _, r := range rows {
		parts := make([]string, len(cols))
		for i, c := range cols {
			v, ok := r[c.Name]
			if !ok {
				v = handDefaults[c.Name]
			}
			parts[i] = v
		}
		lines = append(lines, strings.Join(parts, "\t"))
	}
	path := filepath.Join(dir, "opwr_tst_res_v1-19-0_"+string(l)+"_"+stamp+".tsv")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"+tail), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// findings lists the findings of one rule and code, raised and cleared.
func findings(rep *report.Report, rule, code string) []report.Finding {
	var out []report.Finding
	for _, g := range rep.Rules {
		if g.Rule == rule && g.Code == code {
			out = append(out, g.Findings...)
		}
	}
	return out
}

// TestGapRaisedAndClearedWithinTheRunIsNotJudged (issue 16, U8): a
// historical file after the incrementals raises a gap at its first row and
// fills it at its last. Nothing is open at the end, so a cap of no U2
// finding passes; the gap is listed apart, raised and cleared, with their
// lines. A gap still open at the end fails the same cap.
func TestGapRaisedAndClearedWithinTheRunIsNotJudged(t *testing.T) {
	dir := t.TempDir()
	acct := hand{"active_date": "20220101"}
	var incrementals, historical []hand
	for m := 1; m <= 12; m++ {
		incrementals = append(incrementals, month(fmt.Sprintf("2023%02d", m), acct))
		historical = append(historical, month(fmt.Sprintf("2022%02d", m), acct))
	}
	files := []string{handFile(t, dir, "20240101000000", incrementals...), handFile(t, dir, "20240102000000", historical...)}
	p := rules.DefaultPolicy()
	p.Validation.MaxFindingsPerRule = map[string]int64{"U2": 0}
	rep := mustRun(t, files, Options{Policy: p})

	c := checkNamed(t, rep, "findings of rule U2")
	if !c.Pass || c.Value != 0 || !strings.Contains(c.Detail, "1 more raised and cleared within the run") {
		t.Errorf("U2 capped at 0 with the gap filled within the run: %+v", c)
	}
	if !rep.Pass {
		t.Errorf("the run fails: %+v", rep.Checks)
	}
	if len(rep.Resolved) != 1 {
		t.Fatalf("resolved: %+v, want the one gap", rep.Resolved)
	}
	r := rep.Resolved[0]
	hist := filepath.Base(files[1])
	if r.Raised.Code != rules.AnomalyUsageGap || r.Raised.Cleared || r.Raised.File != hist || r.Raised.Line != 2 ||
		!r.Cleared.Cleared || r.Cleared.File != hist || r.Cleared.Line != 13 {
		t.Errorf("resolved %+v, want the gap raised at %s:2 and cleared at :13", r, hist)
	}
	for _, g := range rep.Rules {
		if g.Rule == "U2" && (g.Open != 0 || g.Resolved != 1) {
			t.Errorf("U2 group: %d open, %d resolved; want 0 and 1", g.Open, g.Resolved)
		}
	}
	var text bytes.Buffer
	if err := report.WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "1 anomaly raised and cleared within the run") {
		t.Errorf("the terminal summary does not list the gap apart:\n%s", text.String())
	}

	// Without the last historical row the gap stays open: over the cap.
	files[1] = handFile(t, dir, "20240102000000", historical[:11]...)
	rep = mustRun(t, files, Options{Policy: p})
	if c := checkNamed(t, rep, "findings of rule U2"); c.Pass || c.Value != 1 || len(rep.Resolved) != 0 || rep.Pass {
		t.Errorf("an open gap under a cap of 0: %+v, resolved %+v", c, rep.Resolved)
	}
}

// checkNamed is the report's check of that name.
func checkNamed(t *testing.T, rep *report.Report, name string) report.Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, rep.Checks)
	return report.Check{}
}
