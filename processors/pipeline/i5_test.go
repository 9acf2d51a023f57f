package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/records"
)

// TestI5IntervalHistoryReachesEligibility runs every stage: the interval
// stage reports a service point's months of interval history to the customer
// stage, which unblocks disaggregation once there are 13 of them (I5).
func TestI5IntervalHistoryReachesEligibility(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	var bills []string
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for m := range 14 {
		from := start.AddDate(0, m, 0)
		to := from.AddDate(0, 1, -1)
		bills = append(bills, billRow("SP1", to.Format("20060102"), to.Day(), 500))
	}
	day := func(n int) string { return start.AddDate(0, 0, n).Format("20060102") }
	var first, rest []string
	for n := range 200 {
		first = append(first, day(n))
	}
	for n := 200; n < 14*30+5; n++ {
		rest = append(rest, day(n))
	}
	hdr := strings.Join(records.IntervalColumns(), "\t")
	files := []string{
		writeFile(t, dir, "opwr_gec_res_v1-19-0_full_20250301000000.tsv", records.HeaderLine(records.LayoutFull), bills),
		writeFile(t, dir, "opwr_gec_res_v1-19-0_interval60_20250302000000.tsv", hdr, hourly("SP1", 1, first...)),
	}
	in, err := ingest.New(context.Background(), env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	p, err := New(context.Background(), env.Kafka, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	st := startStages(t, env.Kafka, t.TempDir(), p)
	st.wait(t, 2*time.Minute)
	disaggregation := func() map[string]any {
		var last map[string]any
		for _, e := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Eligibility)) {
			if e["program"] == rules.ProgramDisaggregation {
				last = e
			}
		}
		if last == nil {
			t.Fatal("no disaggregation event")
		}
		return last
	}
	if e := disaggregation(); e["eligible"] != false || !strings.Contains(render(e["reasons"]), "INSUFFICIENT_HISTORY") {
		t.Fatalf("with 6 months of intervals: %v", render(e))
	}

	more := writeFile(t, dir, "opwr_gec_res_v1-19-0_interval60_20250303000000.tsv", hdr, hourly("SP1", 1, rest...))
	if _, err := in.Run(context.Background(), []string{more}); err != nil {
		t.Fatal(err)
	}
	st.wait(t, 2*time.Minute)
	st.stop(t)
	e := disaggregation()
	if e["eligible"] != true {
		t.Fatalf("with 14 months of intervals: %v", render(e))
	}
	// The event names the interval read that completed the 13th month.
	if c := e["cause"].(map[string]any); c["topic"] != env.Topics.Intervals || str(c["file"]) != "opwr_gec_res_v1-19-0_interval60_20250303000000.tsv" {
		t.Fatalf("disaggregation unblocked by %v, want a read of the second interval file", render(c))
	}
}
