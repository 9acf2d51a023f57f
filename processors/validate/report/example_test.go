package report_test

import (
	"fmt"

	"github.com/usagestream/usagestream/processors/validate/report"
)

// Compare two rounds: the previous round's report (as report.ReadJSON
// returns it) and this one's.
func ExampleCompare() {
	prev := &report.Report{Run: report.RunInfo{Time: "2025-03-15T12:00:00Z"},
		OpenByServicePoint: map[string]map[string]int64{"SP1": {"U2": 1}, "SP2": {"DC-2.4": 2}}}
	cur := &report.Report{OpenByServicePoint: map[string]map[string]int64{"SP1": {"U2": 1}, "SP3": {"A3": 1}}}
	report.Compare(prev, cur)
	c := cur.Comparison
	fmt.Printf("%d fixed, %d new, %d persisting\n", c.Fixed, c.New, c.Persisting)
	for _, sp := range c.ServicePoints {
		fmt.Println(sp.Status, sp.ServicePointID)
	}
	// Output:
	// 2 fixed, 1 new, 1 persisting
	// new SP3
	// persisting SP1
	// fixed SP2
}
