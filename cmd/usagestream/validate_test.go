package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/gen"
)

// TestValidateExitStatuses runs `usagestream validate` as a user would: 0
// when the files pass the policy, 2 when a threshold fails, 1 when the run
// cannot go on; the JSON and HTML reports are written where asked.
func TestValidateExitStatuses(t *testing.T) {
	dir := t.TempDir()
	res := genFiles(t, dir, gen.Config{ServicePoints: 80, Months: 14, Seed: 21,
		Anomalies: map[gen.Kind]int{gen.U2Gap: 2, gen.BadDate: 1, gen.A3ActiveDateChanged: 1}})
	jsonPath, htmlPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "report.html")

	r := runCLI(t, nil, append([]string{"validate", "--json", jsonPath, "--html", htmlPath}, res.Files...)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "PASS") {
		t.Fatalf("exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep report.Report
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	if !rep.Pass || rep.Lines != res.Rows || rep.Rejected != 1 {
		t.Errorf("JSON report: pass %v, %d lines (%d generated), %d rejected", rep.Pass, rep.Lines, res.Rows, rep.Rejected)
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script src", "<link rel=\"stylesheet\"", "http://", "https://", "@import"} {
		if strings.Contains(string(page), bad) {
			t.Errorf("the HTML report holds %q: it must fetch nothing", bad)
		}
	}
	if !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), "USAGE_GAP") {
		t.Error("the HTML report has no chart or no gap finding")
	}

	// The same files against a policy that allows no gap.
	policy := filepath.Join(dir, "strict.yaml")
	if err := os.WriteFile(policy, []byte("validation:\n  max_findings_per_rule: {U2: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, nil, append([]string{"validate", "--policy", policy}, res.Files...)...)
	if r.code != exitValidationFailed || !strings.Contains(r.stdout, "FAIL findings of rule U2: 2 findings") || !strings.Contains(r.stderr, "validation failed") {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitValidationFailed, r.stdout, r.stderr)
	}

	// --json - writes the document alone on standard output.
	r = runCLI(t, nil, append([]string{"validate", "--json", "-", "--policy", policy}, res.Files...)...)
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Pass || r.code != exitValidationFailed {
		t.Errorf("--json -: exit %d, %v\n%.300s", r.code, err, r.stdout)
	}

	// Errors: a missing file, a misspelt policy key.
	r = runCLI(t, nil, "validate", filepath.Join(dir, "nope.gz"))
	if r.code != 1 || !strings.Contains(r.stderr, "nope.gz") {
		t.Errorf("missing file: exit %d, %s", r.code, r.stderr)
	}
	if err := os.WriteFile(policy, []byte("validation:\n  max_rejected_rows: 0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, nil, append([]string{"validate", "--policy", policy}, res.Files...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "validation.max_rejected_rows") {
		t.Errorf("misspelt policy key: exit %d, %s", r.code, r.stderr)
	}
}

// TestValidateKeepsPersonalDataOut: no street or business name of the file
// appears in the terminal summary, the logs, or the JSON and HTML reports,
// rejected rows included.
func TestValidateKeepsPersonalDataOut(t *testing.T) {
	dir := t.TempDir()
	res := genFiles(t, dir, gen.Config{ServicePoints: 40, Months: 14, Seed: 22,
		Anomalies: map[gen.Kind]int{gen.FieldCount: 2, gen.BadDate: 2, gen.NullToken: 2, gen.BadServiceType: 1}})
	jsonPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	// The export of rejected rows and the summary are for sending back:
	// they too keep personal columns out unless asked.
	exportPath, summaryPath := filepath.Join(dir, "rejected.tsv"), filepath.Join(dir, "summary.md")
	r := runCLI(t, nil, append([]string{"validate", "--log-level", "debug", "--examples", "0", "--json", jsonPath, "--html", htmlPath,
		"--export-rejected", exportPath, "--summary", summaryPath}, res.Files...)...)
	if r.code != 0 && r.code != exitValidationFailed {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	j, _ := os.ReadFile(jsonPath)
	h, _ := os.ReadFile(htmlPath)
	x, _ := os.ReadFile(exportPath)
	s, _ := os.ReadFile(summaryPath)
	out := r.stdout + r.stderr + string(j) + string(h) + string(x) + string(s)
	if len(j) == 0 || len(h) == 0 || !strings.Contains(string(s), "# Sample file validation") {
		t.Fatal("reports not written")
	}
	// 7 rows are rejected: at least a line each (one per reason) after
	// the header.
	if n := strings.Count(string(x), "\n") - 1; n < 7 || !strings.HasPrefix(string(x), "file\tline\t") {
		t.Fatalf("export of rejected rows: %d lines\n%s", n, x)
	}
	cols, rows := genRows(t, res.Files[0])
	checked := 0
	for _, fields := range rows {
		for _, c := range []string{"service_street_name", "business_name"} {
			if i := cols[c]; i < len(fields) && len(fields[i]) > 3 {
				checked++
				if strings.Contains(out, fields[i]) {
					t.Fatalf("personal value %q of %s appears in validate's output", fields[i], c)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no personal value to look for: the check proves nothing")
	}
}

// TestValidateIntervalFile (issue 17): `usagestream validate` takes an
// interval file with its billing file: the interval file is read to its end
// with the interval reader (not refused as a billing file), and the summary
// lists the service points short of I5's months of interval history.
func TestValidateIntervalFile(t *testing.T) {
	dir := t.TempDir()
	res := genFiles(t, dir, gen.Config{ServicePoints: 6, Months: 14, Seed: 23})
	iv, _, err := gen.GenerateIntervals(dir, gen.IntervalConfig{ServicePoints: 3, Minutes: 60, Days: 20,
		Start: dates.MustParse("20250101"), Seed: 1, Now: time.Date(2025, 3, 15, 13, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	jsonPath := filepath.Join(dir, "r.json")
	r := runCLI(t, nil, append([]string{"validate", "--json", jsonPath, iv}, res.Files...)...)
	if r.code != 0 && r.code != exitValidationFailed {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep report.Report
	b, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range rep.Files {
		if f.Name == filepath.Base(iv) {
			found = f.Layout == "interval60" && f.Error == "" && f.Accepted == 3*20*24
		}
	}
	if !found || rep.IntervalHistory == nil || len(rep.IntervalHistory.Short) != 3 {
		t.Errorf("interval file not validated: files %+v, interval history %+v", rep.Files, rep.IntervalHistory)
	}
	if !strings.Contains(r.stdout, "Intervals 0 of 3 service points with interval reads have 13 months") ||
		!strings.Contains(r.stdout, "SP-E-00000001") {
		t.Errorf("summary:\n%s", r.stdout)
	}
}

// TestValidateFileNotTaken (issue 17): a file that cannot be taken (a name
// off the convention, so no layout) is an error, exit 1, not a failed
// validation, and the message names --layout; with --layout it is taken.
// The summary has no colour when stdout is not a terminal.
func TestValidateFileNotTaken(t *testing.T) {
	dir := t.TempDir()
	res := genFiles(t, dir, gen.Config{ServicePoints: 10, Months: 14, Seed: 24})
	zr := openGzip(t, res.Files[0])
	plain := filepath.Join(dir, "export.tsv")
	out, err := os.Create(plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	out.Close()
	jsonPath := filepath.Join(dir, "r.json")
	r := runCLI(t, nil, "validate", "--json", jsonPath, plain)
	if r.code != 1 || !strings.Contains(r.stderr, "export.tsv") || !strings.Contains(r.stderr, "--layout") {
		t.Fatalf("misnamed file: exit %d, want 1 naming --layout\n%s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(jsonPath); err != nil || !strings.Contains(string(b), `"not_taken": true`) {
		t.Errorf("the JSON report is not written or does not mark the file: %v", err)
	}
	r = runCLI(t, nil, "validate", "--layout", "full", plain)
	if r.code != 0 || strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("with --layout: exit %d (want 0), colour codes in a pipe: %v\n%s\n%s", r.code, strings.Contains(r.stdout, "\x1b["), r.stdout, r.stderr)
	}
}

// TestValidateCompare (issue 17): the second round, compared with the
// first round's JSON report, says what was fixed, what is new and what
// persists, in the summary and the JSON.
func TestValidateCompare(t *testing.T) {
	dir := t.TempDir()
	first := genFiles(t, dir, gen.Config{ServicePoints: 40, Months: 14, Seed: 25,
		Anomalies: map[gen.Kind]int{gen.U2Gap: 2, gen.BadDate: 1}})
	round1 := filepath.Join(dir, "round1.json")
	if r := runCLI(t, nil, append([]string{"validate", "-q", "--json", round1}, first.Files...)...); r.code != 0 {
		t.Fatalf("round 1: exit %d\n%s", r.code, r.stderr)
	}
	dir2 := t.TempDir()
	second := genFiles(t, dir2, gen.Config{ServicePoints: 40, Months: 14, Seed: 25})
	round2 := filepath.Join(dir2, "round2.json")
	r := runCLI(t, nil, append([]string{"validate", "--compare", round1, "--json", round2}, second.Files...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Since the previous round") || !strings.Contains(r.stdout, "0 new") {
		t.Fatalf("round 2: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep report.Report
	b, _ := os.ReadFile(round2)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if c := rep.Comparison; c == nil || c.Fixed < 3 || c.New != 0 || len(rep.Rounds) != 2 {
		t.Errorf("comparison %+v, rounds %+v", c, rep.Rounds)
	}
}

// TestValidatePhases (issue 17): a historical run saves its state; an
// incremental run reads it and runs the continuity check (what it finds is
// TestPhaseIncremental's); without the state it is an error, exit 1.
func TestValidatePhases(t *testing.T) {
	dir := t.TempDir()
	hist := genFiles(t, dir, gen.Config{ServicePoints: 10, Months: 14, Seed: 26})
	state := filepath.Join(dir, "state")
	if r := runCLI(t, nil, append([]string{"validate", "-q", "--phase", "historical", "--save-state", state}, hist.Files...)...); r.code != 0 {
		t.Fatalf("historical: exit %d\n%s", r.code, r.stderr)
	}
	// The same service points two months later.
	inc := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 10, Months: 16, Seed: 26,
		Now: time.Date(2025, 5, 15, 12, 0, 0, 0, time.UTC)})
	r := runCLI(t, nil, append([]string{"validate", "--phase", "incremental", "--state-from", state}, inc.Files...)...)
	if r.code != 0 && r.code != exitValidationFailed {
		t.Fatalf("incremental: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "(phase incremental)") || !strings.Contains(r.stdout, "continues the loaded history") {
		t.Errorf("incremental summary:\n%s", r.stdout)
	}
	r = runCLI(t, nil, append([]string{"validate", "--phase", "incremental"}, inc.Files...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "--state-from") {
		t.Errorf("incremental without a state: exit %d, %s", r.code, r.stderr)
	}
}
