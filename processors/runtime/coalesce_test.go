package runtime

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/testwait"
)

// settingProcessor keeps a value per key; an input "v" sets it and reports
// the change on t.out, coalesced by key with the value before and after,
// and logs every input on t.log, not coalesced.
func settingProcessor() *Processor[string] {
	return &Processor[string]{
		Name:      "setting",
		Inputs:    []string{"t.in"},
		Outputs:   []string{"t.out", "t.log"},
		New:       func() string { return "" },
		Marshal:   func(s string) ([]byte, error) { return []byte(s), nil },
		Unmarshal: func(b []byte) (string, error) { return string(b), nil },
		Process: func(old string, in Input) (Step[string], error) {
			v := string(in.Record.Value)
			st := Step[string]{State: v, Write: true, Outputs: []Out{{Topic: "t.log", Key: in.Record.Key, Value: []byte(v)}}}
			if v != old {
				st.Outputs = append(st.Outputs, Out{Topic: "t.out", Key: in.Record.Key, Value: []byte(v + " " + in.EventID(0)),
					Coalesce: &Coalesce{Key: string(in.Record.Key), Before: old, After: v}})
			}
			return st, nil
		},
	}
}

// TestCoalescePerTransaction: within one transaction, a subject's series of
// coalesced outputs shrinks to its net change, with the event id of the
// input that made its final form, in that input's place; a series that
// returns to the state before the transaction leaves nothing; outputs
// without Coalesce are all kept, in order.
func TestCoalescePerTransaction(t *testing.T) {
	for _, c := range []struct {
		name   string
		before map[string]string // states at the start of the transaction
		inputs []string          // "key=value", at offsets 0, 1, ...
		want   []string          // t.out values, in order
	}{
		{"a flip undone: nothing", map[string]string{"k": "A"}, []string{"k=B", "k=A"}, nil},
		{"a flip undone in three steps: nothing", map[string]string{"k": "A"}, []string{"k=B", "k=C", "k=A"}, nil},
		{"net change only, with the id of its last input", map[string]string{"k": "A"}, []string{"k=B", "k=C"}, []string{"C t.in-0-1-0"}},
		{"a first report is kept", nil, []string{"k=B"}, []string{"B t.in-0-0-0"}},
		{"a first report undone is a report all the same", nil, []string{"k=B", "k="}, nil},
		{"subjects apart, in the order of their final forms", map[string]string{"k": "A", "j": "X"},
			[]string{"k=B", "j=Y", "k=C", "j=X", "k=A", "j=Z"}, []string{"Z t.in-0-5-0"}},
		{"a change that stays", map[string]string{"k": "A", "j": "X"},
			[]string{"k=B", "j=Y", "k=C"}, []string{"Y t.in-0-1-0", "C t.in-0-2-0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := settingProcessor()
			in := &Instance{name: p.Name, st: p, store: openTestStore(t), m: NewMetrics(nil), declared: declaredOutputs(p)}
			tx := newTxn()
			pc := tx.part(0)
			for k, v := range c.before {
				pc.states[k] = &entry{state: v}
			}
			for i, kv := range c.inputs {
				k, v, _ := strings.Cut(kv, "=")
				r := Record{Topic: "t.in", Offset: int64(i), Key: []byte(k), Value: []byte(v), Timestamp: time.Unix(1, 0)}
				if err := in.step(tx, pc, 0, []byte(k), Input{Record: r}); err != nil {
					t.Fatal(err)
				}
			}
			dropped := coalesceOutputs(tx)
			var got, logged []string
			for _, r := range tx.outputs {
				switch r.Topic {
				case "t.out":
					got = append(got, string(r.Value))
				case "t.log":
					logged = append(logged, string(r.Key)+"="+string(r.Value))
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("t.out %q, want %q", got, c.want)
			}
			if !slices.Equal(logged, c.inputs) {
				t.Errorf("t.log %q, want every input %q in order", logged, c.inputs)
			}
			if want := len(c.inputs) - len(c.want); dropped != want {
				t.Errorf("dropped %d, want %d", dropped, want)
			}
		})
	}
}

// paddedValue is an output value made at produce time (Out.Encode): "key n",
// padded to 300 bytes so that a transaction's values outgrow the buffer
// they start in. It counts how often it is made.
type paddedValue struct {
	text  string
	calls *atomic.Int64
}

func (v *paddedValue) AppendValue(b []byte) []byte {
	v.calls.Add(1)
	b = append(b, v.text...)
	return append(b, strings.Repeat(".", 300-len(v.text))...)
}

// TestEncodedOnlyWhenKept: outputs given as Out.Encode are encoded only
// when their transaction keeps them, once each, and the values of one
// transaction, which share a buffer, arrive intact. Every input reports
// its key's new count, coalesced by key, so a poll of several inputs of a
// key keeps its last report only.
func TestEncodedOnlyWhenKept(t *testing.T) {
	c := newCluster(t, 3)
	const keys, total = 5, 1000
	c.produce(t, keys, 0, total, "")
	var calls atomic.Int64
	p := &Processor[int]{
		Name:      "encoder",
		Inputs:    []string{c.in},
		Outputs:   []string{c.out},
		New:       func() int { return 0 },
		Marshal:   func(n int) ([]byte, error) { return strconv.AppendInt(nil, int64(n), 10), nil },
		Unmarshal: func(b []byte) (int, error) { return strconv.Atoi(string(b)) },
		Process: func(n int, in Input) (Step[int], error) {
			v := &paddedValue{text: fmt.Sprintf("%s %d", in.Record.Key, n+1), calls: &calls}
			return Step[int]{State: n + 1, Write: true, Outputs: []Out{{Topic: c.out, Key: in.Record.Key, Encode: v,
				Coalesce: &Coalesce{Key: string(in.Record.Key), Before: strconv.Itoa(n), After: strconv.Itoa(n + 1)}}}}, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Kafka: c.kc, DataDir: t.TempDir()}, p) }()
	var recs []*kgo.Record
	last := map[string]int{}
	finished := testwait.For(time.Minute, func() bool {
		var err error
		if recs, err = consume.All(context.Background(), c.kc, c.out); err != nil {
			t.Fatal(err)
		}
		clear(last)
		for _, r := range recs {
			text := strings.TrimRight(string(r.Value), ".")
			k, n, _ := strings.Cut(text, " ")
			if len(r.Value) != 300 || k != string(r.Key) {
				t.Fatalf("value %q (%d bytes) of key %s: want \"key n\" padded to 300 bytes", text, len(r.Value), r.Key)
			}
			i, err := strconv.Atoi(n)
			if err != nil || i <= last[k] {
				t.Fatalf("key %s: count %q after %d", k, n, last[k])
			}
			last[k] = i
		}
		return len(last) == keys && !slices.ContainsFunc(slices.Collect(maps.Values(last)), func(n int) bool { return n != total/keys })
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !finished {
		t.Fatalf("the last counts are %v, want %d for each of %d keys", last, total/keys, keys)
	}
	if got := calls.Load(); got != int64(len(recs)) {
		t.Fatalf("%d values encoded for %d outputs produced: only the kept outputs should be", got, len(recs))
	}
	if len(recs) >= total {
		t.Fatalf("%d outputs of %d inputs: polls of several inputs per key should have coalesced", len(recs), total)
	}
}
