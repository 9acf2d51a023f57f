package runtime

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usagestream/usagestream/internal/testlog"
)

// TestSupervisedStageRestartsAfterAFailureExactlyOnce: a stage whose
// processor fails for a reason that is not the record's (a dependency down)
// is started again with a back-off, says why, counts the restarts, and the
// output is still exactly once. Before Supervise, the failure ended the
// stage, and run with it.
func TestSupervisedStageRestartsAfterAFailureExactlyOnce(t *testing.T) {
	const keys, total = 20, 2000
	c := newCluster(t, 2)
	var failures atomic.Int32
	p := countingProcessor(c.kc.TopicPrefix)
	process := p.Process
	p.Process = func(s *counter, in Input) (Step[*counter], error) {
		if in.Timer == nil && string(in.Record.Value) == "fail" && failures.Add(1) <= 2 {
			return Step[*counter]{}, errors.New("the rate service is down")
		}
		return process(s, in)
	}
	logs := &testlog.Buffer{}
	m := NewMetrics(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var started atomic.Int32
	wait, err := Supervise(ctx, Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: 50 * time.Millisecond, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second, TransactionTimeout: 20 * time.Second},
		p, SuperviseConfig{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Started: func(*Instance) { started.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	c.produce(t, keys, 0, total/2, "")
	c.produce(t, keys, total/2, 1, "fail")
	c.produce(t, keys, total/2+1, total/2-1, "")
	waitOutputs(t, c, total, 2*time.Minute)
	cancel()
	wait()
	counts, _, _ := c.outputs(t)
	checkExactlyOnce(t, counts, keys, total)
	if n := testutil.ToFloat64(m.restarts.WithLabelValues("counter")); n != 2 {
		t.Errorf("usagestream_processor_restarts_total = %v, want 2", n)
	}
	if n := started.Load(); n != 3 {
		t.Errorf("%d instances started, want 3 (the first and two restarts)", n)
	}
	out := logs.String()
	if !strings.Contains(out, "stage counter failed") || !strings.Contains(out, "the rate service is down") {
		t.Errorf("the log does not say which stage failed and why:\n%s", out)
	}
}
