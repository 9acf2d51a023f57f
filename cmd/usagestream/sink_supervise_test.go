package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/testlog"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
)

// countingWriter counts the events it made durable; its first failures
// calls fail permanently (a destination that refused a batch until an
// operator fixed it).
type countingWriter struct {
	mu       sync.Mutex
	failures int
	seen     map[string]int
}

func (w *countingWriter) Write(_ context.Context, batch []sink.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failures > 0 {
		w.failures--
		return sink.Permanent(errors.New("relation \"eligibility\" does not exist"))
	}
	for _, e := range batch {
		w.seen[e.Topic+" "+sinktest.EventID(e.Record)]++
	}
	return nil
}

func (w *countingWriter) count(key string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[key]
}

// TestFailedSinkRestartsWithoutStoppingTheOthers: a sink that stops on a
// permanent error is started again after a back-off and delivers every
// event once; a second sink goes on meanwhile, and the context run serves
// its broker and registry under is never cancelled. Before, the first
// sink's error cancelled run's context: every sink, the processors and the
// embedded broker and registry stopped with it.
func TestFailedSinkRestartsWithoutStoppingTheOthers(t *testing.T) {
	env := kafkatest.Start(t)
	evs := sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 9), 200)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	m := sink.NewMetrics(reg)
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	failing := &countingWriter{failures: 2, seen: map[string]int{}}
	healthy := &countingWriter{seen: map[string]int{}}
	var wg sync.WaitGroup
	for name, w := range map[string]*countingWriter{"failing": failing, "healthy": healthy} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runSink(ctx, sink.Config{Name: name, Kafka: env.Kafka, MaxBatch: 1000}, w, m, log)
		}()
	}
	for _, name := range []string{"failing", "healthy"} {
		for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
			kafkatest.WaitCaughtUp(t, env.Kafka, sink.GroupFor(env.Kafka.TopicPrefix, name), topic, time.Minute)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("a sink's failure ended the context the others run under")
	}
	cancel()
	wg.Wait()
	for _, e := range evs {
		k := e.Topic + " " + e.EventID
		if failing.count(k) != 1 || healthy.count(k) != 1 {
			t.Fatalf("%s delivered %d times by the restarted sink and %d by the other, want 1 and 1", k, failing.count(k), healthy.count(k))
		}
	}
	want := "# HELP usagestream_sink_restarts_total Times a sink stopped on an error and was started again after a back-off (run, sink).\n" +
		"# TYPE usagestream_sink_restarts_total counter\n" +
		"usagestream_sink_restarts_total{sink=\"failing\"} 2\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "usagestream_sink_restarts_total"); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, "sink failing failed") || !strings.Contains(out, "does not exist") {
		t.Fatalf("the log does not say which sink failed and why:\n%s", out)
	}
}
