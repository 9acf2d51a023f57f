package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/records"
)

// TestHistoricalFileFlipsNothingDownstream (issue 16, U2 and U8): the
// stages run while a year of incrementals is ingested, then a historical
// file of the year before, in one transaction. Its first row raises a gap
// of eleven months before the incrementals, and its last row fills it.
// Downstream sees no eligibility event for the historical file: the flip
// that the same transaction undoes is coalesced away. The anomalies topic
// still records the gap raised and cleared, with their lines: what the
// data showed.
func TestHistoricalFileFlipsNothingDownstream(t *testing.T) {
	env := kafkatest.Start(t)
	kc := env.Kafka
	kc.TopicPrefix = env.Kafka.TopicPrefix + "coalesce."
	names := topics.NewNames(kc.TopicPrefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := startOnOnePartition(t, kc, rules.DefaultPolicy())
	defer st.stop(t)
	in, err := ingest.New(ctx, kc, ingest.Config{Topics: names, Reader: billing.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	base := row{sp: "SP1", cust: "C1", prem: "P1", acct: "A1", active: "20220101"}
	files := [][]row{months(base, "20230101", 12), months(base, "20220101", 12)}
	var after []int // eligibility events on the topic after each file
	for n, rows := range files {
		lines := []string{records.HeaderLine(records.LayoutFull)}
		for _, r := range rows {
			lines = append(lines, r.line())
		}
		name := fmt.Sprintf("opwr_tst_res_v1-19-0_full_2024010%d000000.tsv", n+1)
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := in.Run(ctx, []string{path})
		if err != nil || res[0].Status != ingest.Completed {
			t.Fatalf("ingest %s: %+v %v", name, res, err)
		}
		st.wait(t, 2*time.Minute)
		after = append(after, len(kafkatest.ReadAll(t, kc, names.Eligibility)))
	}
	if after[0] == 0 {
		t.Fatal("the incrementals gave no eligibility event")
	}
	recs := kafkatest.ReadAll(t, kc, names.Eligibility)
	if after[1] != after[0] {
		var flips []string
		for _, m := range kafkatest.Decode(t, kc, recs[after[0]:]) {
			flips = append(flips, goldenLine(m))
		}
		t.Fatalf("the historical file, whose gap its own last row fills, sent %d eligibility events downstream:\n%s",
			after[1]-after[0], strings.Join(flips, "\n"))
	}

	// The anomaly is a record of what the data showed: raised at line 2,
	// cleared at line 13 of the historical file.
	var gap []string
	for _, m := range kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, names.Anomalies)) {
		if m["code"] == rules.AnomalyUsageGap {
			gap = append(gap, fmt.Sprintf("cleared=%v %s", m["cleared"], render(m["cause"])))
		}
	}
	want := []string{"cleared=false opwr_tst_res_v1-19-0_full_20240102000000.tsv:2", "cleared=true opwr_tst_res_v1-19-0_full_20240102000000.tsv:13"}
	if strings.Join(gap, "\n") != strings.Join(want, "\n") {
		t.Fatalf("gap anomalies:\n%s\nwant:\n%s", strings.Join(gap, "\n"), strings.Join(want, "\n"))
	}
}
