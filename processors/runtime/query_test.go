package runtime

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKeyPartitionIsTheProducersPartition: KeyPartition names the partition
// a producer with franz-go's default partitioner (as ingest uses) writes a
// key to, so the query API looks a key up where it is.
func TestKeyPartitionIsTheProducersPartition(t *testing.T) {
	c := newCluster(t, 7)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kc.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 200 {
		key := []byte(fmt.Sprintf("SP-E-%08d", i*7919))
		r, err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: c.in, Key: key, Value: []byte("x")}).First()
		if err != nil {
			t.Fatal(err)
		}
		if got := KeyPartition(key, 7); got != r.Partition {
			t.Fatalf("key %s: KeyPartition says %d, the producer wrote to %d", key, got, r.Partition)
		}
	}
}

// TestStageWrappers: WithInputs changes only the inputs; WithoutOutputs drops
// only the outputs to the named topics and keeps the state step.
func TestStageWrappers(t *testing.T) {
	p := &Processor[int]{
		Name: "w", Inputs: []string{"a"}, Outputs: []string{"keep", "drop"},
		New:       func() int { return 0 },
		Marshal:   func(int) ([]byte, error) { return nil, nil },
		Unmarshal: func([]byte) (int, error) { return 0, nil },
		Process: func(s int, in Input) (Step[int], error) {
			return Step[int]{State: s + 1, Write: true, Outputs: []Out{{Topic: "keep"}, {Topic: "drop"}, {Topic: "keep"}}}, nil
		},
	}
	rb := WithInputs(p, []string{"b", "c"})
	if StageName(rb) != "w" || !slices.Equal(StageInputs(rb), []string{"b", "c"}) || !slices.Equal(StageInputs(p), []string{"a"}) {
		t.Fatalf("WithInputs: name %q inputs %v (original %v)", StageName(rb), StageInputs(rb), StageInputs(p))
	}
	if !slices.Equal(StageOutputs(rb), []string{"keep", "drop"}) || StageOutputs(&Processor[int]{}) != nil {
		t.Fatalf("StageOutputs: %v through WithInputs; %v for a processor declaring none", StageOutputs(rb), StageOutputs(&Processor[int]{}))
	}
	f := WithoutOutputs(WithInputs(p, []string{"b"}), "drop")
	res, err := f.process(41, Input{})
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, o := range res.outs {
		topics = append(topics, o.Topic)
	}
	if !slices.Equal(topics, []string{"keep", "keep"}) || res.state != 42 || !res.write || !slices.Equal(StageInputs(f), []string{"b"}) {
		t.Fatalf("WithoutOutputs: outputs %v, state %v, write %v, inputs %v", topics, res.state, res.write, StageInputs(f))
	}
	full, _ := p.process(41, Input{})
	if len(full.outs) != 3 {
		t.Fatalf("the wrapped processor lost outputs: %v", full.outs)
	}
}
