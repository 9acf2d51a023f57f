package report_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/processors/validate/report"
)

// TestTextColourAndPlurals (issue 17): colour only when asked (a terminal),
// and counts with their nouns in the right number.
func TestTextColourAndPlurals(t *testing.T) {
	t.Parallel()
	rep := &report.Report{Pass: false, Files: []report.File{{Name: "a.tsv"}}, Lines: 1, Accepted: 1,
		Totals:         report.Totals{Errors: 1, Warnings: 2, Rows: 1},
		Checks:         []report.Check{{ID: "files", Name: "files read to the end", Detail: "x"}},
		WorstOffenders: []report.Offender{{ServicePointID: "SP1", Rows: 1, Findings: 2, ByRule: map[string]int64{"U2": 2}}}}
	var plain, color bytes.Buffer
	if err := report.WriteText(&plain, rep); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteTextWith(&color, rep, report.TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(color.String(), "\x1b[31m") {
		t.Errorf("colour: plain has codes %v, colour has red %v", strings.Contains(plain.String(), "\x1b["), strings.Contains(color.String(), "\x1b[31m"))
	}
	for _, want := range []string{"FAIL  1 file, 1 row:", "1 error and 2 warnings open, on 1 row", "SP1                  1 row, 2 findings (U2 2)"} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, plain.String())
		}
	}
}
