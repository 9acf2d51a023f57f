package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/dates"
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

// TestPremiseStageCoalescesItsInputs: within one transaction of the premise
// stage, memberships that take a customer away from where it was and back
// again send stage 2 nothing; each input is a snapshot of the customer at
// the premise, so the last one alone says everything. Before, the premise
// stage sent every step, and a customer stage reading them in two polls
// emitted the flip.
func TestPremiseStageCoalescesItsInputs(t *testing.T) {
	env := kafkatest.Start(t)
	kc := env.Kafka
	ctx := context.Background()
	p, err := New(ctx, kc, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	d := dates.MustParse("20240101")
	active := rules.Membership{CustomerID: "C1", PremiseID: "P1", ServicePointID: "SP1", ServiceType: "E", AccountID: "A1",
		ActiveDate: d, Active: true, Source: rules.Source{Topic: "billing.v1", Offset: 1}}
	ended := active
	ended.Active, ended.Source.Offset = false, 2
	ended.Reasons = []rules.Reason{{Code: rules.ReasonInactive, Rule: "A4", ServicePointID: "SP1", EffectiveDate: d + 30}}
	again := active
	again.Source.Offset = 3
	value := func(m rules.Membership) []byte { return (&membership{Utility: "tst", Membership: m}).appendBinary(nil) }
	// Each batch in one transaction, so that the stage reads it in one poll.
	produce := func(ms ...rules.Membership) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...), kgo.TransactionalID(fmt.Sprintf("t-%d", time.Now().UnixNano())))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: env.Topics.Premises, Key: []byte("P1"), Value: value(m)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	inputs := func() []rules.CustomerInput {
		var out []rules.CustomerInput
		for _, r := range kafkatest.ReadAll(t, kc, env.Topics.Memberships) {
			var ci customerInput
			if err := ci.decode(r.Value); err != nil {
				t.Fatal(err)
			}
			out = append(out, ci.Input)
		}
		return out
	}

	st := startStages(t, kc, t.TempDir(), p, StagePremise)
	produce(active)
	st.wait(t, time.Minute)
	first := inputs()
	if len(first) != 1 || len(first[0].Memberships) != 1 || !first[0].Memberships[0].Active || first[0].Replacements == nil {
		t.Fatalf("after the first membership: %+v; want one snapshot with it", first)
	}
	produce(ended, again)
	st.wait(t, time.Minute)
	if got := inputs(); len(got) != 1 {
		t.Errorf("the premise stage sent %d inputs for a customer that ended and came back in one transaction, want none after the first: %+v", len(got)-1, got[1:])
	}
	produce(ended, again, ended)
	st.wait(t, time.Minute)
	st.stop(t)
	got := inputs()
	if len(got) != 2 || got[1].Memberships[0].Active || got[1].Cause.Offset != 2 {
		t.Errorf("after active, ended, active, ended in one transaction: %+v; want one more snapshot, the last (ended, caused by offset 2)", got[1:])
	}
}
