package sink_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
)

// TestUndecodableEventsAreQuarantinedAndTheSinkGoesOn: records on an event
// topic that are not Confluent-framed Avro, name a schema id the registry
// does not have, carry no value, or hold bytes the schema cannot read go to
// the sink's quarantine topic with their origin, are counted, and every good
// event around them is written once. A re-feed addressed to another consumer
// is skipped. Before, the first such record stopped the sink (sink jsonl
// exited 1, and restarted into the same record).
func TestUndecodableEventsAreQuarantinedAndTheSinkGoesOn(t *testing.T) {
	env := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g := sinktest.NewGenerator(env.Topics, 3) // one generator: event ids follow its sequence
	before := sinktest.Produce(t, env.Kafka, env.Topics, g, 300)

	p, err := sinktest.NewProducer(ctx, env.Kafka, env.Topics)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	valid, err := p.Encode([]sinktest.Event{g.Next()})
	if err != nil {
		t.Fatal(err)
	}
	elig := env.Topics.Eligibility
	good := valid[0].Value
	poison := []*kgo.Record{
		{Topic: elig, Key: []byte("k1"), Value: []byte("customer_id,premise_id\nC1,P1")},
		{Topic: elig, Key: []byte("k2"), Value: []byte{0, 0, 1, 0x86, 0xa0, 2, 4}}, // schema id 100000
		{Topic: elig, Key: []byte("k3"), Value: nil},
		{Topic: elig, Key: []byte("k4"), Value: append(append([]byte{}, good[:5]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
	}
	// An event re-fed to another sink: this one delivered the original.
	other := g.Next()
	refed, err := p.Encode([]sinktest.Event{other})
	if err != nil {
		t.Fatal(err)
	}
	refed[0].Headers = []kgo.RecordHeader{{Key: quarantine.HeaderRefeedFor, Value: []byte("sink-postgres")}}
	if err := p.SendRecords(ctx, append(poison, refed[0])); err != nil {
		t.Fatal(err)
	}
	after := sinktest.Produce(t, env.Kafka, env.Topics, g, 300)

	w := &writer{seen: map[string]int{}}
	reg := prometheus.NewRegistry()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- sink.Run(rctx, sink.Config{Name: "test", Kafka: env.Kafka, MaxBatch: 50, Metrics: sink.NewMetrics(reg)}, w)
	}()
	group := sink.GroupFor(env.Kafka.TopicPrefix, "test")
	for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
		kafkatest.WaitCaughtUp(t, env.Kafka, group, topic, time.Minute)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("the sink stopped with %v; want it to go on past the bad records", err)
	}
	for _, e := range append(before, after...) {
		if n := w.seen[e.Topic+" "+e.EventID]; n != 1 {
			t.Fatalf("%s %s written %d times, want 1", e.Topic, e.EventID, n)
		}
	}
	if n := w.seen[other.Topic+" "+other.EventID]; n != 0 {
		t.Fatalf("a re-feed addressed to sink-postgres was written %d times by sink test", n)
	}
	if got := counter(t, reg, "usagestream_sink_records_quarantined_total"); got != 4 {
		t.Fatalf("quarantined %v, want 4", got)
	}
	if got := counter(t, reg, "usagestream_sink_records_skipped_total"); got != 1 {
		t.Fatalf("skipped %v, want 1", got)
	}

	qt := quarantine.SinkTopic(env.Kafka.TopicPrefix, "test")
	qs := kafkatest.ReadAll(t, env.Kafka, qt)
	if len(qs) != 4 {
		t.Fatalf("%d records on %s, want 4", len(qs), qt)
	}
	src := kafkatest.ReadAll(t, env.Kafka, elig)
	byKey := map[string]*kgo.Record{}
	for _, r := range src {
		byKey[string(r.Key)] = r
	}
	for _, q := range qs {
		info, err := quarantine.Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		orig := byKey[string(q.Key)]
		if orig == nil || info.Source.Topic != elig || info.Source.Partition != orig.Partition || info.Source.Offset != orig.Offset {
			t.Fatalf("quarantine record of key %q names %+v; the original is at %s[%d]@%d", q.Key, info.Source, orig.Topic, orig.Partition, orig.Offset)
		}
		if info.By != "sink-test" || info.Error == "" || string(q.Value) != string(orig.Value) {
			t.Fatalf("quarantine record of key %q: by %q, error %q, value kept %v", q.Key, info.By, info.Error, string(q.Value) == string(orig.Value))
		}
		if string(q.Key) == "k4" {
			if id, _ := quarantine.Header(q.Headers, quarantine.HeaderSchemaID); id != strconv.Itoa(quarantine.SchemaID(good)) {
				t.Fatalf("schema id header %q, want %d", id, quarantine.SchemaID(good))
			}
		}
	}
}
