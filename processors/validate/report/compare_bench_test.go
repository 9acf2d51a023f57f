package report_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/usagestream/usagestream/processors/validate/report"
)

// bigReport is the JSON report of a 5,000,000-row run at its worst for a
// comparison: every one of 416,667 service points with open findings of
// two rules (a round shifts which).
func bigReport(b *testing.B, dir, name string, round int) string {
	b.Helper()
	r := &report.Report{ExamplesPerGroup: 200, Lines: 5_000_000, Accepted: 5_000_000,
		Run:                report.RunInfo{Time: fmt.Sprintf("2025-03-%02dT12:00:00Z", 10+round)},
		OpenByServicePoint: map[string]map[string]int64{}}
	rules := []string{"U2", "U3", "A3", "DC-2.4", "A10"}
	for i := range 416_667 {
		r.OpenByServicePoint[fmt.Sprintf("SP-E-%08d", i)] = map[string]int64{rules[(i+round)%5]: 1, rules[(i/7+round)%5]: int64(1 + i%3)}
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := report.WriteJSON(f, r); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkCompare is `validate --compare` of two reports of 5,000,000-row
// runs (see bigReport): both read, compared, and the comparison written in
// the three forms. Issue 17 asks for under 5 s.
func BenchmarkCompare(b *testing.B) {
	dir := b.TempDir()
	prevPath, curPath := bigReport(b, dir, "prev.json", 0), bigReport(b, dir, "cur.json", 1)
	for b.Loop() {
		prev, err := report.ReadJSON(prevPath)
		if err != nil {
			b.Fatal(err)
		}
		cur, err := report.ReadJSON(curPath)
		if err != nil {
			b.Fatal(err)
		}
		report.Compare(prev, cur)
		if cur.Comparison.ByStatus["persisting"] != 416_667 {
			b.Fatalf("comparison %+v", cur.Comparison.ByStatus)
		}
		if err := report.WriteJSON(io.Discard, cur); err != nil {
			b.Fatal(err)
		}
		if err := report.WriteText(io.Discard, cur); err != nil {
			b.Fatal(err)
		}
		if err := report.WriteHTML(io.Discard, cur); err != nil {
			b.Fatal(err)
		}
	}
}
