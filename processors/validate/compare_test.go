package validate

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/processors/validate/report"
)

// TestCompareRounds (issue 17): round 2 fixes SP2's rejected row, keeps
// SP1's gap and brings a gap at SP3 (SP2's rejected row had left a gap
// too: fixed with it); --compare with round 1's JSON report
// says so by rule and by service point, in the JSON, the terminal and the
// HTML, and a third round carries the trend of all three.
func TestCompareRounds(t *testing.T) {
	dir := t.TempDir()
	rows := func(bad bool, gapAt3 bool) []hand {
		var out []hand
		for _, sp := range []string{"SP1", "SP2", "SP3"} {
			for m := 1; m <= 12; m++ {
				if sp == "SP1" && m == 5 { // SP1: May missing in both rounds
					continue
				}
				if sp == "SP3" && m == 8 && gapAt3 {
					continue
				}
				h := month("2023"+string(rune('0'+m/10))+string(rune('0'+m%10)), hand{"service_point_id": sp, "account_id": "A" + sp, "premise_id": "P" + sp, "customer_id": "C" + sp})
				if sp == "SP2" && m == 3 && bad {
					h["usage_value"] = "1,000"
				}
				out = append(out, h)
			}
		}
		return out
	}
	r1 := mustRun(t, []string{handFile(t, filepath.Join(dir), "20240101000000", rows(true, false)...)}, Options{})
	var js bytes.Buffer
	if err := report.WriteJSON(&js, r1); err != nil {
		t.Fatal(err)
	}
	prevPath := filepath.Join(dir, "round1.json")
	writeFile(t, prevPath, js.Bytes())
	prev, err := report.ReadJSON(prevPath)
	if err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	r2 := mustRun(t, []string{handFile(t, dir2, "20240201000000", rows(false, true)...)}, Options{})
	report.Compare(prev, r2)
	c := r2.Comparison
	if c == nil || c.Fixed != 2 || c.New != 1 || c.Persisting != 1 {
		t.Fatalf("comparison %+v, want 2 fixed (SP2's rejected row and the gap it left), 1 new (SP3's gap), 1 persisting (SP1's gap)", c)
	}
	status := map[string]string{}
	for _, sp := range c.ServicePoints {
		status[sp.ServicePointID] = sp.Status
	}
	if status["SP1"] != "persisting" || status["SP2"] != "fixed" || status["SP3"] != "new" {
		t.Errorf("by service point %+v", c.ServicePoints)
	}
	rule := map[string]report.Delta{}
	for _, d := range c.ByRule {
		rule[d.Rule] = d
	}
	if d := rule["DC-2.4"]; d.Fixed != 1 || d.New != 0 {
		t.Errorf("DC-2.4 %+v", d)
	}
	if d := rule["U2"]; d.New != 1 || d.Persisting != 1 || d.Fixed != 1 {
		t.Errorf("U2 %+v", d)
	}
	if len(r2.Rounds) != 2 || r2.Rounds[0].Errors != 1 || r2.Rounds[1].Errors != 0 {
		t.Errorf("rounds %+v", r2.Rounds)
	}
	var text, page bytes.Buffer
	if err := report.WriteText(&text, r2); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteHTML(&page, r2); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 fixed, 1 new, 1 persisting", "fixed      SP2", "new        SP3"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("terminal summary lacks %q:\n%s", want, text.String())
		}
	}
	if !strings.Contains(page.String(), `id="compare"`) || !strings.Contains(page.String(), "round 2") {
		t.Error("the HTML report has no comparison or trend")
	}
	// Round 3 compared with round 2's report: the trend has three rounds.
	js.Reset()
	if err := report.WriteJSON(&js, r2); err != nil {
		t.Fatal(err)
	}
	writeFile(t, prevPath, js.Bytes())
	prev, err = report.ReadJSON(prevPath)
	if err != nil {
		t.Fatal(err)
	}
	r3 := mustRun(t, []string{handFile(t, t.TempDir(), "20240301000000", rows(false, false)...)}, Options{})
	report.Compare(prev, r3)
	if len(r3.Rounds) != 3 || r3.Comparison.Fixed != 1 || r3.Comparison.New != 0 {
		t.Errorf("round 3: rounds %+v, comparison %+v", r3.Rounds, r3.Comparison)
	}
}
