// Package override writes and reads operator overrides (records.OperatorAction)
// on the operator-actions topic. An override is input like a billing row: the
// stages apply it in their exactly-once path, so this package only publishes
// it, audited (who, when, why, ticket), and lists what was published.
package override

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/records"
	"github.com/usagestream/usagestream/schemas"
)

// Codec encodes and decodes operator actions (schemas/operator_action.avsc).
type Codec struct {
	s *serde.Struct[records.OperatorAction]
}

// NewCodec compiles the embedded schema.
func NewCodec() (*Codec, error) {
	s, err := serde.NewStruct[records.OperatorAction](schemas.MustText(schemas.OperatorAction))
	if err != nil {
		return nil, err
	}
	return &Codec{s: s}, nil
}

// Append appends a framed with schemaID.
func (c *Codec) Append(dst []byte, schemaID int, a *records.OperatorAction) ([]byte, error) {
	return c.s.Append(dst, schemaID, a)
}

// NewResolver decodes framed actions written with any registered version of
// the schema, reading writer schemas from reg.
func (c *Codec) NewResolver(reg *serde.Registry) *serde.Resolver[records.OperatorAction] {
	return c.s.NewResolver(reg)
}

// NewID returns a random action id (a version 4 UUID): unique without
// coordination, so two operators never collide.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Position is where an action was written: the cause every event it causes cites.
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Writer publishes operator actions: clears to the operator-actions topic
// (key service_point_id), holds and releases to the operator-holds topic
// (key customer_id). Safe for concurrent use.
type Writer struct {
	cl            *kgo.Client
	clears, holds string
	ids           map[string]int // schema id by topic
	codec         *Codec
}

// NewWriter connects to Kafka and the registry of kc and registers the
// schema under the topic's subject.
func NewWriter(ctx context.Context, kc kafkaconf.Config) (*Writer, error) {
	codec, err := NewCodec()
	if err != nil {
		return nil, err
	}
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return nil, err
	}
	names := topics.NewNames(kc.TopicPrefix)
	w := &Writer{clears: names.OperatorActions, holds: names.OperatorHolds, ids: map[string]int{}, codec: codec}
	reg := serde.NewRegistry(rc)
	for _, topic := range []string{w.clears, w.holds} {
		id, err := reg.Register(ctx, serde.SubjectFor(topic), schemas.MustText(schemas.OperatorAction))
		if err != nil {
			return nil, err
		}
		w.ids[topic] = id
	}
	// Idempotent and acks=all (franz-go's defaults): an action is written
	// once, or the caller is told it was not.
	if w.cl, err = kc.NewClient(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// Close closes the Kafka client.
func (w *Writer) Close() { w.cl.Close() }

// Write fills in what the operator may leave out (an id, the time of the
// request), checks a and publishes it to the topic of its stage, keyed as
// that stage's other inputs are (a.Key), so that it reaches the partition
// of its subject.
func (w *Writer) Write(ctx context.Context, a *records.OperatorAction) (Position, error) {
	if a.ActionID == "" {
		a.ActionID = NewID()
	}
	if a.RequestedAt.IsZero() {
		a.RequestedAt = time.Now().UTC()
	}
	a.RequestedAt = a.RequestedAt.Truncate(time.Millisecond) // what the schema keeps
	if err := a.Validate(); err != nil {
		return Position{}, err
	}
	topic := w.clears
	if a.ForCustomer() {
		topic = w.holds
	}
	v, err := w.codec.Append(nil, w.ids[topic], a)
	if err != nil {
		return Position{}, fmt.Errorf("encoding operator action %s: %w", a.ActionID, err)
	}
	r, err := w.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(a.Key()), Value: v}).First()
	if err != nil {
		return Position{}, fmt.Errorf("writing operator action %s to %s: %w (nothing was written; send it again)", a.ActionID, topic, err)
	}
	return Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, nil
}

// Entry is one published action and where it is.
type Entry struct {
	Position
	Action records.OperatorAction `json:"action"`
}

// List reads every action published so far on both topics, oldest request
// first: the audit trail. A record that does not decode is reported, not
// skipped. InForce tells which are in force.
func List(ctx context.Context, kc kafkaconf.Config) ([]Entry, error) {
	codec, err := NewCodec()
	if err != nil {
		return nil, err
	}
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return nil, err
	}
	res := codec.NewResolver(serde.NewRegistry(rc))
	names := topics.NewNames(kc.TopicPrefix)
	var (
		out  []Entry
		derr error
	)
	for _, topic := range []string{names.OperatorActions, names.OperatorHolds} {
		err = consume.Each(ctx, kc, topic, func(r *kgo.Record) {
			e := Entry{Position: Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}}
			if _, err := res.Decode(ctx, r.Value, &e.Action); err != nil && derr == nil {
				derr = fmt.Errorf("decoding the operator action at %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			out = append(out, e)
		})
		if err != nil {
			return nil, err
		}
	}
	if derr != nil {
		return nil, derr
	}
	slices.SortStableFunc(out, func(a, b Entry) int { return a.Action.RequestedAt.Compare(b.Action.RequestedAt) })
	return out, nil
}

// InForce is the overrides in force among entries (List's, in request
// order): every clear (it is never undone: the state it left is the state)
// and the last hold of each (customer, premise, program) unless a release
// came after it or, at now, its until date has passed (OV2).
func InForce(entries []Entry, now time.Time) []Entry {
	type subject struct{ customer, premise, program string }
	last := map[subject]int{}
	var out []Entry
	for i, e := range entries {
		a := &e.Action
		if !a.ForCustomer() {
			continue
		}
		last[subject{a.CustomerID, a.PremiseID, a.Program}] = i
	}
	for i, e := range entries {
		a := &e.Action
		if a.ForCustomer() && (a.Kind == records.ActionReleaseHold || last[subject{a.CustomerID, a.PremiseID, a.Program}] != i) {
			continue
		}
		if a.Until != nil && !now.Before(a.Until.AddDays(1).Time()) {
			continue // ended
		}
		out = append(out, e)
	}
	return out
}
