package validate

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/records"
)

// TestExportRejectedRows (issue 17): every rejected row goes to the
// export, one line per reason, with its original line, column, value,
// reason and how to fix it; a personal column's value is redacted unless
// the reader keeps personal data. The one-page summary lists the reasons
// with their remedies.
func TestExportRejectedRows(t *testing.T) {
	dir := t.TempDir()
	var rows []hand
	for m := 1; m <= 12; m++ {
		rows = append(rows, month("2023"+string(rune('0'+m/10))+string(rune('0'+m%10)), hand{"service_zip_code": "12345"}))
	}
	rows[2]["date_to"] = "20230332"
	rows[4]["service_zip_code"] = "SECRET-ZIP"
	rows[4]["usage_value"] = "1,5"
	path := handFile(t, dir, "20240101000000", rows...)
	for _, keep := range []bool{false, true} {
		var out bytes.Buffer
		rw := NewRejectedWriter(&out)
		rep := mustRun(t, []string{path}, Options{Rejected: rw.Write, Reader: readerKeeping(keep), Examples: 1})
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 4 || lines[0] != "file\tline\tservice_point_id\tcolumn\tvalue\trule\tcode\treason\thow_to_fix" {
			t.Fatalf("export (keep %v):\n%s", keep, out.String())
		}
		byCode := map[string][]string{}
		for _, l := range lines[1:] {
			f := strings.Split(l, "\t")
			if len(f) != 9 || f[0] != filepath.Base(path) {
				t.Fatalf("line %q", l)
			}
			byCode[f[6]] = f
		}
		if f := byCode[records.CodeBadDate]; f[1] != "4" || f[3] != "date_to" || f[4] != "20230332" || f[8] != report.FixFor(records.CodeBadDate, "") {
			t.Errorf("bad date: %q", f)
		}
		if f := byCode[records.CodeThousandsSeparator]; f[1] != "6" || f[4] != "1,5" {
			t.Errorf("thousands separator: %q", f)
		}
		zip := byCode[records.CodeBadZip]
		if zip[1] != "6" || zip[3] != "service_zip_code" {
			t.Errorf("bad zip: %q", zip)
		}
		if leaked := strings.Contains(out.String(), "SECRET-ZIP"); leaked != keep || (!keep && zip[4] != "[redacted]") {
			t.Errorf("keep personal %v: the zip code appears %v, value %q", keep, leaked, zip[4])
		}
		if keep {
			continue
		}
		var sum bytes.Buffer
		if err := report.WriteSummary(&sum, rep); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"# Sample file validation: FAIL", "| 1 | BAD_DATE | DC-2.4 | write a real calendar date", "(`rejected-rows`) | **FAIL**"} {
			if !strings.Contains(sum.String(), want) {
				t.Errorf("summary lacks %q:\n%s", want, sum.String())
			}
		}
		if strings.Contains(sum.String(), "SECRET-ZIP") {
			t.Error("the summary shows a personal value")
		}
	}
}

func readerKeeping(keep bool) billing.Options { return billing.Options{KeepPersonal: keep} }
