package sink_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/testwait"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
)

// writer records what it is given; fail decides each call's error.
type writer struct {
	mu    sync.Mutex
	calls int
	seen  map[string]int
	fail  func(call int) error
	gate  chan struct{} // when set, the first call waits on it
}

func (w *writer) Write(ctx context.Context, batch []sink.Event) error {
	w.mu.Lock()
	w.calls++
	call := w.calls
	w.mu.Unlock()
	if call == 1 && w.gate != nil {
		select {
		case <-w.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if w.fail != nil {
		if err := w.fail(call); err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range batch {
		if sinktest.EventID(e.Record) == "" {
			return sink.Permanent(errors.New("not decoded"))
		}
		w.seen[e.Topic+" "+sinktest.EventID(e.Record)]++
	}
	return nil
}

func committedSum(t *testing.T, kc kafkaconf.Config, group string) int64 {
	t.Helper()
	cl, err := kc.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += max(o.At, 0) })
	return n
}

// TestOffsetsMoveOnlyAfterTheWrite: while the writer holds its first batch
// nothing is committed; transient failures are retried; in the end every
// event was written, and the group's offsets cover every record.
func TestOffsetsMoveOnlyAfterTheWrite(t *testing.T) {
	env := kafkatest.Start(t)
	evs := sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 1), 1200)
	w := &writer{seen: map[string]int{}, gate: make(chan struct{}),
		fail: func(call int) error {
			if call == 2 || call == 3 {
				return errors.New("destination away")
			}
			return nil
		}}
	reg := prometheus.NewRegistry()
	m := sink.NewMetrics(reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sink.Run(ctx, sink.Config{Name: "test", Kafka: env.Kafka, MaxBatch: 100, RetryMin: 10 * time.Millisecond, Metrics: m}, w)
	}()
	group := sink.GroupFor(env.Kafka.TopicPrefix, "test")
	testwait.Eventually(t, 30*time.Second, "a batch reaching the writer", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.calls > 0
	})
	time.Sleep(300 * time.Millisecond) // time for a commit that must not come while the batch is held
	if n := committedSum(t, env.Kafka, group); n != 0 {
		t.Fatalf("%d offsets committed while the first batch is still being written", n)
	}
	close(w.gate)
	for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
		kafkatest.WaitCaughtUp(t, env.Kafka, group, topic, time.Minute)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if w.seen[e.Topic+" "+e.EventID] != 1 {
			t.Fatalf("%s %s written %d times", e.Topic, e.EventID, w.seen[e.Topic+" "+e.EventID])
		}
	}
	if got := counter(t, reg, "usagestream_sink_write_errors_total"); got != 2 {
		t.Fatalf("write errors %v, want 2", got)
	}
}

func TestPermanentErrorStopsTheSink(t *testing.T) {
	env := kafkatest.Start(t)
	sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 2), 10)
	w := &writer{seen: map[string]int{}, fail: func(int) error { return sink.Permanent(errors.New("column missing")) }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := sink.Run(ctx, sink.Config{Name: "test", Kafka: env.Kafka}, w)
	if err == nil || !strings.Contains(err.Error(), "sink test") || !strings.Contains(err.Error(), "column missing") {
		t.Fatalf("want the sink's permanent error, got %v", err)
	}
	if w.calls != 1 {
		t.Fatalf("a permanent error must not be retried: %d calls", w.calls)
	}
	if n := committedSum(t, env.Kafka, sink.GroupFor(env.Kafka.TopicPrefix, "test")); n != 0 {
		t.Fatalf("%d offsets committed for a batch that was not written", n)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	return 0
}

// TestLagAtRestIsZero: the event topics are written in transactions, each
// ending with a commit marker a sink never gets; once every event is
// delivered the lag of every partition reads 0, not 1, so an alert on
// lag > 0 clears.
func TestLagAtRestIsZero(t *testing.T) {
	env := kafkatest.Start(t)
	sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 3), 300)
	reg := prometheus.NewRegistry()
	m := sink.NewMetrics(reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sink.Run(ctx, sink.Config{Name: "test", Kafka: env.Kafka, MaxBatch: 50, Metrics: m}, &writer{seen: map[string]int{}})
	}()
	group := sink.GroupFor(env.Kafka.TopicPrefix, "test")
	for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
		kafkatest.WaitCaughtUp(t, env.Kafka, group, topic, time.Minute)
	}
	lags := func() (nonzero []string, n int) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "usagestream_sink_lag_records" {
				continue
			}
			for _, s := range mf.GetMetric() {
				n++
				if v := s.GetGauge().GetValue(); v != 0 {
					nonzero = append(nonzero, fmt.Sprintf("%v=%v", s.GetLabel(), v))
				}
			}
		}
		return nonzero, n
	}
	nonzero, n := lags()
	testwait.For(10*time.Second, func() bool { nonzero, n = lags(); return len(nonzero) == 0 && n > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n == 0 || len(nonzero) > 0 {
		t.Fatalf("lag at rest: %d partitions, not 0 on %v", n, nonzero)
	}
}
