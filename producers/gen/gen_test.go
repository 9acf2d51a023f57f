package gen

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// The tests read the generator's output by splitting lines and tabs, never
// through the billing reader: the two are written apart and check each other.

var testNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

var nameRE = regexp.MustCompile(`^opwr_([a-z0-9]{3,4})_(res|nonres|nonres-smb|nonres-lci)_(v\d+(?:-\d+)*)_(full|customer|usage)_(\d{14})\.(gz|zip|tsv)$`)

// tfile is one output file as text lines; lines[0] is the header (line 1).
type tfile struct {
	name   string
	layout records.Layout
	cols   map[string]int
	lines  []string
}

func (f *tfile) fields(line int64) []string { return strings.Split(f.lines[line-1], "\t") }

func (f *tfile) get(fs []string, col string) string {
	i, ok := f.cols[col]
	if !ok || i >= len(fs) {
		return ""
	}
	return fs[i]
}

func readOutput(t *testing.T, path string) *tfile {
	t.Helper()
	base := filepath.Base(path)
	m := nameRE.FindStringSubmatch(base)
	if m == nil {
		t.Fatalf("file name %q does not follow the convention", base)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var text []byte
	switch m[6] {
	case "gz":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		if text, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
	case "zip":
		zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		if len(zr.File) != 1 || strings.ContainsAny(zr.File[0].Name, `/\`) || zr.File[0].FileInfo().IsDir() {
			t.Fatalf("%s: zip must hold exactly one file and no folders, has %d entries", base, len(zr.File))
		}
		rc, err := zr.File[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		if text, err = io.ReadAll(rc); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
	default:
		text = raw
	}
	return parseText(t, base, records.Layout(m[4]), text)
}

func parseText(t *testing.T, name string, l records.Layout, text []byte) *tfile {
	t.Helper()
	if len(text) == 0 || text[len(text)-1] != '\n' || bytes.ContainsRune(text, '\r') {
		t.Fatalf("%s: must end with LF and hold no CR", name)
	}
	f := &tfile{name: name, layout: l, lines: strings.Split(string(text[:len(text)-1]), "\n"), cols: map[string]int{}}
	if f.lines[0] != records.HeaderLine(l) {
		t.Fatalf("%s: header\n%q\nwant\n%q", name, f.lines[0], records.HeaderLine(l))
	}
	for i, c := range strings.Split(f.lines[0], "\t") {
		f.cols[c] = i
	}
	return f
}

// output is everything one Generate call wrote, with the labels by file and line.
type outputSet struct {
	cfg    Config
	res    Result
	files  map[records.Layout]*tfile
	byLine map[string]map[int64]Label
}

func generate(t *testing.T, cfg Config) *outputSet {
	t.Helper()
	dir := t.TempDir()
	res, err := Generate(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := &outputSet{cfg: cfg.WithDefaults(), res: res, files: map[records.Layout]*tfile{}, byLine: map[string]map[int64]Label{}}
	for _, p := range res.Files {
		f := readOutput(t, p)
		o.files[f.layout] = f
		if got, want := int64(len(f.lines)-1), res.RowsByFile[f.name]; got != want {
			t.Errorf("%s: %d data lines, RowsByFile says %d", f.name, got, want)
		}
	}
	js, err := os.ReadFile(filepath.Join(dir, "labels.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fromDisk []Label
	if err := json.Unmarshal(js, &fromDisk); err != nil {
		t.Fatalf("labels.json: %v", err)
	}
	if !slices.Equal(fromDisk, res.Labels) {
		t.Errorf("labels.json differs from Result.Labels")
	}
	for _, l := range res.Labels {
		if o.byLine[l.File] == nil {
			o.byLine[l.File] = map[int64]Label{}
		}
		if _, dup := o.byLine[l.File][l.Line]; dup {
			t.Errorf("two labels on %s line %d", l.File, l.Line)
		}
		o.byLine[l.File][l.Line] = l
	}
	return o
}

var testConfigs = []struct {
	name string
	cfg  Config
}{
	{"full-gzip", Config{ServicePoints: 500, Months: 14, Seed: 7, Now: testNow, Anomalies: allKinds(2)}},
	{"full-zip-nonres", Config{Population: "nonres", ServicePoints: 400, Months: 8, Seed: 3, Now: testNow, Compression: "zip", Anomalies: allKinds(1)}},
	{"split-gzip", Config{ServicePoints: 500, Months: 14, Seed: 11, Now: testNow, Split: true, Anomalies: allKinds(2)}},
	{"split-none-lci", Config{Population: "nonres-lci", Utility: "abcd", ServicePoints: 300, Months: 6, Seed: 5, Now: testNow, Split: true, Compression: "none", Anomalies: allKinds(1)}},
	{"full-none-clean-nogas", Config{ServicePoints: 200, Months: 3, Seed: 1, Now: testNow, Compression: "none", GasShare: -1}},
}

func allKinds(n int) map[Kind]int {
	m := map[Kind]int{}
	for _, k := range Kinds() {
		m[k] = n
	}
	return m
}

func TestGenerateFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range testConfigs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := generate(t, tc.cfg)
			wantFiles := 1
			if tc.cfg.Split {
				wantFiles = 2
			}
			if len(o.res.Files) != wantFiles {
				t.Fatalf("%d files, want %d", len(o.res.Files), wantFiles)
			}
			checkFieldCounts(t, o)
			checkLabels(t, o)
			if f := o.files[records.LayoutFull]; f != nil {
				checkCleanFull(t, o, f)
				checkRules(t, o, f)
			} else {
				checkCleanSplit(t, o)
			}
		})
	}
}

// checkFieldCounts: every line has the header's field count, except the
// FIELD_COUNT rows, which have one fewer.
func checkFieldCounts(t *testing.T, o *outputSet) {
	for _, f := range o.files {
		want := len(records.LayoutColumns(f.layout))
		for i, line := range f.lines {
			n := strings.Count(line, "\t") + 1
			l, labelled := o.byLine[f.name][int64(i+1)]
			if labelled && l.Kind == FieldCount {
				if n != want-1 {
					t.Errorf("%s:%d: FIELD_COUNT row has %d fields, want %d", f.name, i+1, n, want-1)
				}
				continue
			}
			if n != want {
				t.Errorf("%s:%d: %d fields, want %d", f.name, i+1, n, want)
			}
		}
	}
}

func checkLabels(t *testing.T, o *outputSet) {
	count := map[Kind]int{}
	for _, l := range o.res.Labels {
		count[l.Kind]++
		var f *tfile
		for _, ff := range o.files {
			if ff.name == l.File {
				f = ff
			}
		}
		if f == nil {
			t.Errorf("label %s names file %q, not written", l.Kind, l.File)
			continue
		}
		if l.Line < 2 || l.Line > int64(len(f.lines)) {
			t.Errorf("label %s: line %d outside %s (%d lines)", l.Kind, l.Line, f.name, len(f.lines))
			continue
		}
		fs := f.fields(l.Line)
		if got := f.get(fs, "service_point_id"); got != l.ServicePointID {
			t.Errorf("label %s at %s:%d: service point %q, row has %q", l.Kind, f.name, l.Line, l.ServicePointID, got)
		}
		if f.layout != records.LayoutUsage {
			if got := f.get(fs, "customer_id"); got != l.CustomerID {
				t.Errorf("label %s at %s:%d: customer %q, row has %q", l.Kind, f.name, l.Line, l.CustomerID, got)
			}
			if got := f.get(fs, "premise_id"); got != l.PremiseID {
				t.Errorf("label %s at %s:%d: premise %q, row has %q", l.Kind, f.name, l.Line, l.PremiseID, got)
			}
		}
		if l.Rule != l.Kind.Rule() || l.RejectCode != l.Kind.RejectCode() || l.Note == "" {
			t.Errorf("label %+v: rule, reject code or note wrong", l)
		}
		if _, err := dates.Parse(l.Date); err != nil {
			t.Errorf("label %s: date %q: %v", l.Kind, l.Date, err)
		}
	}
	for k, n := range o.cfg.Anomalies {
		if count[k] != n {
			t.Errorf("%s: %d labels, want %d", k, count[k], n)
		}
	}
	for k := range count {
		if o.cfg.Anomalies[k] == 0 {
			t.Errorf("%s: labels though none asked", k)
		}
	}
}

// trow is one parsed row of a service point.
type trow struct {
	line       int64
	fs         []string
	start, end dates.Date
	dur        int
	ok         bool // date_to and duration parsed
}

func rowsBySP(f *tfile) (map[string][]trow, []string) {
	by := map[string][]trow{}
	var order []string
	for i := 1; i < len(f.lines); i++ {
		fs := strings.Split(f.lines[i], "\t")
		sp := f.get(fs, "service_point_id")
		r := trow{line: int64(i + 1), fs: fs}
		if f.layout != records.LayoutCustomer {
			end, err1 := dates.Parse(f.get(fs, "date_to"))
			dur, err2 := strconv.Atoi(f.get(fs, "duration"))
			if err1 == nil && err2 == nil {
				r.end, r.dur, r.start, r.ok = end, dur, end.AddDays(1-dur), true
			}
		}
		if _, seen := by[sp]; !seen {
			order = append(order, sp)
		}
		by[sp] = append(by[sp], r)
	}
	return by, order
}

func labelledSPs(o *outputSet) map[string]bool {
	m := map[string]bool{}
	for _, l := range o.res.Labels {
		m[l.ServicePointID] = true
	}
	return m
}

var allowedRates = []string{"R1", "R2", "TOU1"}

// checkUsageClean: periods chain (U1), 28-33 days, valid non-negative values.
func checkUsageClean(t *testing.T, f *tfile, sp string, rows []trow) {
	t.Helper()
	for i, r := range rows {
		if !r.ok {
			t.Errorf("%s:%d: unlabelled service point %s: bad date_to or duration", f.name, r.line, sp)
			continue
		}
		if r.dur < 28 || r.dur > 33 {
			t.Errorf("%s:%d: %s: duration %d outside 28-33", f.name, r.line, sp, r.dur)
		}
		if i > 0 && r.start != rows[i-1].end+1 {
			t.Errorf("%s:%d: %s: period starts %s, previous ended %s (U1)", f.name, r.line, sp, r.start, rows[i-1].end)
		}
		v := f.get(r.fs, "usage_value")
		if x, err := strconv.ParseFloat(v, 64); err != nil || x < 0 || strings.Contains(v, ",") {
			t.Errorf("%s:%d: %s: usage_value %q", f.name, r.line, sp, v)
		}
		if c := f.get(r.fs, "usage_charge"); c != "" {
			if x, err := strconv.ParseFloat(c, 64); err != nil || x < 0 {
				t.Errorf("%s:%d: %s: usage_charge %q", f.name, r.line, sp, c)
			}
		}
		if e := f.get(r.fs, "is_estimate"); e != "A" && e != "E" {
			t.Errorf("%s:%d: %s: is_estimate %q", f.name, r.line, sp, e)
		}
	}
}

// checkAccountClean: one clean account per service point.
func checkAccountClean(t *testing.T, f *tfile, sp string, rows []trow, firstStart dates.Date) {
	t.Helper()
	acct := f.get(rows[0].fs, "account_id")
	for _, r := range rows {
		fs := r.fs
		for _, c := range []string{"customer_id", "premise_id", "account_id", "active_date", "service_type"} {
			if f.get(fs, c) == "" {
				t.Errorf("%s:%d: %s: required %s empty", f.name, r.line, sp, c)
			}
		}
		if a := f.get(fs, "account_id"); a != acct {
			t.Errorf("%s:%d: %s: second account %s after %s", f.name, r.line, sp, a, acct)
		}
		if f.get(fs, "inactive_date") != "" || f.get(fs, "is_account_deletion") != "" {
			t.Errorf("%s:%d: %s: inactive_date or deletion set", f.name, r.line, sp)
		}
		if !slices.Contains(allowedRates, f.get(fs, "rate_code")) {
			t.Errorf("%s:%d: %s: rate %q", f.name, r.line, sp, f.get(fs, "rate_code"))
		}
		st := f.get(fs, "service_type")
		if st != "E" && st != "G" || !strings.HasPrefix(sp, "SP-"+st+"-") {
			t.Errorf("%s:%d: %s: service type %q", f.name, r.line, sp, st)
		}
		if ad, err := dates.Parse(f.get(fs, "active_date")); err != nil || (firstStart != 0 && ad != firstStart) {
			t.Errorf("%s:%d: %s: active_date %q, first period starts %s", f.name, r.line, sp, f.get(fs, "active_date"), firstStart)
		}
		if z := f.get(fs, "service_zip_code"); len(z) != 5 || strings.Trim(z, "0123456789") != "" {
			t.Errorf("%s:%d: zip %q", f.name, r.line, z)
		}
		if s := f.get(fs, "service_state"); len(s) != 2 || strings.ToUpper(s) != s {
			t.Errorf("%s:%d: state %q", f.name, r.line, s)
		}
	}
}

func checkCleanFull(t *testing.T, o *outputSet, f *tfile) {
	by, order := rowsBySP(f)
	labelled := labelledSPs(o)
	premises := map[string]map[string]bool{} // customer -> premises
	for _, sp := range order {
		rows := by[sp]
		for _, r := range rows {
			c := f.get(r.fs, "customer_id")
			if premises[c] == nil {
				premises[c] = map[string]bool{}
			}
			premises[c][f.get(r.fs, "premise_id")] = true
		}
		if labelled[sp] {
			continue
		}
		if len(rows) != o.cfg.Months && !isReplacedSP(o, f, sp) {
			t.Errorf("%s: %d rows, want %d", sp, len(rows), o.cfg.Months)
		}
		checkUsageClean(t, f, sp, rows)
		checkAccountClean(t, f, sp, rows, rows[0].start)
	}
	checkPropertyManagers(t, o, premises)
}

// isReplacedSP: the old service point of an S1 replacement stops early.
func isReplacedSP(o *outputSet, f *tfile, sp string) bool {
	for _, l := range o.res.Labels {
		if l.Kind == S1ServicePointReplace && strings.Contains(l.Note, "replaces "+sp+" ") {
			return true
		}
	}
	return false
}

// checkPropertyManagers: only C2 customers hold accounts at more than two premises.
func checkPropertyManagers(t *testing.T, o *outputSet, premises map[string]map[string]bool) {
	pm := map[string]bool{}
	for _, l := range o.res.Labels {
		if l.Kind == C2PropertyManager {
			pm[l.CustomerID] = true
			if n := len(premises[l.CustomerID]); n != 3 {
				t.Errorf("C2 customer %s at %d premises, want 3", l.CustomerID, n)
			}
		}
	}
	for c, ps := range premises {
		if len(ps) > 2 && !pm[c] {
			t.Errorf("customer %s at %d premises without a C2 label", c, len(ps))
		}
	}
}

func checkCleanSplit(t *testing.T, o *outputSet) {
	cf, uf := o.files[records.LayoutCustomer], o.files[records.LayoutUsage]
	if cf == nil || uf == nil {
		t.Fatal("split output lacks a customer or usage file")
	}
	cby, corder := rowsBySP(cf)
	uby, _ := rowsBySP(uf)
	labelled := labelledSPs(o)
	premises := map[string]map[string]bool{}
	for _, sp := range corder {
		for _, r := range cby[sp] {
			c := cf.get(r.fs, "customer_id")
			if premises[c] == nil {
				premises[c] = map[string]bool{}
			}
			premises[c][cf.get(r.fs, "premise_id")] = true
		}
		if _, ok := uby[sp]; !ok {
			t.Errorf("%s in the customer file has no usage", sp)
		}
		if labelled[sp] {
			continue
		}
		if n := len(cby[sp]); n != 1 {
			t.Errorf("%s: %d customer rows, want one per account", sp, n)
		}
		urows := uby[sp]
		checkUsageClean(t, uf, sp, urows)
		checkAccountClean(t, cf, sp, cby[sp], urows[0].start)
	}
	for sp := range uby {
		if _, ok := cby[sp]; !ok {
			t.Errorf("%s in the usage file has no customer row", sp)
		}
	}
	checkPropertyManagers(t, o, premises)
}

// checkRules checks, on the full layout, that each labelled row has the shape
// its rule describes (docs/rules.md), so that a processor finds exactly that.
func checkRules(t *testing.T, o *outputSet, f *tfile) {
	by, _ := rowsBySP(f)
	// Service points by premise, for S1 and S2.
	spsAt := map[string][]string{}
	for sp, rows := range by {
		p := f.get(rows[0].fs, "premise_id")
		spsAt[p] = append(spsAt[p], sp)
	}
	for _, l := range o.res.Labels {
		rows := by[l.ServicePointID]
		i := slices.IndexFunc(rows, func(r trow) bool { return r.line == l.Line })
		if i < 0 {
			t.Errorf("%s: line %d is not a row of %s", l.Kind, l.Line, l.ServicePointID)
			continue
		}
		r := rows[i]
		get := func(j int, col string) string { return f.get(rows[j].fs, col) }
		fail := func(format string, args ...any) {
			t.Errorf("%s (%s) at line %d: %s; note: %s", l.Kind, l.Rule, l.Line, fmt.Sprintf(format, args...), l.Note)
		}
		last := len(rows) - 1
		switch l.Kind {
		case U2Gap:
			if i == 0 || r.start <= rows[i-1].end+1 || l.Date != dateString(rows[i-1].end+1) {
				fail("no gap before the row")
			}
		case U3Overlap:
			if i == 0 || i == last || r.start > rows[i-1].end {
				fail("no overlap with the previous period, or newest row")
			}
			for _, p := range rows[:i] {
				if p.start == r.start {
					fail("aligned to an existing start: would be U5")
				}
			}
		case U4ExactOverwrite:
			if i == 0 || rows[i-1].end != r.end || rows[i-1].dur != r.dur || get(i-1, "usage_value") == get(i, "usage_value") {
				fail("not the same period with another value")
			}
		case U5OverlappingOverwrite:
			aligned := false
			for _, p := range rows[:i] {
				if p.start == r.start && r.dur > p.dur {
					aligned = true
				}
				if p.end >= r.end {
					fail("an earlier period ends at or after it")
				}
			}
			if i != last || !aligned {
				fail("not the newest row, or not starting at an existing start and longer")
			}
		case U7ZeroLapse:
			if get(i, "usage_value") != "0" {
				fail("usage not zero")
			}
			checkUsageClean(t, f, l.ServicePointID, rows)
		case A2Supersede:
			if i == 0 || get(i, "account_id") == get(i-1, "account_id") || get(i, "customer_id") == get(i-1, "customer_id") ||
				get(i, "active_date") <= get(i-1, "active_date") || get(i, "active_date") != dateString(r.start) {
				fail("not a new customer and account with a newer active_date")
			}
			checkUsageClean(t, f, l.ServicePointID, rows)
		case A3ActiveDateChanged:
			if i == 0 || get(i, "account_id") != get(i-1, "account_id") || get(i, "active_date") == get(i-1, "active_date") {
				fail("active_date unchanged or account changed")
			}
		case A4Termination:
			if i != last || get(i, "inactive_date") != dateString(r.end) {
				fail("not a final row with inactive_date = date_to")
			}
		case A5Reactivation, A5InvalidReactivation:
			sameActive := get(i, "active_date") == get(i-1, "active_date")
			if i == 0 || get(i-1, "inactive_date") == "" || get(i, "inactive_date") != "" ||
				get(i, "account_id") != get(i-1, "account_id") || sameActive != (l.Kind == A5Reactivation) {
				fail("not a reactivation attempt of the shape asked")
			}
		case A7RateNotAllowed:
			if i == 0 || get(i, "rate_code") != "MED1" || get(i-1, "rate_code") == "MED1" ||
				get(i, "account_id") != get(i-1, "account_id") || get(i, "active_date") != get(i-1, "active_date") {
				fail("not a switch to MED1 on the same account")
			}
		case A8Deletion, A8InvalidDeletion:
			if !slices.Contains(deletionFlag, get(i, "is_account_deletion")) {
				fail("no deletion flag")
			}
			newer := false
			for j := range i {
				if get(j, "account_id") != get(i, "account_id") && get(j, "active_date") > get(i, "active_date") {
					newer = true
				}
			}
			if newer != (l.Kind == A8InvalidDeletion) {
				fail("most-recent account: %v", !newer)
			}
		case C2PropertyManager:
			ps := map[string]bool{}
			for _, rr := range by {
				for _, x := range rr {
					if f.get(x.fs, "customer_id") == l.CustomerID {
						ps[f.get(x.fs, "premise_id")] = true
						if f.get(x.fs, "inactive_date") != "" {
							fail("an account is inactive")
						}
					}
				}
			}
			if len(ps) != 3 {
				fail("customer at %d premises", len(ps))
			}
		case S1ServicePointReplace:
			old := ""
			for _, sp := range spsAt[l.PremiseID] {
				if sp != l.ServicePointID && sp[:5] == l.ServicePointID[:5] {
					old = sp
				}
			}
			if i != 0 || old == "" || by[old][len(by[old])-1].end >= r.start {
				fail("no old service point of the same fuel ending before the new one starts")
			}
		case S2DualFuel:
			hasE := false
			for _, sp := range spsAt[l.PremiseID] {
				if strings.HasPrefix(sp, "SP-E-") && f.get(by[sp][0].fs, "customer_id") == l.CustomerID {
					hasE = true
				}
			}
			if i != 0 || !strings.HasPrefix(l.ServicePointID, "SP-G-") || !hasE {
				fail("not the first row of a gas service point with an electric sibling")
			}
		case U9NegativeUsage:
			if !strings.HasPrefix(get(i, "usage_value"), "-") {
				fail("usage not negative")
			}
		case BadDate:
			if _, err := dates.Parse(get(i, "date_to")); err == nil {
				fail("date_to %s is a real date", get(i, "date_to"))
			}
		case NullToken:
			if !slices.Contains(nullTokens, get(i, "usage_value")) && !slices.Contains(nullTokens, get(i, "usage_charge")) {
				fail("no null token")
			}
		case ThousandsSeparator:
			if !strings.Contains(get(i, "usage_value"), ",") {
				fail("no thousands separator")
			}
		case BadServiceType:
			if st := get(i, "service_type"); st == "E" || st == "G" || st == "W" {
				fail("service type %q is valid", st)
			}
		case BadDuration:
			if get(i, "duration") != "0" {
				fail("duration %q", get(i, "duration"))
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	for _, tc := range testConfigs[:4] {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := t.TempDir(), t.TempDir()
			ra, err := Generate(a, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Generate(b, tc.cfg); err != nil {
				t.Fatal(err)
			}
			for _, p := range append(ra.Files, filepath.Join(a, "labels.json")) {
				x, _ := os.ReadFile(p)
				y, _ := os.ReadFile(filepath.Join(b, filepath.Base(p)))
				if !bytes.Equal(x, y) {
					t.Errorf("%s differs between two runs with the same seed", filepath.Base(p))
				}
			}
			other := tc.cfg
			other.Seed++
			c := t.TempDir()
			if _, err := Generate(c, other); err != nil {
				t.Fatal(err)
			}
			x, _ := os.ReadFile(ra.Files[0])
			y, _ := os.ReadFile(filepath.Join(c, filepath.Base(ra.Files[0])))
			if bytes.Equal(x, y) {
				t.Error("another seed gave the same bytes")
			}
		})
	}
}

// WriteFull and an uncompressed full Generate write the same text.
func TestWriteFullMatchesGenerate(t *testing.T) {
	t.Parallel()
	cfg := Config{ServicePoints: 300, Months: 12, Seed: 9, Now: testNow, Compression: "none", Anomalies: allKinds(1)}
	var buf bytes.Buffer
	rows, labels, err := WriteFull(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Generate(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	disk, _ := os.ReadFile(res.Files[0])
	if !bytes.Equal(buf.Bytes(), disk) {
		t.Error("WriteFull text differs from Generate's .tsv")
	}
	if rows != res.Rows || !slices.Equal(labels, res.Labels) {
		t.Errorf("WriteFull: %d rows, %d labels; Generate: %d rows, %d labels", rows, len(labels), res.Rows, len(res.Labels))
	}
}

func TestServicePointCount(t *testing.T) {
	t.Parallel()
	for _, gas := range []float64{-1, 0.3, 1} {
		cfg := Config{ServicePoints: 2000, Months: 2, Seed: 2, Now: testNow, GasShare: gas}
		var buf bytes.Buffer
		rows, _, err := WriteFull(&buf, cfg)
		if err != nil {
			t.Fatal(err)
		}
		sps := rows / 2
		if sps < 1900 || sps > 2100 {
			t.Errorf("gas share %v: %d service points, want about 2000", gas, sps)
		}
	}
}

// The defaults start in January of the previous year and end before Now.
func TestDefaults(t *testing.T) {
	t.Parallel()
	c := Config{Now: testNow}.WithDefaults()
	if c.Start != dates.MustParse("20240101") || c.Utility != "gec" || c.Population != "res" ||
		c.SpecVersion != "v1-19-0" || c.Compression != "gzip" || c.GasShare != 0.3 || c.Months < 12 {
		t.Fatalf("defaults: %+v", c)
	}
	c.ServicePoints = 300
	var buf bytes.Buffer
	if _, _, err := WriteFull(&buf, c); err != nil {
		t.Fatal(err)
	}
	f := parseText(t, "defaults", records.LayoutFull, buf.Bytes())
	now := dates.FromTime(testNow)
	for i := 1; i < len(f.lines); i++ {
		fs := strings.Split(f.lines[i], "\t")
		if d, _ := dates.Parse(f.get(fs, "date_to")); d >= now {
			t.Fatalf("line %d: date_to %s not before Now", i+1, d)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]Config{
		"too many anomalies": {ServicePoints: 10, Months: 12, Now: testNow, Anomalies: map[Kind]int{U2Gap: 20}},
		"short history":      {ServicePoints: 100, Months: 3, Now: testNow, Anomalies: map[Kind]int{U2Gap: 1}},
		"unknown kind":       {ServicePoints: 100, Months: 12, Now: testNow, Anomalies: map[Kind]int{"U42": 1}},
		"compression":        {Compression: "bz2", Now: testNow},
		"utility":            {Utility: "toolong", Now: testNow},
		"population":         {Population: "com", Now: testNow},
		"version":            {SpecVersion: "1.19", Now: testNow},
	}
	for name, c := range cases {
		if _, err := Generate(t.TempDir(), c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseAnomalies(t *testing.T) {
	t.Parallel()
	got, err := ParseAnomalies(" U2_GAP=3, a7_rate_not_allowed=2 ,S2_DUAL_FUEL")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[Kind]int{U2Gap: 3, A7RateNotAllowed: 2, S2DualFuel: 1}; !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	got, err = ParseAnomalies("all=2,U2_GAP=5")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(Kinds()) || got[U2Gap] != 5 || got[BadDuration] != 2 {
		t.Errorf("all=2,U2_GAP=5: %v", got)
	}
	if got, err := ParseAnomalies(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"U2_GAP=x", "U2_GAP=-1", "NOPE=1"} {
		if _, err := ParseAnomalies(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestFileName(t *testing.T) {
	t.Parallel()
	c := Config{Now: testNow}.WithDefaults()
	if got, want := FileName(c, records.LayoutFull), "opwr_gec_res_v1-19-0_full_20250304050607.gz"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
	for _, comp := range []string{"gzip", "zip", "none"} {
		c.Compression = comp
		for _, l := range []records.Layout{records.LayoutFull, records.LayoutCustomer, records.LayoutUsage} {
			if n := FileName(c, l); !nameRE.MatchString(n) {
				t.Errorf("%q does not follow the convention", n)
			}
		}
	}
}

// The row text follows records.BillingColumns(): the 23 rendered columns are exactly
// the customer layout.
func TestRenderedColumns(t *testing.T) {
	t.Parallel()
	g, err := newGenerator(Config{ServicePoints: 10, Months: 2, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	g.loadPremise(0)
	g.buildSP('E')
	st := g.rendered[0]
	fs := strings.Split(string(g.arena[st.off:st.end]), "\t")
	cols := records.LayoutColumns(records.LayoutCustomer)
	if len(fs) != len(cols) {
		t.Fatalf("%d rendered columns, customer layout has %d", len(fs), len(cols))
	}
	want := map[string]string{"customer_id": "C00000001", "premise_id": "P00000001", "account_id": "A00000001-01",
		"service_point_id": "SP-E-00000001", "service_type": "E", "meter_unit": "KWH"}
	for i, c := range cols {
		if w, ok := want[c.Name]; ok && fs[i] != w {
			t.Errorf("%s = %q, want %q", c.Name, fs[i], w)
		}
	}
}

func TestCivil(t *testing.T) {
	t.Parallel()
	for d := dates.Date(-800000); d < 800000; d += 37 {
		y, m, day := civil(d)
		ty, tm, tday := d.Time().Date()
		if y != ty || m != int(tm) || day != tday {
			t.Fatalf("civil(%d) = %d-%d-%d, want %v", d, y, m, day, d.Time())
		}
		if fromCivil(y, m, day) != d {
			t.Fatalf("fromCivil(%d,%d,%d) != %d", y, m, day, d)
		}
		if string(appendDate(nil, d)) != d.String() && y >= 1000 && y <= 9999 {
			t.Fatalf("appendDate(%d) = %s, want %s", d, appendDate(nil, d), d)
		}
	}
	for _, c := range []struct {
		y, m, d int
		want    string
	}{{2024, 14, 31, "20250228"}, {2024, 0, 15, "20231215"}, {2024, -11, 1, "20230101"}, {2024, 2, 30, "20240229"}} {
		if got := dateString(fromCivil(c.y, c.m, c.d)); got != c.want {
			t.Errorf("fromCivil(%d,%d,%d) = %s, want %s", c.y, c.m, c.d, got, c.want)
		}
	}
}

func TestAppendFixed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v    int64
		dec  int
		sep  bool
		want string
	}{
		{0, 0, false, "0"}, {123400, 0, false, "1234"}, {123400, 0, true, "1,234"}, {123450, 1, true, "1,234.5"},
		{-8000, 0, false, "-80"}, {1234567800, 2, true, "12,345,678.00"}, {5, 2, false, "0.05"}, {100050, 0, true, "1,000"},
	}
	for _, c := range cases {
		if got := string(appendFixed(nil, c.v, c.dec, c.sep)); got != c.want {
			t.Errorf("appendFixed(%d,%d,%v) = %q, want %q", c.v, c.dec, c.sep, got, c.want)
		}
	}
}

// Memory stays flat: ten times the service points, about the same allocations.
func TestWriteFullMemoryFlat(t *testing.T) {
	// Not parallel: it measures memory, which other tests would disturb.
	allocs := func(sps int) float64 {
		cfg := Config{ServicePoints: sps, Months: 12, Seed: 1, Now: testNow}
		return testing.AllocsPerRun(1, func() {
			if _, _, err := WriteFull(io.Discard, cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(2000), allocs(20000)
	if large > small+20 {
		t.Errorf("allocations grow with size: %v for 2000 service points, %v for 20000", small, large)
	}
}
