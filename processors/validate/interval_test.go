package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/records"
)

// ivFile writes an hourly interval file of SP1 (UTC) over the days from
// first to last, each hour worth value, skipping the days in skip, then the
// extra lines; it returns its path.
func ivFile(t *testing.T, dir, stamp string, first, last dates.Date, value float64, skip map[dates.Date]bool, extra ...string) string {
	t.Helper()
	lines := []string{strings.Join(records.IntervalColumns(), "\t")}
	for d := first; d <= last; d++ {
		if skip[d] {
			continue
		}
		for h := 1; h <= 24; h++ {
			date, hh := d, h
			if h == 24 {
				date, hh = d+1, 0
			}
			lines = append(lines, fmt.Sprintf("SP1\t%g\t%s\t%02d00\tKWH\tA\t+0000\tE\t", value, date.String(), hh))
		}
	}
	lines = append(lines, extra...)
	path := filepath.Join(dir, "opwr_tst_res_v1-19-0_interval60_"+stamp+".tsv")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestIntervalFilesOffline (issue 17): validate takes interval files with
// the interval reader and rules: a row off the hourly grid is rejected
// (I1), an hour sent again with another value is a correction (I2), two
// missing days are a gap (I3), three months of reads are short of I5's 13
// (listed with how many are missing), and with the billing file of the run
// each bill is summed against its intervals (I6): January's matches,
// February's does not. A gap left by a rejected read names it.
func TestIntervalFilesOffline(t *testing.T) {
	dir := t.TempDir()
	jan, feb := month("202301", hand{"usage_value": "744"}), month("202302", hand{"usage_value": "500"})
	bills := handFile(t, dir, "20230401000000", jan, feb)
	gap := map[dates.Date]bool{dates.MustParse("20230305"): true, dates.MustParse("20230306"): true}
	iv := ivFile(t, dir, "20230401010000", dates.MustParse("20230101"), dates.MustParse("20230331"), 1, gap,
		"SP1\t1\t20230310\t0030\tKWH\tA\t+0000\tE\t",   // off the hourly grid
		"SP1\t2.5\t20230310\t0500\tKWH\tA\t+0000\tE\t") // sent again, another value
	rep := mustRun(t, []string{iv, bills}, Options{})

	var ivf *report.File
	for i := range rep.Files {
		if rep.Files[i].Name == filepath.Base(iv) {
			ivf = &rep.Files[i]
		}
	}
	if ivf == nil || ivf.Layout != "interval60" || ivf.Rejected != 1 || ivf.Accepted != 88*24+1 || ivf.Error != "" {
		t.Fatalf("interval file in the report: %+v", ivf)
	}
	if f := findings(rep, "I1", records.CodeOffGrid); len(f) != 1 || f[0].Line != int64(88*24+2) || f[0].Field != "time" {
		t.Errorf("off-grid row: %+v", f)
	}
	if f := findings(rep, "I2", rules.CorrectionInterval); len(f) != 1 || f[0].ServicePointID != "SP1" || !strings.Contains(f[0].Message, "replaced by 2.5") {
		t.Errorf("I2 correction: %+v", f)
	}
	if f := findings(rep, "I3", rules.AnomalyIntervalGapDays); len(f) != 1 || f[0].Date != "2023-03-05" {
		t.Errorf("I3 gap of days: %+v", f)
	}
	mm := findings(rep, "I6", rules.AnomalyBillingMismatch)
	if len(mm) != 1 || mm[0].Date != "2023-02-01" || !strings.Contains(mm[0].Message, "the bill says 500") {
		t.Errorf("I6: %+v, want February's bill alone", mm)
	}
	ih := rep.IntervalHistory
	if ih == nil || ih.ServicePoints != 1 || ih.WithNeed != 0 || len(ih.Short) != 1 || ih.Short[0].ServicePointID != "SP1" ||
		ih.Short[0].Months >= 13 || ih.Short[0].Missing != 13-ih.Short[0].Months {
		t.Errorf("interval history: %+v", ih)
	}
	if c := checkNamed(t, rep, "interval history"); c.Pass {
		t.Errorf("3 months of reads pass the interval history check: %+v", c)
	}

	// A read rejected for its units leaves a hole in its day: the gap
	// names the rejected row (line 1 + 76 days of 24 reads before March 20,
	// two days being skipped, + 5 hours).
	b, err := os.ReadFile(iv)
	if err != nil {
		t.Fatal(err)
	}
	good := "SP1\t1\t20230320\t0500\tKWH\t"
	if !strings.Contains(string(b), good) {
		t.Fatal("no read at 2023-03-20 05:00 to spoil")
	}
	writeFile(t, iv, []byte(strings.Replace(string(b), good, "SP1\t1\t20230320\t0500\tKWX\t", 1)))
	rep = mustRun(t, []string{iv, bills}, Options{})
	var hole *report.Finding
	for _, f := range findings(rep, "I3", rules.AnomalyIntervalGap) {
		if f.Date == "2023-03-20" && !f.Cleared {
			hole = &f
		}
	}
	if hole == nil || hole.CausedBy == nil || hole.CausedBy.Code != records.CodeBadUnits || hole.CausedBy.Line != int64(1+76*24+5) {
		t.Errorf("the gap of 2023-03-20: %+v", hole)
	}

	// Without the billing file there is nothing to sum against.
	rep = mustRun(t, []string{iv}, Options{})
	if mm := findings(rep, "I6", rules.AnomalyBillingMismatch); len(mm) != 0 {
		t.Errorf("I6 without bills: %+v", mm)
	}
}
