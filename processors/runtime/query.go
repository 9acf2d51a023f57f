package runtime

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kgo"
)

// This file is what the operator tools (query API, replay) need from the
// runtime: read-only lookups into an instance's state, and a look at a
// stage's name and inputs. Nothing here writes.

// ErrNotOwned says the key's partition belongs to another instance (or to
// none yet, during a rebalance): the local store may hold an old copy of it,
// which must not be served as the truth.
var ErrNotOwned = errors.New("partition not owned by this instance")

// StageName is the name of a stage: its store, changelog and group derive
// from it.
func StageName(st Stage) string { return st.name() }

// StageInputs lists the input topics of a stage.
func StageInputs(st Stage) []string { return append([]string(nil), st.inputs()...) }

// StageOutputs lists the topics a stage declares it writes to (nil: it
// declares none, and any is allowed; see Processor.Outputs).
func StageOutputs(st Stage) []string {
	if o := st.outputs(); o != nil {
		return append([]string{}, o...)
	}
	return nil
}

// WithInputs returns st reading from other input topics, everything else
// unchanged. A shadow replay uses it to run a stage whose outputs go to
// shadow topics on the live input.
func WithInputs(st Stage, inputs []string) Stage {
	return rebound{Stage: st, in: append([]string(nil), inputs...)}
}

type rebound struct {
	Stage
	in []string
}

func (r rebound) inputs() []string { return r.in }

// KeyPartition is the partition of key in a topic of n partitions: Kafka's
// murmur2 partitioner, as the producers and the runtime's outputs use.
func KeyPartition(key []byte, n int) int32 {
	if n <= 0 {
		return 0
	}
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: key}, n))
}

// Name is the stage this instance runs.
func (in *Instance) Name() string { return in.name }

// Group is the consumer group of this instance.
func (in *Instance) Group() string { return in.cfg.Group }

// Inputs lists the input topics of this instance's stage.
func (in *Instance) Inputs() []string { return StageInputs(in.st) }

// MemberID is the static group instance id this instance joins the group
// with: a group description names the owner of a partition by it.
func (in *Instance) MemberID() (string, error) {
	id, err := instanceID(filepath.Join(in.cfg.DataDir, in.name))
	if err != nil {
		return "", err
	}
	return in.name + "-" + id, nil
}

// Lookup returns the decoded state of key in partition p, if this instance
// owns p now (ErrNotOwned otherwise). The state is what the last committed
// transaction left; the caller must not change it.
func (in *Instance) Lookup(p int32, key []byte) (state any, found bool, err error) {
	if !in.owns(p) {
		return nil, false, ErrNotOwned
	}
	b, ok, err := in.store.Get(p, key)
	if err != nil || !ok {
		return nil, false, err
	}
	v, err := in.st.unmarshal(b)
	if err != nil {
		return nil, false, fmt.Errorf("decoding the stored state of key %q in partition %d: %w", key, p, err)
	}
	return v, true, nil
}

// WithoutOutputs returns st with its outputs to the given topics dropped.
// A replay into the live topics uses it for repartition topics: the records
// a deterministic stage would write there again are there already, and the
// next stage reprocesses those, at their original offsets, so its event ids
// come out the same.
func WithoutOutputs(st Stage, topics ...string) Stage {
	drop := map[string]bool{}
	for _, t := range topics {
		drop[t] = true
	}
	return filtered{Stage: st, drop: drop}
}

type filtered struct {
	Stage
	drop map[string]bool
}

func (f filtered) process(state any, in Input) (stepResult, error) {
	res, err := f.Stage.process(state, in)
	if err != nil {
		return res, err
	}
	kept := res.outs[:0:0]
	for _, o := range res.outs {
		if !f.drop[o.Topic] {
			kept = append(kept, o)
		}
	}
	res.outs = kept
	return res, nil
}
