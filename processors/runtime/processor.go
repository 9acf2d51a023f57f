// Package runtime moves records from input topics through processors with
// Pebble-backed state to output topics, exactly once.
//
// A processor is a pure function of (state of one key, one input) to (new
// state, output records); it does no I/O. What an input record needs from
// outside to be read (a schema from the registry) is its Decode step,
// which the runtime calls before it, with the transaction's context. The runtime owns everything else:
// the consumer group, the state store, the changelog, transactions, timers,
// restore and metrics.
//
// # Commit protocol
//
// Each poll of input records is one Kafka transaction, in four steps, each
// a method of Instance named after it:
//
//  1. apply: each record is decoded (Processor.Decode, with the
//     transaction's context), then the processor runs over it, then over
//     the timers due, against an in-memory write cache of decoded states
//     read through to Pebble. Its outputs, and the records it finds poison,
//     are collected; nothing leaves the process yet. The outputs that name
//     a subject (Out.Coalesce) are then cut to each subject's net change
//     over the transaction.
//  2. produce: into the open transaction go the outputs, the poison records
//     (to the stage's quarantine topic), and every state, timer and event
//     time the poll changed, each encoded once, to the store's compacted
//     changelog topic, in the partition of the input it came from.
//  3. commit: every record is flushed and checked; the transaction then
//     commits together with the consumed input offsets (franz-go
//     GroupTransactSession). A record that failed aborts it and stops the
//     instance; a rebalance meanwhile aborts it quietly, the cache is
//     dropped, and the records are read again.
//  4. persist: after the commit, the same changes are written to Pebble in
//     one batch, each partition's with the changelog offset and the input
//     offsets they reflect.
//
// The store's invariant makes step 4 safe to lose: a partition's states and
// the changelog offset they reflect are only ever written together
// (Store.writePartitions is its only write). On start, and whenever a
// partition is assigned, Pebble is caught up from the changelog
// (read_committed) from that offset to the end, before any input is
// consumed: a crash after step 3 and before step 4 is repaired there, and a
// crash before step 3 aborted a transaction that Pebble never saw. Nothing
// is wiped; an empty disk is just a catch-up from offset 0.
//
// A stage writes only the topics it declares (Processor.Outputs), besides
// its changelog and quarantine topics.
package runtime

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is one input record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	// Headers are the record's Kafka headers, as read: a quarantined record
	// keeps them, and a re-fed one is addressed by one of them.
	Headers []kgo.RecordHeader
}

// Out is one output record. Its partition follows from its key (Kafka's
// murmur2 partitioner, as Java clients and Kafka Streams use), so an output
// topic can be the co-partitioned input of the next stage (repartitioning).
type Out struct {
	Topic string
	Key   []byte
	Value []byte
	// Encode, when set instead of Value, makes the value when the
	// transaction produces its records: only the outputs coalescing keeps
	// are encoded, and all of one transaction's into one buffer. Most of a
	// stage's memberships are coalesced away (docs/performance.md).
	Encode ValueAppender
	// Coalesce, when set, makes this output one step of a subject's
	// series that the transaction shortens to its net change (see
	// Coalesce).
	Coalesce *Coalesce
}

// ValueAppender is a value encoded on demand (Out.Encode): AppendValue
// appends its bytes to b and returns the extended slice. It is called at most
// once, after the step that made it returned, so it must hold its own copy
// of anything it encodes.
type ValueAppender interface {
	AppendValue(b []byte) []byte
}

// AppendValue appends o's value to b: Value, or what Encode makes.
func (o *Out) AppendValue(b []byte) []byte {
	if o.Encode != nil {
		return o.Encode.AppendValue(b)
	}
	return append(b, o.Value...)
}

// Coalesce names the subject an output reports on and the subject's state,
// as the output's topic sees it, before and after the output. Within one
// transaction the runtime keeps, of the outputs with the same topic and
// Coalesce.Key, only the last one (in its place, with its value and so its
// event id: the input that produced the final form), and drops that one
// too when its After equals the first one's Before: the subject is back
// where the transaction found it, so downstream sees nothing (A → B → A),
// or only the net change (A → B → C sends the C event alone).
//
// Before and After are fingerprints the processor makes from its state;
// they must leave out what does not count as a change (sources, ids), and
// Before of an output must be After of the subject's previous output (or
// of its state at the start of the transaction). A subject never reported
// has a Before no After equals ("" is a good one when every After is
// non-empty).
//
// Coalescing makes what is emitted depend on how inputs fall into
// transactions (polls), which is not deterministic; the state reached, and
// the last event of each subject, do not.
type Coalesce struct {
	Key           string
	Before, After string
}

// TimerKind says what clock a timer follows.
type TimerKind byte

const (
	// EventTime timers fire when the partition's event time (the largest
	// record timestamp processed) passes them.
	EventTime TimerKind = 'e'
	// WallClock timers fire when the wall clock passes them, even with no
	// input (a stale feed, for instance).
	WallClock TimerKind = 'w'
)

// Timer asks for the processor to be called for Key at At.
type Timer struct {
	Kind TimerKind
	Key  []byte
	At   time.Time
}

