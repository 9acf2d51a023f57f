package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

// TestPoisonBillingRecordsAreQuarantined (issue 13): records on billing.v1
// that are not Confluent-framed Avro (plain text, a short frame, a null
// value, an id the registry never issued) no longer stop the stages: each
// stage that reads billing.v1 sends each of them, once, to its quarantine
// topic with origin headers, processes the good rows around them, and a
// restart quarantines nothing again.
func TestPoisonBillingRecordsAreQuarantined(t *testing.T) {
	env := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := env.Kafka.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := []*kgo.Record{
		{Value: []byte("SP-BAD,20240101,12.5")},
		{Value: []byte{0, 0, 0}},
		{Value: nil},
		{Value: []byte{0, 0, 0, 0x7f, 0x7f, 2, 'a'}},
	}
	for _, r := range bad {
		r.Topic, r.Key = env.Topics.Billing, []byte("SP-BAD")
	}
	if err := cl.ProduceSync(ctx, bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	res, err := gen.Generate(t.TempDir(), gen.Config{ServicePoints: 20, Months: 14, Seed: 3,
		Now: time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(ctx, res.Files); err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, env.Kafka, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st := startStages(t, env.Kafka, dir, p)
	st.wait(t, 2*time.Minute) // fails at once if a stage stopped
	st.stop(t)
	if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Eligibility)); n == 0 {
		t.Fatal("no eligibility events: the good rows were not processed")
	}
	check := func(stage string) {
		t.Helper()
		recs := kafkatest.ReadAll(t, env.Kafka, quarantine.StageTopic(env.Kafka.TopicPrefix, stage))
		if len(recs) != len(bad) {
			t.Fatalf("stage %s quarantined %d records, want %d", stage, len(recs), len(bad))
		}
		offsets := map[int64]bool{}
		for _, r := range recs {
			q, err := quarantine.Parse(r)
			if err != nil {
				t.Fatal(err)
			}
			if q.Source.Topic != env.Topics.Billing || q.By != stage || q.Error == "" || string(r.Key) != "SP-BAD" {
				t.Fatalf("stage %s: quarantine record %+v key %q", stage, q, r.Key)
			}
			if string(r.Value) == string(bad[3].Value) && q.Source.SchemaID != 0x7f7f {
				t.Fatalf("schema id header %d, want %d", q.Source.SchemaID, 0x7f7f)
			}
			offsets[q.Source.Offset] = true
		}
		if len(offsets) != len(bad) {
			t.Fatalf("stage %s: source offsets %v, want %d distinct", stage, offsets, len(bad))
		}
	}
	check(StageServicePoint)
	check(StageInterval)

	// A restart on the same state: committed, so nothing is quarantined twice.
	st = startStages(t, env.Kafka, dir, p)
	st.wait(t, 2*time.Minute)
	st.stop(t)
	check(StageServicePoint)
	check(StageInterval)
}
