package validate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/records"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.json from this run (review the diff before committing)")

var now = time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)

func allKinds(n int) map[gen.Kind]int {
	m := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		m[k] = n
	}
	return m
}

// sample writes a full file with one of every anomaly (malformed rows
// included) and returns its path and labels.
func sample(t *testing.T, dir string) ([]string, []gen.Label) {
	t.Helper()
	full, err := gen.Generate(dir, gen.Config{ServicePoints: 60, Months: 14, Seed: 11, Now: now, Anomalies: allKinds(1)})
	if err != nil {
		t.Fatal(err)
	}
	return full.Files, full.Labels
}

func mustRun(t *testing.T, files []string, opts Options) *report.Report {
	t.Helper()
	if opts.Policy.Validation.HistoryMonths == 0 {
		opts.Policy = rules.DefaultPolicy()
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	if opts.Version == "" {
		opts.Version = "test"
	}
	rep, err := Run(context.Background(), files, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestReportGolden: the JSON report of a fixed generated sample, compared
// with a reviewed file (go test ./processors/validate -run Golden -update
// rewrites it).
func TestReportGolden(t *testing.T) {
	files, _ := sample(t, t.TempDir())
	rep := mustRun(t, files, Options{Examples: 5})
	var b bytes.Buffer
	if err := report.WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, b.Bytes()) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(b.String(), "\n")
		for i := range min(len(wl), len(gl)) {
			if wl[i] != gl[i] {
				t.Fatalf("report differs from %s at line %d:\nwant %s\ngot  %s\n(rerun with -update and review the diff if the change is intended)", golden, i+1, wl[i], gl[i])
			}
		}
		t.Fatalf("report differs from %s in length: %d lines, want %d", golden, len(gl), len(wl))
	}
}

// TestPebbleStoreGivesTheSameReport: with a cache of three states per stage,
// nearly every state goes through Pebble and back; the report must not
// change.
func TestPebbleStoreGivesTheSameReport(t *testing.T) {
	dir := t.TempDir()
	files := sampleReadBack(t, dir)
	mem := mustRun(t, files, Options{Store: StoreMemory})
	peb := mustRun(t, files, Options{Store: StorePebble, CacheStates: 3, TempDir: t.TempDir()})
	if mem.Store != StoreMemory || peb.Store != StorePebble {
		t.Fatalf("stores %s and %s", mem.Store, peb.Store)
	}
	peb.Store = mem.Store
	if !reflect.DeepEqual(mem, peb) {
		a, _ := json.Marshal(mem)
		b, _ := json.Marshal(peb)
		t.Fatalf("the Pebble store changes the report:\nmemory %s\npebble %s", a, b)
	}
	// auto picks Pebble above the size limit.
	if r := mustRun(t, files, Options{PebbleAbove: 1}); r.Store != StorePebble {
		t.Errorf("auto with a 1-byte limit kept state in %s", r.Store)
	}
}

// TestCountsReconcileAndLabelsAreFound: every line is accepted or rejected,
// per file and in total; the rejected-row findings match the reader's counts;
// every injected anomaly the rules report is among the findings at its
// service point, and every malformed row at its file and line.
func TestCountsReconcileAndLabelsAreFound(t *testing.T) {
	files, labels := sample(t, t.TempDir())
	rep := mustRun(t, files, Options{})
	var lines, acc, rej int64
	for _, f := range rep.Files {
		if f.Lines != f.Accepted+f.Rejected || f.Lines == 0 {
			t.Errorf("%s: %d lines, %d accepted + %d rejected", f.Name, f.Lines, f.Accepted, f.Rejected)
		}
		lines, acc, rej = lines+f.Lines, acc+f.Accepted, rej+f.Rejected
	}
	if lines != rep.Lines || acc != rep.Accepted || rej != rep.Rejected || rep.Lines != rep.Accepted+rep.Rejected {
		t.Errorf("totals %d = %d + %d, files sum to %d = %d + %d", rep.Lines, rep.Accepted, rep.Rejected, lines, acc, rej)
	}
	byCode := map[string]int64{}
	for _, c := range rep.RejectedByCode {
		byCode[c.Code] += c.Count
	}
	found := map[string]bool{}
	for _, g := range rep.Rules {
		if g.Kind == report.KindRejected && byCode[g.Code] != g.Count {
			t.Errorf("%s: %d findings, %d rows by the reader", g.Code, g.Count, byCode[g.Code])
		}
		for _, f := range g.Findings {
			found[f.Kind+" "+f.Code+" "+f.ServicePointID] = true
			found[fmt.Sprintf("%s %s %s:%d", f.Kind, f.Code, f.File, f.Line)] = true
		}
	}
	for _, p := range rep.Eligibility {
		for _, s := range p.Examples {
			for _, r := range s.Reasons {
				found["reason "+r.Code+" "+s.CustomerID] = true
			}
		}
	}
	expect := map[gen.Kind]string{
		gen.U2Gap: "anomaly USAGE_GAP", gen.U3Overlap: "anomaly USAGE_OVERLAP",
		gen.U4ExactOverwrite: "correction EXACT", gen.U5OverlappingOverwrite: "correction OVERLAPPING",
		gen.A2Supersede: "account SUPERSEDED", gen.A3ActiveDateChanged: "anomaly ACTIVE_DATE_CHANGED",
		gen.A4Termination: "account TERMINATED", gen.A5Reactivation: "account REACTIVATED",
		gen.A5InvalidReactivation: "anomaly REACTIVATION_REFUSED", gen.A8Deletion: "account DELETED",
		gen.A8InvalidDeletion: "anomaly DELETION_REFUSED",
	}
	// S1 is left out: its reason ends when the new service point has twelve
	// months, which it may reach before the file ends, and the report shows
	// eligibility at the end.
	reasons := map[gen.Kind]string{gen.A7RateNotAllowed: "RATE_NOT_ALLOWED", gen.C2PropertyManager: "PROPERTY_MANAGER"}
	checked := 0
	for _, l := range labels {
		var key string
		switch {
		case l.RejectCode != "":
			key = fmt.Sprintf("rejected %s %s:%d", l.RejectCode, l.File, l.Line)
		case expect[l.Kind] != "":
			key = expect[l.Kind] + " " + l.ServicePointID
		case reasons[l.Kind] != "":
			key = "reason " + reasons[l.Kind] + " " + l.CustomerID
		default:
			continue
		}
		checked++
		if !found[key] {
			t.Errorf("injected %s (%s line %d, %s) is not in the report as %q", l.Kind, l.File, l.Line, l.ServicePointID, key)
		}
	}
	if checked < 20 {
		t.Errorf("only %d labels checked", checked)
	}
}

// TestThresholdsDecide: each threshold of the policy's validation section
// passes or fails the same files.
func TestThresholdsDecide(t *testing.T) {
	dir := t.TempDir()
	files, _ := sample(t, dir)
	check := func(rep *report.Report, name string) report.Check {
		t.Helper()
		for _, c := range rep.Checks {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no check %q in %+v", name, rep.Checks)
		return report.Check{}
	}
	p := rules.DefaultPolicy()
	rep := mustRun(t, files, Options{Policy: p})
	if !rep.Pass {
		t.Fatalf("the sample fails the default policy: %+v", rep.Checks)
	}

	p.Validation.MaxRejectedRowShare = 0
	p.Validation.MaxFindingsPerRule = map[string]int64{"U2": 0, "U3": 5, "DC-2.4": 0}
	rep = mustRun(t, files, Options{Policy: p})
	if c := check(rep, "rejected rows"); c.Pass || c.Value <= 0 {
		t.Errorf("rejected rows with a share of 0 allowed: %+v", c)
	}
	// One gap was injected: over a cap of none.
	if c := check(rep, "findings of rule U2"); c.Pass || c.Value != 1 {
		t.Errorf("U2 capped at 0: %+v", c)
	}
	if c := check(rep, "findings of rule U3"); !c.Pass || c.Value != 1 {
		t.Errorf("U3 capped at 5: %+v", c)
	}
	if c := check(rep, "findings of rule DC-2.4"); c.Pass {
		t.Errorf("DC-2.4 capped at 0: %+v", c)
	}
	if rep.Pass {
		t.Error("the report passes with failing checks")
	}

	// Eight months of history fall short of thirteen.
	short, err := gen.Generate(t.TempDir(), gen.Config{ServicePoints: 30, Months: 8, Seed: 3, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	rep = mustRun(t, short.Files, Options{})
	if c := check(rep, "history"); c.Pass || c.Value != 0 || rep.Pass {
		t.Errorf("8 months of history pass: %+v", c)
	}
	p = rules.DefaultPolicy()
	p.Validation.HistoryMonths = 8
	if c := check(mustRun(t, short.Files, Options{Policy: p}), "history"); !c.Pass || c.Value != 1 {
		t.Errorf("8 months against a need of 8: %+v", c)
	}
}

// TestUnreadableFiles: a truncated gzip and a file with a reordered header are
// findings (the files check fails, the rows before the break count, the
// other files are read); a missing path is an error.
func TestUnreadableFiles(t *testing.T) {
	dir := t.TempDir()
	res, err := gen.Generate(dir, gen.Config{ServicePoints: 30, Months: 14, Seed: 4, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(res.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "opwr_gec_res_v1-19-0_full_20250401120000.gz")
	if err := os.WriteFile(truncated, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if _, err := text.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(text.String(), "\n", 2)
	cols := strings.Split(lines[0], "\t")
	cols[0], cols[1] = cols[1], cols[0]
	reordered := filepath.Join(dir, "opwr_gec_res_v1-19-0_full_20250402120000.tsv")
	if err := os.WriteFile(reordered, []byte(strings.Join(cols, "\t")+"\n"+lines[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := mustRun(t, []string{reordered, truncated, res.Files[0]}, Options{})
	if len(rep.Files) != 3 || rep.Files[0].Name != filepath.Base(res.Files[0]) {
		t.Fatalf("files %+v: want all three, in name-timestamp order", rep.Files)
	}
	if rep.Files[0].Error != "" {
		t.Errorf("the intact file: %s", rep.Files[0].Error)
	}
	tr := rep.Files[1]
	if tr.Error == "" || tr.Lines == 0 || tr.Lines >= rep.Files[0].Lines || !strings.Contains(tr.Error, tr.Name) {
		t.Errorf("truncated file: %+v", tr)
	}
	if ro := rep.Files[2]; ro.Error == "" || ro.Lines != 0 || !strings.Contains(ro.Error, "customer_id") && !strings.Contains(ro.Error, "premise_id") {
		t.Errorf("reordered header: %+v", ro)
	}
	if rep.Pass || rep.Checks[0].Pass || !strings.Contains(rep.Checks[0].Detail, "1 of 3") {
		t.Errorf("checks %+v", rep.Checks)
	}
	if _, err := Run(context.Background(), []string{filepath.Join(dir, "missing.gz")}, Options{Policy: rules.DefaultPolicy()}); err == nil || !strings.Contains(err.Error(), "missing.gz") {
		t.Errorf("missing file: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, res.Files, Options{Policy: rules.DefaultPolicy()}); err == nil {
		t.Error("a cancelled run returned a report")
	}
}

// TestSplitLayout: a customer file and its usage file, given in either order,
// are taken customer first; usage rows get their fuel from the customer rows,
// and the customer file's rows count as accepted rows without usage.
func TestSplitLayout(t *testing.T) {
	res, err := gen.Generate(t.TempDir(), gen.Config{ServicePoints: 40, Months: 14, Seed: 12, Now: now, Split: true,
		Anomalies: map[gen.Kind]int{gen.U2Gap: 1, gen.BadDate: 1}})
	if err != nil {
		t.Fatal(err)
	}
	rep := mustRun(t, []string{res.Files[1], res.Files[0]}, Options{})
	if len(rep.Files) != 2 || rep.Files[0].Layout != "customer" || rep.Files[1].Layout != "usage" {
		t.Fatalf("files %+v", rep.Files)
	}
	var usageRows int64
	for _, m := range rep.RowsByMonth {
		for fuel, n := range m.ByFuel {
			if fuel != "E" && fuel != "G" {
				t.Errorf("%s: %d usage rows of fuel %q", m.Month, n, fuel)
			}
			usageRows += n
		}
	}
	if usageRows != rep.Files[1].Accepted {
		t.Errorf("%d usage rows by month, %d accepted in the usage file", usageRows, rep.Files[1].Accepted)
	}
	if e := rep.Entities; e.ServicePoints < 40 || e.Customers == 0 || e.Accounts < e.ServicePoints {
		t.Errorf("entities %+v", e)
	}
	var gaps int64
	for _, g := range rep.Rules {
		if g.Code == rules.AnomalyUsageGap {
			gaps += g.Count - g.Cleared
		}
	}
	if gaps != 1 || rep.Rejected != 1 {
		t.Errorf("%d gaps and %d rejected rows, want the one injected of each", gaps, rep.Rejected)
	}
}

// TestU4CorrectionMessageShowsValueAndCharge: a correction that changed the
// charge only names old and new value and charge (issue 16 item 8).
func TestU4CorrectionMessageShowsValueAndCharge(t *testing.T) {
	dir := t.TempDir()
	f := handFile(t, dir, "20240301000000",
		month("202401", hand{"usage_value": "300", "usage_charge": "30"}),
		month("202401", hand{"usage_value": "300", "usage_charge": "45.5"}),
		month("202402", hand{"usage_value": "200"}),
		month("202402", hand{"usage_value": "210", "usage_charge": "20"}),
	)
	rep := mustRun(t, []string{f}, Options{})
	var msgs []string
	for _, c := range findings(rep, "U4", rules.CorrectionExact) {
		msgs = append(msgs, c.Message)
	}
	want := []string{
		"usage of the 31 days to 2024-01-31 (value 300, charge 30) replaced by value 300, charge 45.5 over the 31 days to 2024-01-31",
		"usage of the 29 days to 2024-02-29 (value 200, no charge) replaced by value 210, charge 20 over the 29 days to 2024-02-29",
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

// TestU2ImplausibleDateHidesNoGap: one typo date_to among 2024 bills is
// rejected (DATE_AFTER_FILE) instead of becoming the service point's newest
// date, so the gaps after it are reported and hold (issue 16 item 3).
func TestU2ImplausibleDateHidesNoGap(t *testing.T) {
	f := handFile(t, t.TempDir(), "20240901000000",
		month("202401", nil), month("202402", nil), month("202403", nil),
		hand{"date_to": "22040730", "duration": "30"}, // 20240430 with a typo year
		month("202405", nil), month("202407", nil), month("202408", nil),
	)
	rep := mustRun(t, []string{f}, Options{})
	rej := findings(rep, "DC-2.4", "DATE_AFTER_FILE")
	if len(rej) != 1 || rej[0].Line != 5 || rej[0].Field != "date_to" {
		t.Fatalf("DATE_AFTER_FILE findings: %+v", rej)
	}
	var gaps []string
	for _, g := range findings(rep, "U2", "USAGE_GAP") {
		gaps = append(gaps, fmt.Sprintf("%s cleared=%v line %d", g.Date, g.Cleared, g.Line))
	}
	if want := []string{"2024-04-01 cleared=false line 6", "2024-06-01 cleared=false line 7"}; !reflect.DeepEqual(gaps, want) {
		t.Errorf("gaps %v, want %v", gaps, want)
	}
}

// TestDataContractChecksAreFindings: each check the data contract lists as
// worth reporting is a finding of validate, with its rule id, a severity,
// the file and the line; never a silent pass (issue 16).
func TestDataContractChecksAreFindings(t *testing.T) {
	type want struct {
		rule, code string
		line       int64
	}
	cases := []struct {
		name  string
		files func(dir string) []string
		want  []want // findings of these codes; others are not checked
		no    []string
	}{
		{"U10 a duplicate row", func(dir string) []string {
			return []string{handFile(t, dir, "20240401000000", month("202401", nil), month("202402", nil), month("202402", nil))}
		}, []want{{"U10", "DUPLICATE_ROW", 4}}, nil},
		{"A10 usage after the final bill", func(dir string) []string {
			return []string{handFile(t, dir, "20240401000000", month("202401", nil), month("202402", hand{"inactive_date": "20240229"}), month("202403", hand{"inactive_date": "20240229"}))}
		}, []want{{"A10", "USAGE_AFTER_FINAL_BILL", 4}}, nil},
		{"U11 a period of implausible length", func(dir string) []string {
			return []string{handFile(t, dir, "20240401000000", hand{"date_to": "20240331", "duration": "10000"})}
		}, []want{{"U11", "IMPLAUSIBLE_PERIOD", 2}}, nil},
		{"S3 a service point moves to another premise", func(dir string) []string {
			return []string{handFile(t, dir, "20240401000000", month("202401", nil), month("202402", hand{"premise_id": "P2"}))}
		}, []want{{"S3", "SERVICE_POINT_MOVED", 3}}, nil},
		{"S3 a service point changes fuel", func(dir string) []string {
			return []string{handFile(t, dir, "20240401000000", month("202401", nil), month("202402", hand{"service_type": "G"}))}
		}, []want{{"S3", "FUEL_CHANGED", 3}}, nil},
		{"U12 usage no customer row names", func(dir string) []string {
			return []string{
				handLayoutFile(t, dir, records.LayoutCustomer, "20240401000000", "", hand{}),
				handLayoutFile(t, dir, records.LayoutUsage, "20240401000000", "", month("202401", nil), month("202401", hand{"service_point_id": "SP9"})),
			}
		}, []want{{"U12", "USAGE_WITHOUT_ACCOUNT", 3}}, nil},
		{"DC-2.1 a trailing empty line is no row", func(dir string) []string {
			return []string{handLayoutFile(t, dir, records.LayoutFull, "20240401000000", "\n", month("202401", nil))}
		}, nil, []string{"BLANK_LINE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := mustRun(t, tc.files(t.TempDir()), Options{})
			for _, w := range tc.want {
				fs := findings(rep, w.rule, w.code)
				if len(fs) != 1 {
					t.Fatalf("%s %s: %d findings, want 1 (%+v)", w.rule, w.code, len(fs), rep.Rules)
				}
				f := fs[0]
				if f.Line != w.line || f.File == "" || f.Severity != report.SeverityWarning || f.Message == "" {
					t.Errorf("finding %+v, want line %d, a file, a warning and a message", f, w.line)
				}
			}
			for _, g := range rep.Rules {
				for _, c := range tc.no {
					if g.Code == c {
						t.Errorf("finding %s: %+v", c, g)
					}
				}
			}
		})
	}
	// History counts only months covered by plausible periods (U11).
	rep := mustRun(t, []string{handFile(t, t.TempDir(), "20240401000000", hand{"date_to": "20240331", "duration": "10000"})}, Options{})
	for _, c := range rep.Checks {
		if c.Name == "history" && (c.Pass || c.Value != 0) {
			t.Errorf("one 10,000-day period passes the history check: %+v", c)
		}
	}
}

// sampleReadBack is sample's files and, after them, a customer/usage pair
// for the same service point ids: their states come back from the store.
func sampleReadBack(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := sample(t, dir)
	again, err := gen.Generate(dir, gen.Config{ServicePoints: 30, Months: 14, Seed: 13, Now: now.Add(time.Hour), Split: true})
	if err != nil {
		t.Fatal(err)
	}
	return append(files, again.Files...)
}

// TestMonthCountsActAsAMap: rows counted by month and fuel, months coming
// in any order (earlier ones after later ones), give the counts a map gives.
func TestMonthCountsActAsAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var c monthCounts
	want := map[monthFuel]int64{}
	fuels := []string{"E", "G", "?", "W"}
	for range 5000 {
		k := monthFuel{int32(2020*12 + rng.IntN(60) - 30), fuels[rng.IntN(len(fuels))]}
		c.add(k.month, k.fuel)
		want[k]++
	}
	got := map[monthFuel]int64{}
	c.each(func(k monthFuel, n int64) { got[k] = n })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("counts differ:\n got %v\nwant %v", got, want)
	}
}
