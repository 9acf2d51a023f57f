package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestUndeclaredOutputIsRefused: a processor's output to a topic it does
// not declare fails the step with ErrUndeclaredOutput, naming the stage and
// the topic, and nothing of it reaches the transaction; a nil Outputs
// declares nothing, like an empty one.
func TestUndeclaredOutputIsRefused(t *testing.T) {
	for _, c := range []struct {
		name    string
		outputs []string
		refused string // the topic refused; "": none
	}{
		{"declared", []string{"t.out", "t.stray"}, ""},
		{"undeclared", []string{"t.out"}, "t.stray"},
		{"none declared", []string{}, "t.out"},
		{"nil outputs: none declared", nil, "t.out"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := countingProcessor("t.")
			p.Outputs = c.outputs
			in := &Instance{name: p.Name, st: p, store: openTestStore(t), m: NewMetrics(nil), declared: declaredOutputs(p)}
			tx := newTxn()
			err := in.step(tx, tx.part(0), 0, []byte("k1"), Input{Record: Record{Topic: "t.in", Key: []byte("k1"), Value: []byte("stray"), Timestamp: time.Unix(1, 0)}})
			if c.refused == "" {
				if err != nil || len(tx.outputs) != 2 {
					t.Fatalf("err %v, %d outputs; want none and 2", err, len(tx.outputs))
				}
				return
			}
			if !errors.Is(err, ErrUndeclaredOutput) {
				t.Fatalf("err %v, want ErrUndeclaredOutput", err)
			}
			for _, want := range []string{"stage counter", "topic " + c.refused, "the topology must declare " + c.refused} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if len(tx.outputs) != 0 || tx.part(0).states["k1"].dirty {
				t.Fatalf("a refused step left %d outputs and a changed state", len(tx.outputs))
			}
		})
	}
}

// TestUndeclaredOutputStopsTheStage: on a broker, the transaction with the
// undeclared output is not committed (the group's offset stays before the
// record), Run returns the error, and a supervised stage stops instead of
// restarting into the same failure.
func TestUndeclaredOutputStopsTheStage(t *testing.T) {
	c := newCluster(t, 1)
	c.produce(t, 1, 0, 1, "stray")
	p := countingProcessor(c.kc.TopicPrefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Run(ctx, Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: 50 * time.Millisecond}, p)
	if !errors.Is(err, ErrUndeclaredOutput) || !strings.Contains(err.Error(), c.kc.TopicPrefix+"stray") {
		t.Fatalf("Run: %v, want ErrUndeclaredOutput naming %sstray", err, c.kc.TopicPrefix)
	}
	if _, _, n := c.outputs(t); n != 0 {
		t.Fatalf("%d outputs committed, want none", n)
	}
	cl, err := c.kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, GroupName(c.kc.TopicPrefix, p.Name))
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(c.in, 0); ok && o.At > 0 {
		t.Fatalf("the group committed offset %d past the refused record", o.At)
	}

	m := NewMetrics(nil)
	wait, err := Supervise(ctx, Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: 50 * time.Millisecond, Metrics: m}, p,
		SuperviseConfig{MinBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wait() // returns: the stage stopped by itself, ctx still live
	if ctx.Err() != nil {
		t.Fatal("the supervised stage ran until the test's deadline")
	}
	if n := testutil.ToFloat64(m.restarts.WithLabelValues(p.Name)); n != 0 {
		t.Fatalf("restarted %v times, want none", n)
	}
}

// TestProduceErrorsThatNoRetryMends: the produce errors a restart would
// only repeat (size limits, missing permissions) stop the stage with what
// to change, whatever franz-go wrapped them in; the others restart it. The
// first permanent error of a transaction is kept over the errors franz-go
// gives the records failed after it.
func TestProduceErrorsThatNoRetryMends(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string // "" for a retry
	}{
		{kerr.MessageTooLarge, "max.message.bytes of t.out"},
		{fmt.Errorf("wrapped: %w", kerr.RecordListTooLarge), "max.message.bytes of t.out"},
		{kerr.TopicAuthorizationFailed, "grant it WRITE and DESCRIBE on the topic"},
		{kerr.TransactionalIDAuthorizationFailed, "transactional ids"},
		{kerr.NotLeaderForPartition, ""},
		{kerr.RequestTimedOut, ""},
		{errors.New("connection reset"), ""},
	} {
		if got := rejectionHint(tc.err, "t.out"); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%v: hint %q, want one containing %q", tc.err, got, tc.want)
		}
	}
	tx := newTxn()
	tx.fail("t.out", kerr.RequestTimedOut)
	tx.fail("t.out", kerr.MessageTooLarge)
	tx.fail("t.out", kerr.RequestTimedOut)
	if topic, err := tx.produceErr(); topic != "t.out" || !errors.Is(err, kerr.MessageTooLarge) {
		t.Errorf("kept %s %v, want the permanent MessageTooLarge", topic, err)
	}
	if !permanent(fmt.Errorf("x: %w", ErrRecordRejected)) || !permanent(ErrUndeclaredOutput) || permanent(ErrDecodeUnavailable) {
		t.Error("permanent() misclassifies")
	}
}
