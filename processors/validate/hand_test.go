package validate

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
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
