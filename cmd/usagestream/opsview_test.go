package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

// TestTopicsAndStatus: topics counts the committed records of each topic;
// status shows each stage's group, its lag before and after processing and
// what it quarantined; both print JSON with --json.
func TestTopicsAndStatus(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	res := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 20, Months: 3, Seed: 2})
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	results, err := in.Run(ctx, res.Files)
	if err != nil {
		t.Fatal(err)
	}
	published := results[0].Published
	cl, err := env.Kafka.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// A record the service point stage cannot decode: quarantined.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: env.Topics.Billing, Key: []byte("SP-BAD"), Value: []byte("plain text")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	ts, err := listTopics(ctx, env.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	var billing *topicInfo
	for i := range ts {
		if ts[i].Name == env.Topics.Billing {
			billing = &ts[i]
		}
	}
	if billing == nil || billing.Records != published+1 || !billing.Exact || billing.Partitions == 0 || billing.Retention == "" {
		t.Fatalf("topics: billing is %+v, want %d records", billing, published+1)
	}
	var buf bytes.Buffer
	printTopics(&buf, ts)
	if !strings.Contains(buf.String(), "RETENTION") || !strings.Contains(buf.String(), env.Topics.Billing) {
		t.Fatalf("topics table:\n%s", buf.String())
	}

	st, err := pipelineStatus(ctx, env.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	sp := st.Stages[0]
	if sp.Name != "servicepoint" || sp.Started || sp.Lag < published+1 || len(sp.Members) != 0 {
		t.Fatalf("before processing: %+v, want not started with a lag of at least %d", sp, published+1)
	}
	g := &Globals{Kafka: env.Kafka, log: slog.New(slog.DiscardHandler)}
	if err := processUntilCaughtUp(ctx, g, env.Kafka, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	st, err = pipelineStatus(ctx, env.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Stages {
		if !s.Started || s.Lag != 0 || !s.LagExact {
			t.Errorf("after processing: %+v, want started and lag 0", s)
		}
	}
	if st.Stages[0].Quarantined != 1 {
		t.Errorf("servicepoint quarantined %d, want 1", st.Stages[0].Quarantined)
	}
	if len(st.Sinks) != 0 {
		t.Errorf("sinks that never ran are listed: %+v", st.Sinks)
	}
	js, _ := json.Marshal(st)
	for _, k := range []string{`"stages"`, `"lag":0`, `"quarantined":1`, `"members"`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("status --json lacks %s: %s", k, js)
		}
	}
}
