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

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/testlog"
)

// TestDecodeOutageBacksOffAndPoisonIsQuarantined: Decode runs before
// Process with the transaction's context (it has a deadline, not
// context.Background). A Decode that cannot do its I/O (a registry down)
// aborts the transaction, is counted and logged as such (not as a bad
// input), and the stage retries after a back-off and goes on exactly once;
// a Decode that finds the record bad sends it to the quarantine topic.
func TestDecodeOutageBacksOffAndPoisonIsQuarantined(t *testing.T) {
	const keys, total = 10, 500
	c := newCluster(t, 2)
	p := countingProcessor(c.kc.TopicPrefix)
	var outages atomic.Int32
	var noDeadline atomic.Bool
	p.Decode = func(ctx context.Context, r Record) (any, error) {
		if _, ok := ctx.Deadline(); !ok {
			noDeadline.Store(true)
		}
		switch string(r.Value) {
		case "outage":
			if outages.Add(1) <= 2 {
				return nil, errors.New("schema registry: dial tcp 127.0.0.1:8081: connection refused")
			}
		case "garbage":
			return nil, quarantine.Poison(errors.New("not Confluent-framed Avro"))
		}
		return string(r.Value), nil
	}
	process := p.Process
	p.Process = func(s *counter, in Input) (Step[*counter], error) {
		if in.Timer == nil && in.Decoded != string(in.Record.Value) {
			return Step[*counter]{}, errors.New("Process was not given what Decode made")
		}
		return process(s, in)
	}
	logs := &testlog.Buffer{}
	m := NewMetrics(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait, err := Supervise(ctx, Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: 50 * time.Millisecond, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, p, SuperviseConfig{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.produce(t, keys, 0, total/2, "")
	c.produce(t, keys, total/2, 1, "outage")
	c.produce(t, keys, total/2+1, 1, "garbage")
	c.produce(t, keys, total/2+2, total/2-2, "")
	waitOutputs(t, c, total-1, 2*time.Minute)
	cancel()
	wait()
	if _, _, n := c.outputs(t); n != total-1 {
		t.Fatalf("%d outputs, want %d (every record but the quarantined one)", n, total-1)
	}
	q, err := consume.All(context.Background(), c.kc, quarantine.StageTopic(c.kc.TopicPrefix, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || string(q[0].Value) != "garbage" {
		t.Fatalf("quarantined %d records, want the garbage one", len(q))
	}
	if noDeadline.Load() {
		t.Error("Decode was called without the transaction's context (no deadline)")
	}
	if n := testutil.ToFloat64(m.aborts.WithLabelValues("counter", abortDecode)); n != 2 {
		t.Errorf("aborts{reason=decode_unavailable} = %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.restarts.WithLabelValues("counter")); n != 2 {
		t.Errorf("restarts = %v, want 2 (one back-off per outage)", n)
	}
	out := logs.String()
	if !strings.Contains(out, "schema registry is unreachable") || strings.Contains(out, "fix the input") {
		t.Errorf("the log does not say the registry is unreachable, or blames the input:\n%s", out)
	}
}
