package pipeline

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/topology"
)

func kadmClient(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

// startOnOnePartition creates every topic of the topology with one
// partition, so the events come in file order and a golden can pin
// transient states too (with more partitions the premises of one customer
// reach stage 2 through different premise-stage partitions, whose
// interleaving is not fixed; TestStreamingEqualsRules checks that the final
// eligibility is the same then), and runs every stage of a pipeline with
// policy, its state in a temporary folder.
func startOnOnePartition(tb testing.TB, kc kafkaconf.Config, policy rules.Policy) *stages {
	tb.Helper()
	ctx := context.Background()
	cl, err := kc.NewClient(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	if err := topics.Ensure(ctx, kadmClient(cl), topology.New(kc.TopicPrefix).Specs(), 1, 1); err != nil {
		tb.Fatal(err)
	}
	p, err := New(ctx, kc, policy)
	if err != nil {
		tb.Fatal(err)
	}
	return startStages(tb, kc, tb.TempDir(), p)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("USAGESTREAM_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// stages is every stage of a pipeline running in this process.
type stages struct {
	kc     kafkaconf.Config
	cancel context.CancelFunc
	errs   chan error
	n      int
	names  []string
}

// startStages runs the stages of p named in only (every one when none is),
// with their state under dir.
func startStages(tb testing.TB, kc kafkaconf.Config, dir string, p *Pipeline, only ...string) *stages {
	return startStagesAt(tb, kc, dir, p, nil, only...)
}

// startStagesAt is startStages with the wall clock the stages' timers
// read (nil: time.Now). The stages commit as `process` has them by
// default (--commit-interval 100ms), so the benchmarks measure that.
func startStagesAt(tb testing.TB, kc kafkaconf.Config, dir string, p *Pipeline, now func() time.Time, only ...string) *stages {
	ctx, cancel := context.WithCancel(context.Background())
	var all []runtime.Stage
	for _, st := range p.Stages() {
		if len(only) == 0 || slices.Contains(only, runtime.StageName(st)) {
			all = append(all, st)
		}
	}
	s := &stages{kc: kc, cancel: cancel, errs: make(chan error, len(all)), n: len(all), names: only}
	for _, st := range all {
		go func() {
			s.errs <- runtime.Run(ctx, runtime.Config{Kafka: kc, DataDir: dir, Logger: testLogger(tb), Now: now, WallClockTick: 100 * time.Millisecond,
				CommitInterval: 100 * time.Millisecond}, st)
		}()
	}
	tb.Cleanup(cancel)
	return s
}

// wait waits until every stage caught up, failing at once with the error of
// a stage that stopped.
func (s *stages) wait(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- WaitCaughtUp(ctx, s.kc, s.names...) }()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatal(err)
		}
	case err := <-s.errs:
		s.n--
		tb.Fatalf("a processor stopped: %v", err)
	}
}

// stop stops every stage and fails on an error any of them returned.
func (s *stages) stop(tb testing.TB) {
	tb.Helper()
	s.cancel()
	for ; s.n > 0; s.n-- {
		if err := <-s.errs; err != nil {
			tb.Fatal(err)
		}
	}
}