// Input is what a processor is called with: a record, or a fired timer.
type Input struct {
	Record Record
	Timer  *Timer // set when a timer fired; Record then names the partition only
	// Decoded is what Processor.Decode made of Record (nil without Decode,
	// and for a timer).
	Decoded any
}

// EventID derives the id of the n-th event caused by this input from its
// position, so reprocessing the same input gives the same ids.
func (in Input) EventID(n int) string {
	if in.Timer != nil {
		return fmt.Sprintf("timer-%s-%d-%c-%d-%s-%d", in.Record.Topic, in.Record.Partition, in.Timer.Kind,
			in.Timer.At.UnixMilli(), in.Timer.Key, n)
	}
	return in.Record.Topic + "-" + strconv.Itoa(int(in.Record.Partition)) + "-" +
		strconv.FormatInt(in.Record.Offset, 10) + "-" + strconv.Itoa(n)
}

// Step is what processing one input did to the state of its key.
type Step[S any] struct {
	State   S
	Write   bool // the state changed: store it (and send it to the changelog)
	Delete  bool // the key's state is gone
	Outputs []Out
	Timers  []Timer // set (or, with a zero At, cancel) timers of this key
	// EventTime, when set, advances the partition's event time (for
	// EventTime timers) instead of the record timestamp: a billing row's
	// date, say.
	EventTime time.Time
}

// Processor is a stateful processing stage keyed by the input record key.
type Processor[S any] struct {
	// Name names the store, the changelog topic and the consumer group.
	Name   string
	Inputs []string
	// Outputs are the topics Process may write to. The runtime writes the
	// stage's changelog and quarantine topics itself, besides these; a
	// record Process returns for any topic not listed here (those two
	// included) is refused: the transaction aborts and the stage stops with
	// ErrUndeclaredOutput, naming the topic the topology must declare.
	Outputs []string
	// New returns the state of a key seen for the first time.
	New       func() S
	Marshal   func(S) ([]byte, error)
	Unmarshal func([]byte) (S, error)
	// Decode, when set, turns each input record into Input.Decoded before
	// Process sees it. It is the step that may do I/O (a schema registry
	// lookup), so it gets the transaction's context. An error marked with
	// quarantine.Poison says the record is bad: it goes to the quarantine
	// topic. Any other error says Decode could not do its I/O (a registry
	// down, a timeout): the transaction is aborted, counted under
	// reason="decode_unavailable", and the instance stops with
	// ErrDecodeUnavailable; Supervise starts it again after a back-off.
	Decode func(ctx context.Context, r Record) (any, error)
	// Process must be deterministic and do no I/O.
	//
	// An error marked with quarantine.Poison says the input record itself is
	// bad (it cannot be decoded, or breaks its topic's contract): the runtime
	// then writes the record to the stage's quarantine topic and goes on, so
	// Process must return such an error before it changes the state it was
	// given (the state may be a pointer the runtime keeps in its cache). Any
	// other error stops the instance with nothing committed.
	Process func(state S, in Input) (Step[S], error)
	// CopiesInput says that neither Decode nor Process keeps an input
	// Record's Key, Value or Headers, or anything sliced from them, once it
	// returns: what either keeps (in a state, in Decoded) it copies, as a
	// string conversion does. The runtime then reuses the memory fetched
	// records are decompressed into once their transaction has ended,
	// instead of leaving a new buffer per fetched batch to the garbage
	// collector. Leave it false when unsure: a byte kept would be zeroed and
	// reused under the processor.
	CopiesInput bool
}

// Stage is a Processor with its state type erased, as Run takes it. Only
// *Processor[S] implements it.
type Stage interface {
	name() string
	inputs() []string
	outputs() []string
	newState() any
	marshal(any) ([]byte, error)
	unmarshal([]byte) (any, error)
	process(state any, in Input) (stepResult, error)
	// decode is Processor.Decode; ok is false when the processor has none.
	decode(ctx context.Context, r Record) (v any, ok bool, err error)
	copiesInput() bool
}

type stepResult struct {
	state     any
	write     bool
	del       bool
	outs      []Out
	timers    []Timer
	eventTime time.Time
}

func (p *Processor[S]) name() string      { return p.Name }
func (p *Processor[S]) inputs() []string  { return p.Inputs }
func (p *Processor[S]) outputs() []string { return p.Outputs }
func (p *Processor[S]) copiesInput() bool { return p.CopiesInput }
func (p *Processor[S]) newState() any     { return p.New() }
func (p *Processor[S]) marshal(v any) ([]byte, error) {
	return p.Marshal(v.(S))
}
func (p *Processor[S]) unmarshal(b []byte) (any, error) { return p.Unmarshal(b) }
func (p *Processor[S]) decode(ctx context.Context, r Record) (any, bool, error) {
	if p.Decode == nil {
		return nil, false, nil
	}
	v, err := p.Decode(ctx, r)
	return v, true, err
}
func (p *Processor[S]) process(state any, in Input) (res stepResult, err error) {
	// A panic in a processor is a bug; it stops the instance with the input
	// named (nothing is committed) instead of crashing the process.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	st, err := p.Process(state.(S), in)
	if err != nil {
		return stepResult{}, err
	}
	return stepResult{st.State, st.Write, st.Delete, st.Outputs, st.Timers, st.EventTime}, nil
}
