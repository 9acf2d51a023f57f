package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/sinks/sink"
)

// TestReplayQuarantineRefeedsToTheStageThatQuarantined (issue 13): a record
// on billing.v1 that is not Avro is quarantined by both stages that read
// billing.v1 and the stages go on; `replay --quarantine servicepoint` re-feeds
// it once, addressed to servicepoint: that stage sees it again (and, still
// bad, quarantines it again), the interval stage skips it, and a second
// re-feed with nothing new quarantined re-feeds nothing.
func TestReplayQuarantineRefeedsToTheStageThatQuarantined(t *testing.T) {
	env := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := env.Kafka.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: env.Topics.Billing, Key: []byte("SP-BAD"), Value: []byte("not avro")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	g := &Globals{Kafka: env.Kafka, log: slog.New(slog.DiscardHandler)}
	state := t.TempDir()
	if err := processUntilCaughtUp(ctx, g, env.Kafka, state); err != nil {
		t.Fatalf("a poison record stopped the stages: %v", err)
	}
	count := func(topic string) int { return len(kafkatest.ReadAll(t, env.Kafka, topic)) }
	spQ, ivQ := quarantine.StageTopic(env.Kafka.TopicPrefix, "servicepoint"), quarantine.StageTopic(env.Kafka.TopicPrefix, "interval")
	if count(spQ) != 1 || count(ivQ) != 1 {
		t.Fatalf("quarantined: servicepoint %d, interval %d; want 1 each", count(spQ), count(ivQ))
	}

	var out bytes.Buffer
	if err := (&replayCmd{Quarantine: "servicepoint", DryRun: true}).run(ctx, g, nil, &out); err != nil {
		t.Fatal(err)
	}
	if count(env.Topics.Billing) != 1 || !strings.Contains(out.String(), env.Topics.Billing) || strings.Contains(out.String(), "not avro") {
		t.Fatalf("dry run produced or showed the payload:\n%s", out.String())
	}
	out.Reset()
	if err := (&replayCmd{Quarantine: "servicepoint"}).run(ctx, g, nil, &out); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing)
	if len(recs) != 2 {
		t.Fatalf("billing has %d records after the re-feed, want 2\n%s", len(recs), out.String())
	}
	var refed *kgo.Record
	for _, r := range recs {
		if to, ok := quarantine.Header(r.Headers, quarantine.HeaderRefeedFor); ok {
			if to != "servicepoint" || string(r.Value) != "not avro" || string(r.Key) != "SP-BAD" {
				t.Fatalf("re-fed record addressed to %q: %q %q", to, r.Key, r.Value)
			}
			refed = r
		}
	}
	if refed == nil {
		t.Fatal("no re-fed record carries the refeed header")
	}
	if err := processUntilCaughtUp(ctx, g, env.Kafka, state); err != nil {
		t.Fatal(err)
	}
	if count(spQ) != 2 || count(ivQ) != 1 {
		t.Fatalf("after the re-feed: servicepoint quarantined %d (want 2: seen again), interval %d (want 1: skipped)", count(spQ), count(ivQ))
	}
	// Re-fed once: a second run takes only what was quarantined since (the
	// servicepoint copy of the re-feed), never the first record again.
	if err := (&replayCmd{Quarantine: "servicepoint"}).run(ctx, g, nil, &out); err != nil {
		t.Fatal(err)
	}
	if err := (&replayCmd{Quarantine: "servicepoint"}).run(ctx, g, nil, &out); err != nil {
		t.Fatal(err)
	}
	if n := count(env.Topics.Billing); n != 3 {
		t.Fatalf("billing has %d records after two more re-feeds, want 3 (each quarantined record re-fed once)", n)
	}
	if err := (&replayCmd{Quarantine: "nosuch"}).run(ctx, g, nil, &out); err == nil {
		t.Fatal("an unknown stage was accepted")
	}
}

// TestReplayQuarantineRefeedsASinksRecordsOnce: a record on an event topic
// that the JSON Lines sink cannot decode is quarantined by it while `sink
// jsonl` goes on; a sink that stopped between its quarantine write and its
// offset commit quarantines the record twice, and `replay --quarantine
// sink-jsonl` re-feeds it once, addressed to sink-jsonl.
func TestReplayQuarantineRefeedsASinksRecordsOnce(t *testing.T) {
	env := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := env.Kafka.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	bad := &kgo.Record{Topic: env.Topics.Eligibility, Key: []byte("C-BAD"), Value: []byte("not avro")}
	if err := cl.ProduceSync(ctx, bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	g := &Globals{Kafka: env.Kafka, log: slog.New(slog.DiscardHandler)}
	sctx, sinks, err := startSinks(ctx, env.Kafka, sinkFlags{jsonlFlags: jsonlFlags{JSONLDir: t.TempDir(), JSONLMaxMB: 1, JSONLMaxAge: time.Hour}}, nil, g.log, "", "")
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.WaitCaughtUp(t, env.Kafka, sink.GroupFor(env.Kafka.TopicPrefix, "jsonl"), env.Topics.Eligibility, time.Minute)
	if sctx.Err() != nil {
		t.Fatal("the bad record stopped the sink")
	}
	sinks.wait()
	qt := quarantine.SinkTopic(env.Kafka.TopicPrefix, "jsonl")
	qs := kafkatest.ReadAll(t, env.Kafka, qt)
	if len(qs) != 1 {
		t.Fatalf("%d records on %s, want 1", len(qs), qt)
	}
	// The copy a sink writes when it restarts before committing.
	dup := *qs[0]
	dup.Partition, dup.Offset = 0, 0
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: qt, Key: dup.Key, Value: dup.Value, Headers: dup.Headers}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (&replayCmd{Quarantine: "sink-jsonl"}).run(ctx, g, nil, &out); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadAll(t, env.Kafka, env.Topics.Eligibility)
	if len(recs) != 2 {
		t.Fatalf("eligibility has %d records after the re-feed, want 2 (the original and one re-feed)\n%s", len(recs), out.String())
	}
	for _, r := range recs[1:] {
		if to, _ := quarantine.Header(r.Headers, quarantine.HeaderRefeedFor); to != "sink-jsonl" || string(r.Value) != "not avro" {
			t.Fatalf("re-fed record addressed to %q with value %q", to, r.Value)
		}
	}
	if !strings.Contains(out.String(), "quarantined twice") {
		t.Fatalf("the report does not say a duplicate was dropped:\n%s", out.String())
	}
}
