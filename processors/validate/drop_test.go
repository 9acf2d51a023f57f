package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/records"
)

// dropRows are 14 months of six service points, each with its own premise
// and customer but the one at share, whose customer is SP1's; SP3 skips a
// month (a gap) and SP4 has a rate not allowed. grouped lists them service
// point after service point, else month after month.
func dropRows(grouped bool, share int) []hand {
	var per [][]hand
	for i := 1; i <= 6; i++ {
		sp := fmt.Sprintf("SP%d", i)
		over := hand{}
		if i == share {
			over["customer_id"] = "CSP1"
		}
		if i == 4 {
			over["rate_code"] = "NOPE"
		}
		ms := months(sp, 2023*12, 2023*12+13, over)
		if i == 3 {
			ms = append(ms[:5], ms[6:]...)
		}
		per = append(per, ms)
	}
	var rows []hand
	if grouped {
		for _, ms := range per {
			rows = append(rows, ms...)
		}
		return rows
	}
	for m := range 14 {
		for _, ms := range per {
			if m < len(ms) {
				rows = append(rows, ms[m])
			}
		}
	}
	return rows
}

func kindCount(rep *report.Report, kind string) int64 {
	var n int64
	for _, g := range rep.Rules {
		if g.Kind == kind {
			n += g.Count
		}
	}
	return n
}

// TestDroppedStatesGiveTheSameReport: through the Pebble store with room for
// three states, one file whose keys never come back once their states left
// memory is validated without writing them out; one whose keys do come back
// (rows month after month; a customer's second service point at the end of
// the file) is validated again with states written out, said at info.
// Either way the report is the in-memory store's. With rejected rows handed
// out as they are found, states are written from the start: a second run
// would hand them out twice.
func TestDroppedStatesGiveTheSameReport(t *testing.T) {
	const again = "validating again"
	run := func(t *testing.T, file string, opts Options) (*report.Report, string) {
		var logs bytes.Buffer
		opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		opts.TempDir = t.TempDir()
		rep := mustRun(t, []string{file}, opts)
		rep.Store = ""
		return rep, logs.String()
	}
	same := func(t *testing.T, want, got *report.Report) {
		t.Helper()
		if !reflect.DeepEqual(want, got) {
			a, _ := json.Marshal(want)
			b, _ := json.Marshal(got)
			t.Fatalf("the report changed:\nin memory %s\npebble    %s", a, b)
		}
	}
	file := func(rows []hand) string { return handFile(t, t.TempDir(), "20250315120000", rows...) }
	for _, c := range []struct {
		name, file string
		again      bool
	}{
		{"grouped", file(dropRows(true, 2)), false},
		{"interleaved", file(dropRows(false, 2)), true},
		{"customer apart", file(dropRows(true, 6)), true}, // SP1's customer again after three others
	} {
		t.Run(c.name, func(t *testing.T) {
			mem, _ := run(t, c.file, Options{Store: StoreMemory})
			if kindCount(mem, report.KindAnomaly) == 0 || len(mem.Eligibility) == 0 {
				t.Fatalf("no anomaly or eligibility to compare: %+v", mem.Totals)
			}
			got, logs := run(t, c.file, Options{Store: StorePebble, CacheStates: 3})
			same(t, mem, got)
			if strings.Contains(logs, again) != c.again {
				t.Errorf("validated again: %v, want %v; logs:\n%s", strings.Contains(logs, again), c.again, logs)
			}
		})
	}
	t.Run("rejected handed out", func(t *testing.T) {
		n := 0
		opts := Options{Store: StorePebble, CacheStates: 3, Rejected: func(string, string, *records.Rejected) { n++ }}
		bad := append(dropRows(false, 2), month("202402", hand{"service_point_id": "SP2", "date_to": "20240232"}))
		got, logs := run(t, file(bad), opts)
		if strings.Contains(logs, again) {
			t.Errorf("validated again with rejected rows handed out:\n%s", logs)
		}
		if r := kindCount(got, report.KindRejected); n != 1 || r != 1 {
			t.Errorf("rejected rows handed out %d times, reported %d; want 1 and 1", n, r)
		}
	})
}
