package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
)

// keeper is a state that keeps a copy of every value its key was sent.
type keeper struct {
	Values []string `json:"values"`
}

// TestCopiesInputReusesFetchBuffers: a processor that copies what it keeps
// (CopiesInput) gets its fetch buffers reused across transactions, and
// what it kept and sent is still each record's own value after the
// buffers it was read from were zeroed and filled again: every output
// carries the values of its key so far, in order, exactly once.
func TestCopiesInputReusesFetchBuffers(t *testing.T) {
	c := newCluster(t, 3)
	prefix := c.kc.TopicPrefix
	st := &Processor[*keeper]{
		Name: "keeper", Inputs: []string{c.in}, Outputs: []string{c.out}, CopiesInput: true,
		New:       func() *keeper { return &keeper{} },
		Marshal:   func(k *keeper) ([]byte, error) { return json.Marshal(k) },
		Unmarshal: func(b []byte) (*keeper, error) { var k keeper; err := json.Unmarshal(b, &k); return &k, err },
		Process: func(k *keeper, in Input) (Step[*keeper], error) {
			k.Values = append(k.Values, string(in.Record.Value)) // a copy, as CopiesInput promises
			v := fmt.Sprintf("%s %s", in.Record.Key, strings.Join(k.Values, ","))
			return Step[*keeper]{State: k, Write: true, Outputs: []Out{{Topic: prefix + "out", Key: in.Record.Key, Value: []byte(v)}}}, nil
		},
	}
	in, err := NewInstance(Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: time.Hour}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kc.Brokers...)) // snappy by default: compressed batches
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const keys, bursts, each = 5, 8, 40
	sent := 0
	for b := range bursts {
		// Each burst is waited for: a transaction of its own, read from
		// buffers the ones before gave back.
		var recs []*kgo.Record
		for i := range each {
			n := b*each + i
			recs = append(recs, &kgo.Record{Topic: c.in, Key: []byte(fmt.Sprintf("k%03d", n%keys)), Value: []byte(fmt.Sprintf("v%d", n))})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		sent += each
		waitOutputs(t, c, sent, time.Minute)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	in.pool.mu.Lock()
	reused := in.pool.reused
	in.pool.mu.Unlock()
	if reused == 0 {
		t.Fatalf("no fetch buffer reused over %d transactions", bursts)
	}
	want := map[string][]string{}
	for n := range sent {
		k := fmt.Sprintf("k%03d", n%keys)
		want[k] = append(want[k], fmt.Sprintf("v%d", n))
	}
	got := map[string]int{}
	recs, err := consume.All(context.Background(), c.kc, c.out) // each partition in offset order
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		key, vals, _ := strings.Cut(string(r.Value), " ")
		n := got[key]
		if w := strings.Join(want[key][:n+1], ","); vals != w {
			t.Fatalf("output %d of %s holds %q, want %q", n+1, key, vals, w)
		}
		got[key]++
	}
	if len(recs) != sent {
		t.Fatalf("%d outputs for %d records", len(recs), sent)
	}
}
