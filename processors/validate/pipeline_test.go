package validate

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/gen"
)

// TestPipelineGivesTheSerialReport: the four goroutines of files give the
// report of every row taken through every stage before the next (the
// serial form), in memory and through Pebble with a cache of three states,
// on files with findings of every kind: one of every generated anomaly and
// malformed row, a customer and usage pair whose states come back from the
// store, and hand-made rows: a rejected row with the gap it leaves (a
// knock-on finding), a premise where two customers are active at once and
// then not (C4, the premise stage's own finding, raised and cleared).
func TestPipelineGivesTheSerialReport(t *testing.T) {
	dir := t.TempDir()
	files := sampleReadBack(t, dir)
	two := hand{"premise_id": "P9", "customer_id": "C9", "account_id": "A9", "service_point_id": "SP9"}
	ended := hand{"premise_id": "P9", "customer_id": "C9", "account_id": "A9", "service_point_id": "SP9", "inactive_date": "20240331"}
	files = append(files, handFile(t, dir, "20250320120000",
		month("202401", hand{"premise_id": "P9", "customer_id": "C8", "account_id": "A8", "service_point_id": "SP8"}),
		month("202401", two), month("202402", two), month("202403", ended),
		// A rejected row and the gap it leaves (a knock-on finding).
		month("202401", hand{"service_point_id": "SP7"}), month("202402", hand{"service_point_id": "SP7", "date_to": "20240232"}),
		month("202403", hand{"service_point_id": "SP7"})))

	for _, store := range []Options{{Store: StoreMemory}, {Store: StorePebble, CacheStates: 3}} {
		t.Run(store.Store, func(t *testing.T) {
			store.TempDir = t.TempDir()
			piped := mustRun(t, files, store)
			store.serial = true
			serial := mustRun(t, files, store)
			kinds := map[string]int{}
			for _, g := range serial.Rules {
				kinds[g.Kind] += int(g.Count)
				kinds[g.Rule] += int(g.Count)
			}
			for _, k := range []string{report.KindRejected, report.KindAnomaly, report.KindCorrection, report.KindAccount, "C4"} {
				if kinds[k] == 0 {
					t.Errorf("the files gave no finding of %s: the comparison would not cover it", k)
				}
			}
			if len(serial.Resolved) == 0 || serial.Totals.KnockOn == 0 {
				t.Errorf("no resolved (%d) or knock-on (%d) finding to compare", len(serial.Resolved), serial.Totals.KnockOn)
			}
			blocked := 0
			for _, p := range serial.Eligibility {
				blocked += int(p.NotEligible)
			}
			if blocked == 0 {
				t.Error("no subject blocked from a program: eligibility would not be compared")
			}
			if !reflect.DeepEqual(serial, piped) {
				a, _ := json.Marshal(serial)
				b, _ := json.Marshal(piped)
				t.Fatalf("the pipeline changes the report:\nserial   %s\npipeline %s", a, b)
			}
		})
	}
}

// TestPipelineReusesRowsSafely: on a file of many batches, whose rows the
// reading goroutine parses into batches stage 1 gives back (rowBatch), the
// report is the serial run's, which parses every row into a new one.
func TestPipelineReusesRowsSafely(t *testing.T) {
	res, err := gen.Generate(t.TempDir(), gen.Config{ServicePoints: 1500, Months: 14, Seed: 5, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Store: StoreMemory}
	piped := mustRun(t, res.Files, opts)
	if piped.Lines < 10*batchRows {
		t.Fatalf("%d rows: too few batches to reuse any", piped.Lines)
	}
	opts.serial = true
	if serial := mustRun(t, res.Files, opts); !reflect.DeepEqual(serial, piped) {
		a, _ := json.Marshal(serial)
		b, _ := json.Marshal(piped)
		t.Fatalf("reused rows change the report:\nserial   %s\npipeline %s", a, b)
	}
}
