package validate

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/records"
)

// TestFindingsCountedOnce (issue 17): a refused or changed account (A3,
// A5, A8) is one finding, not an account finding and an anomaly; the totals
// count each finding once and the rows they sit on; a service point's rows
// are counted once however many findings a row has; the service points
// short of history are listed with how much they miss; the report names
// its time, version and inputs with their SHA-256; checks have stable ids.
func TestFindingsCountedOnce(t *testing.T) {
	files, _ := sample(t, t.TempDir())
	rep := mustRun(t, files, Options{})
	var warnings, errs int64
	rows := map[string]map[int64]bool{}
	for _, g := range rep.Rules {
		if g.Kind == report.KindAccount && g.Severity != report.SeverityInfo {
			t.Errorf("%s %s is an account finding beside its anomaly: counted twice", g.Rule, g.Code)
		}
		switch g.Severity {
		case report.SeverityWarning:
			warnings += g.Open
		case report.SeverityError:
			errs += g.Count
		}
		for _, f := range g.Findings {
			if f.Severity != report.SeverityInfo && f.ServicePointID != "" {
				if rows[f.ServicePointID] == nil {
					rows[f.ServicePointID] = map[int64]bool{}
				}
				rows[f.ServicePointID][f.Line] = true
			}
		}
	}
	if rep.Totals.Warnings != warnings || rep.Totals.Errors != errs || rep.Totals.Warnings != 10 {
		t.Errorf("totals %+v; the groups hold %d errors and %d warnings (10 distinct warnings in the sample)", rep.Totals, errs, warnings)
	}
	for _, o := range rep.WorstOffenders {
		if o.Rows != int64(len(rows[o.ServicePointID])) {
			t.Errorf("offender %s: %d rows, the findings sit on %d", o.ServicePointID, o.Rows, len(rows[o.ServicePointID]))
		}
	}
	if o := rep.WorstOffenders[0]; o.ServicePointID != "SP-E-00000023" || o.Rows != 2 || o.Findings != 4 {
		t.Errorf("worst offender %+v, want SP-E-00000023 with 4 findings on 2 rows", o)
	}
	h := rep.History
	if h.ShortCount != h.ServicePoints-h.WithNeed || len(h.Short) != int(h.ShortCount) || h.ShortCount == 0 {
		t.Fatalf("short history list %+v of %d short", h.Short, h.ServicePoints-h.WithNeed)
	}
	for _, s := range h.Short {
		if s.Months >= h.NeedMonths || s.Missing != h.NeedMonths-s.Months {
			t.Errorf("short %+v", s)
		}
	}
	if len(rep.ActiveDateChanges) != 2 || rep.ActiveDateChanges[0].Rule != "A3" || len(rep.Duplicates) != 1 || rep.Duplicates[0].Rule != "U4" {
		t.Errorf("lists: active date changes %+v, duplicates %+v", rep.ActiveDateChanges, rep.Duplicates)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if in := rep.Run.Inputs; len(in) != 1 || in[0].Name != filepath.Base(files[0]) || in[0].Size != int64(len(b)) || in[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("inputs %+v", in)
	}
	if rep.Run.Time != "2025-03-15T12:00:00Z" || rep.Run.Version != "test" || rep.Run.Policy.Name == "" {
		t.Errorf("run %+v", rep.Run)
	}
	var ids []string
	for _, c := range rep.Checks {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, ",") != "files,rejected-rows,history" {
		t.Errorf("check ids %v", ids)
	}
}

// TestKnockOnFindingsPointAtTheirRejectedRow (issue 17): a row rejected for
// a bad date leaves a gap at the service point's next row; the gap names
// the rejected row, and the report groups it under the rejected rows'
// reason. A gap with no rejected row before it names none.
func TestKnockOnFindingsPointAtTheirRejectedRow(t *testing.T) {
	dir := t.TempDir()
	var rows []hand
	for m := 1; m <= 12; m++ {
		rows = append(rows, month("2023"+string(rune('0'+m/10))+string(rune('0'+m%10)), nil))
	}
	rows[5]["date_to"] = "20230632"           // June rejected: July opens a gap
	rows = append(rows, month("202402", nil)) // January missing: a gap of its own
	path := handFile(t, dir, "20240301000000", rows...)
	rep := mustRun(t, []string{path}, Options{})
	gaps := findings(rep, "U2", rules.AnomalyUsageGap)
	if len(gaps) != 2 {
		t.Fatalf("gaps %+v, want July's and February's", gaps)
	}
	c := gaps[0].CausedBy
	if c == nil || c.Line != 7 || c.Code != records.CodeBadDate || c.File != filepath.Base(path) {
		t.Errorf("July's gap caused by %+v, want the rejected row at line 7", c)
	}
	rej := findings(rep, "DC-2.4", records.CodeBadDate)
	if len(rej) != 1 || len(rej[0].LedTo) != 1 || rej[0].LedTo[0].Rule != "U2" || rej[0].LedTo[0].Line != gaps[0].Line {
		t.Errorf("the rejected row %+v does not list the gap it led to (line %d)", rej, gaps[0].Line)
	}
	if gaps[1].CausedBy != nil {
		t.Errorf("February's gap caused by %+v, want nothing", gaps[1].CausedBy)
	}
	if len(rep.KnockOns) != 1 || rep.KnockOns[0].Code != records.CodeBadDate || rep.KnockOns[0].Rows != 1 ||
		rep.KnockOns[0].Findings != 1 || rep.KnockOns[0].ByRule["U2"] != 1 || rep.Totals.KnockOn != 1 {
		t.Errorf("knock-ons %+v, totals %+v", rep.KnockOns, rep.Totals)
	}
}

// TestFileErrorsHaveLineAndField (issue 17): a file that cannot be taken
// is marked so, with the line and field of the problem as fields of their
// own.
func TestFileErrorsHaveLineAndField(t *testing.T) {
	dir := t.TempDir()
	misnamed := filepath.Join(dir, "export.tsv")
	if err := os.WriteFile(misnamed, []byte(records.HeaderLine(records.LayoutFull)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A usage-layout file named as a full one: its header is wrong.
	wrong := handLayoutFile(t, dir, records.LayoutUsage, "20240101000000", "", month("202301", nil))
	renamed := strings.Replace(wrong, "_usage_", "_full_", 1)
	if err := os.Rename(wrong, renamed); err != nil {
		t.Fatal(err)
	}
	rep := mustRun(t, []string{misnamed, renamed}, Options{})
	got := map[string]report.File{}
	for _, f := range rep.Files {
		got[f.Name] = f
	}
	if f := got["export.tsv"]; !f.NotTaken || f.ErrorLine != 0 || !strings.Contains(f.Error, "export.tsv") {
		t.Errorf("misnamed file %+v", f)
	}
	if f := got[filepath.Base(renamed)]; !f.NotTaken || f.ErrorLine != 1 || f.ErrorField == "" {
		t.Errorf("wrong layout %+v", f)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDuplicatesListed (issue 17): a row sent twice with the same values
// (U10) and a period sent again with another value (U4) are listed as
// duplicates, with their lines.
func TestDuplicatesListed(t *testing.T) {
	var rows []hand
	for m := 1; m <= 12; m++ {
		rows = append(rows, month("2023"+string(rune('0'+m/10))+string(rune('0'+m%10)), nil))
	}
	again := month("202303", nil)
	other := month("202304", hand{"usage_value": "777"})
	rows = append(rows, again, other)
	rep := mustRun(t, []string{handFile(t, t.TempDir(), "20240101000000", rows...)}, Options{})
	got := map[string]int64{}
	for _, f := range rep.Duplicates {
		got[f.Rule] = f.Line
	}
	if len(rep.Duplicates) != 2 || got["U10"] != 14 || got["U4"] != 15 {
		t.Errorf("duplicates %+v, want U10 at line 14 and U4 at line 15", rep.Duplicates)
	}
}
