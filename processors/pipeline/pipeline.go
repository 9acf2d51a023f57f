// Package pipeline wires the domain rules (processors/rules) to the
// streaming runtime (processors/runtime): it decodes input records, calls the
// pure rule functions, and encodes their events as Avro.
//
// The topology (stages, keys, inputs, outputs, internal topics) is declared
// once in processors/topology; the stages here take their names, inputs and
// declared outputs from it.
package pipeline

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/topology"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/producers/override"
	"github.com/usagestream/usagestream/records"
	recavro "github.com/usagestream/usagestream/records/avro"
)

// Stage names (processors/topology's): they name the stores, changelogs and
// consumer groups.
const (
	StageServicePoint = topology.ServicePoint
	StagePremise      = topology.Premise
	StageCustomer     = topology.Customer
	StageInterval     = topology.Interval
)

// Pipeline holds what the stages share: topics, policy and codecs.
type Pipeline struct {
	topo   topology.Topology
	topics topics.Names
	policy rules.Policy
	reg    *serde.Registry

	eligibility   *recavro.Writer[recavro.EligibilityChanged]
	corrections   *recavro.Writer[recavro.UsageCorrected]
	accountEvents *recavro.Writer[recavro.AccountEvent]
	anomalies     *recavro.Writer[recavro.Anomaly]
	actions       *override.Codec
	reads         *interval.Validator // the contract of records on intervals.v1
	scratch       sync.Pool           // of *[]byte: see exactValue
}

// Option changes how New builds the stages.
type Option func(*options)

type options struct {
	externalPrefix *string
	readContract   interval.Check // the interval stage's (interval.go)
}

// ExternalInputsFrom makes the stages read their external inputs (the
// topology's Input topics: billing and interval reads) under prefix, and
// everything else (internal topics, outputs) under the connection's prefix.
// A shadow replay runs such a pipeline: the live input, its own topics.
// The stages tell their inputs apart by these names, so a stage given
// other input names (runtime.WithInputs) would read one input for another.
func ExternalInputsFrom(prefix string) Option {
	return func(o *options) { o.externalPrefix = &prefix }
}

// New registers the output schemas and returns the pipeline.
func New(ctx context.Context, kc kafkaconf.Config, policy rules.Policy, opts ...Option) (*Pipeline, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return nil, err
	}
	topo := topology.New(kc.TopicPrefix)
	if err := topo.Validate(); err != nil {
		return nil, err
	}
	if o.externalPrefix != nil {
		topo = withExternalInputs(topo, *o.externalPrefix)
	}
	actions, err := override.NewCodec()
	if err != nil {
		return nil, err
	}
	reads, err := interval.NewValidator(o.readContract)
	if err != nil {
		return nil, fmt.Errorf("the interval stage's read contract: %w", err)
	}
	p := &Pipeline{topo: topo, topics: topo.Names, policy: policy, reg: serde.NewRegistry(rc), actions: actions, reads: reads}
	if p.eligibility, err = recavro.Register[recavro.EligibilityChanged](ctx, p.reg, p.topics.Eligibility); err != nil {
		return nil, err
	}
	if p.corrections, err = recavro.Register[recavro.UsageCorrected](ctx, p.reg, p.topics.Corrections); err != nil {
		return nil, err
	}
	if p.accountEvents, err = recavro.Register[recavro.AccountEvent](ctx, p.reg, p.topics.AccountEvents); err != nil {
		return nil, err
	}
	if p.anomalies, err = recavro.Register[recavro.Anomaly](ctx, p.reg, p.topics.Anomalies); err != nil {
		return nil, err
	}
	return p, nil
}

// withExternalInputs renames topo's external input topics (in its names
// and its stages' inputs) to their names under prefix.
func withExternalInputs(topo topology.Topology, prefix string) topology.Topology {
	rename := func(name string) string {
		if t, ok := topo.Topic(name); ok && t.Kind == topology.Input {
			return prefix + strings.TrimPrefix(name, topo.Prefix)
		}
		return name
	}
	topo.Names.Billing, topo.Names.Intervals = rename(topo.Names.Billing), rename(topo.Names.Intervals)
	topo.Names.OperatorActions = rename(topo.Names.OperatorActions)
	topo.Names.OperatorHolds = rename(topo.Names.OperatorHolds)
	stages := slices.Clone(topo.Stages)
	for i := range stages {
		in := slices.Clone(stages[i].Inputs)
		for k := range in {
			in[k] = rename(in[k])
		}
		stages[i].Inputs = in
	}
	topo.Stages = stages
	return topo
}

// Stages returns the stages for the runtime, in the topology's data-flow
// order.
func (p *Pipeline) Stages() []runtime.Stage {
	byName := map[string]runtime.Stage{
		StageServicePoint: p.ServicePointStage(),
		StagePremise:      p.PremiseStage(),
		StageCustomer:     p.CustomerStage(),
		StageInterval:     p.IntervalStage(),
	}
	out := make([]runtime.Stage, 0, len(byName))
	for _, s := range p.topo.Stages {
		st, ok := byName[s.Name]
		if !ok {
			panic("pipeline: the topology declares stage " + s.Name + ", which the pipeline does not implement")
		}
		out = append(out, st)
	}
	return out
}

// Topology is the topology the stages were built from.
func (p *Pipeline) Topology() topology.Topology { return p.topo }

// WaitCaughtUp waits until every stage (with the default group names) has
// processed everything on its input so far, in data-flow order, so that what
// was on the billing topic when it was called has reached the eligibility
// topic when it returns.
//
// With stage names given, it waits for those only (a deployment that runs
// some stages elsewhere, or not at all).
func WaitCaughtUp(ctx context.Context, kc kafkaconf.Config, stages ...string) error {
	for _, s := range topology.New(kc.TopicPrefix).Stages {
		if len(stages) > 0 && !slices.Contains(stages, s.Name) {
			continue
		}
		for _, input := range s.Inputs {
			if err := consume.WaitCaughtUp(ctx, kc, s.Group(kc.TopicPrefix), input); err != nil {
				return fmt.Errorf("waiting for stage %s: %w", s.Name, err)
			}
		}
	}
	return nil
}

// StageNames are the names of the stages Stages returns, in the same order,
// for tools that need them without a registry connection (replay
// --quarantine validates its argument with them).
func StageNames() []string { return topology.New("").StageNames() }

// errKeyMismatch is the poison error of a record whose key is not the field
// its topic is keyed by. Neither value is named: the error goes to logs, and
// both are in the quarantined record.
func errKeyMismatch(what, field, topic string) error {
	return quarantine.Poison(fmt.Errorf("%s whose record key is not its %s: %s must be keyed by %s (fix the producer)", what, field, topic, field))
}

// membership is the stage 1 -> premise stage record: a membership and the
// utility it belongs to (every event carries the utility code).
type membership struct {
	Utility    string           `json:"utility"`
	Membership rules.Membership `json:"membership"`
}

// customerInput is the premise stage -> stage 2 record.
type customerInput struct {
	Utility string              `json:"utility"`
	Input   rules.CustomerInput `json:"input"`
}

// events numbers the events one input causes, for ids derived from its position.
type events struct {
	p    *Pipeline
	in   runtime.Input
	n    int
	outs []runtime.Out
	err  error
}

// newEvents numbers the events of in. It is small enough to inline, so an
// events value that no output outlives stays on the stack.
func (p *Pipeline) newEvents(in runtime.Input) *events { return &events{p: p, in: in} }

// emit adds the event v, framed by w, to the outputs of e.
func emit[T any](e *events, topic string, key string, w *recavro.Writer[T], rec *T) {
	if e.err != nil {
		return
	}
	v, err := e.p.exactBytes(func(b []byte) ([]byte, error) { return w.Append(b, rec) })
	if err != nil {
		e.err = err
		return
	}
	e.outs = append(e.outs, runtime.Out{Topic: topic, Key: []byte(key), Value: v})
}

func (e *events) id() string {
	id := e.in.EventID(e.n)
	e.n++
	return id
}

// ServicePointStage is stage 1: the rules of one service point.
func (p *Pipeline) ServicePointStage() *runtime.Processor[*rules.ServicePoint] {
	st := p.topo.MustStage(StageServicePoint)
	bill := recavro.NewBillingDecoder(p.reg)
	actions := p.actions.NewResolver(p.reg)
	return &runtime.Processor[*rules.ServicePoint]{
		Name: st.Name,
		// Every decoder copies what it keeps (string conversions; twmb/avro
		// without AliasInput), so fetch buffers are reused.
		CopiesInput: true,
		Inputs:      st.Inputs,
		Outputs:     st.Outputs,
		New:         func() *rules.ServicePoint { return &rules.ServicePoint{} },
		Marshal: func(sp *rules.ServicePoint) ([]byte, error) {
			return sp.MarshalBinary()
		},
		Unmarshal: func(b []byte) (*rules.ServicePoint, error) {
			var sp rules.ServicePoint
			return &sp, sp.UnmarshalBinary(b)
		},
		// The registry lookup is the runtime's decode step, with the
		// transaction's context: an outage aborts and retries, a bad record
		// is quarantined; Process does no I/O.
		Decode: func(ctx context.Context, r runtime.Record) (any, error) {
			if r.Topic == p.topics.OperatorActions {
				a := &records.OperatorAction{}
				if _, err := actions.Decode(ctx, r.Value, a); err != nil {
					return nil, err
				}
				return a, nil
			}
			return bill.Decode(ctx, r.Value)
		},
		Process: func(sp *rules.ServicePoint, in runtime.Input) (runtime.Step[*rules.ServicePoint], error) {
			if a, ok := in.Decoded.(*records.OperatorAction); ok {
				return p.applyAction(sp, a, in)
			}
			d := in.Decoded.(*recavro.DecodedBillingRow)
			if d.Row.ServicePointID != string(in.Record.Key) {
				return runtime.Step[*rules.ServicePoint]{}, errKeyMismatch("billing row", "service_point_id", "the billing topic")
			}
			src := rules.Source{Topic: in.Record.Topic, Partition: in.Record.Partition, Offset: in.Record.Offset, File: d.Source.File, Line: d.Line}
			var sentBuf [4]rules.SentMembership // on the stack: most service points have one or two pairs
			sentBefore := append(sentBuf[:0], sp.Sent...)
			out := sp.ApplyRow(p.policy, &d.Row, src, in.Record.Timestamp)
			u := d.Source.Utility
			ev := p.newEvents(in)
			for _, c := range out.Corrections {
				emit(ev, p.topics.Corrections, c.ServicePointID, p.corrections, correctionRecord(ev.id(), u, c))
			}
			for _, a := range out.Anomalies {
				emit(ev, p.topics.Anomalies, a.ServicePointID, p.anomalies, anomalyRecord(ev.id(), u, a))
			}
			for _, a := range out.AccountEvents {
				emit(ev, p.topics.AccountEvents, a.ServicePointID, p.accountEvents, accountEventRecord(ev.id(), u, a))
			}
			for i := range out.Memberships {
				// Encoded only if the transaction keeps it: a service
				// point's next row in the same poll mostly replaces it.
				m := &out.Memberships[i]
				mo := &membershipOut{ref: membershipRef{utility: u, m: m}, co: membershipCoalesce(m, sentBefore, sp.Sent)}
				ev.outs = append(ev.outs, runtime.Out{Topic: p.topics.Premises, Key: []byte(m.PremiseID), Encode: &mo.ref, Coalesce: &mo.co})
			}
			if ev.err != nil {
				return runtime.Step[*rules.ServicePoint]{}, ev.err
			}
			st := runtime.Step[*rules.ServicePoint]{State: sp, Write: true, Outputs: ev.outs}
			if d.Row.DateTo != 0 {
				st.EventTime = d.Row.DateTo.Time()
			}
			bill.Recycle(d) // the rules and outputs kept copies of its strings, never the row
			return st, nil
		},
	}
}

// applyAction applies an operator action (OV1) in the same transaction as
// billing rows: its events cite its position on the operator-actions topic.
func (p *Pipeline) applyAction(sp *rules.ServicePoint, a *records.OperatorAction, in runtime.Input) (runtime.Step[*rules.ServicePoint], error) {
	if a.ServicePointID != string(in.Record.Key) {
		return runtime.Step[*rules.ServicePoint]{}, errKeyMismatch("operator action", "service_point_id", in.Record.Topic)
	}
	// The tools check actions before writing them; one written otherwise
	// is refused here rather than half applied.
	if err := a.Validate(); err != nil && a.Kind == records.ActionClearAnomaly {
		return runtime.Step[*rules.ServicePoint]{}, quarantine.Poison(fmt.Errorf("%w (write actions with 'usagestream override')", err))
	}
	src := rules.Source{Topic: in.Record.Topic, Partition: in.Record.Partition, Offset: in.Record.Offset}
	sentBefore := slices.Clone(sp.Sent)
	out, changed := sp.ApplyAction(p.policy, a, src)
	ev := p.newEvents(in)
	for _, x := range out.Anomalies {
		emit(ev, p.topics.Anomalies, x.ServicePointID, p.anomalies, anomalyRecord(ev.id(), a.Utility, x))
	}
	for _, m := range out.Memberships {
		co := membershipCoalesce(&m, sentBefore, sp.Sent)
		ev.outs = append(ev.outs, runtime.Out{Topic: p.topics.Premises, Key: []byte(m.PremiseID),
			Encode: &membership{Utility: a.Utility, Membership: m}, Coalesce: &co})
	}
	if ev.err != nil {
		return runtime.Step[*rules.ServicePoint]{}, ev.err
	}
	return runtime.Step[*rules.ServicePoint]{State: sp, Write: changed, Outputs: ev.outs}, nil
}

// PremiseStage judges what belongs to a premise as a place (S1, C4) and
// forwards to stage 2 what it uses.
func (p *Pipeline) PremiseStage() *runtime.Processor[*rules.Site] {
	st := p.topo.MustStage(StagePremise)
	return &runtime.Processor[*rules.Site]{
		Name: st.Name,
		// Every decoder copies what it keeps (string conversions; twmb/avro
		// without AliasInput), so fetch buffers are reused.
		CopiesInput: true,
		Inputs:      st.Inputs,
		Outputs:     st.Outputs,
		New:         func() *rules.Site { return &rules.Site{} },
		Marshal: func(s *rules.Site) ([]byte, error) {
			return s.MarshalBinary()
		},
		Unmarshal: func(b []byte) (*rules.Site, error) {
			var s rules.Site
			return &s, s.UnmarshalBinary(b)
		},
		Process: func(s *rules.Site, in runtime.Input) (runtime.Step[*rules.Site], error) {
			var m membership
			if err := m.decode(in.Record.Value); err != nil {
				return runtime.Step[*rules.Site]{}, quarantine.Poison(fmt.Errorf("decoding a membership from %s: %w", in.Record.Topic, err))
			}
			if m.Membership.PremiseID != string(in.Record.Key) {
				return runtime.Step[*rules.Site]{}, errKeyMismatch("membership", "premise_id", in.Record.Topic)
			}
			so := s.Apply(p.policy, m.Membership)
			ev := p.newEvents(in)
			for _, a := range so.Anomalies {
				emit(ev, p.topics.Anomalies, a.ServicePointID, p.anomalies, anomalyRecord(ev.id(), m.Utility, a))
			}
			if ev.err != nil {
				return runtime.Step[*rules.Site]{}, ev.err
			}
			for _, ci := range so.Inputs {
				cv := customerInput{Utility: m.Utility, Input: ci}
				b := p.exactValue(cv.appendBinary)
				// Each input is a snapshot of the customer at the premise:
				// the transaction keeps the last one of each, and none when
				// the customer is back where it started (runtime.Coalesce).
				ev.outs = append(ev.outs, runtime.Out{Topic: p.topics.Memberships, Key: []byte(ci.CustomerID), Value: b,
					Coalesce: &runtime.Coalesce{Key: ci.CustomerID + "\x00" + ci.PremiseID, Before: so.Before[ci.CustomerID], After: so.After[ci.CustomerID]}})
			}
			return runtime.Step[*rules.Site]{State: s, Write: true, Outputs: ev.outs}, nil
		},
	}
}

// CustomerStage is stage 2: eligibility of each (customer, premise).
func (p *Pipeline) CustomerStage() *runtime.Processor[*rules.Customer] {
	st := p.topo.MustStage(StageCustomer)
	holds := p.actions.NewResolver(p.reg)
	return &runtime.Processor[*rules.Customer]{
		Name: st.Name,
		// Every decoder copies what it keeps (string conversions; twmb/avro
		// without AliasInput), so fetch buffers are reused.
		CopiesInput: true,
		Inputs:      st.Inputs,
		Outputs:     st.Outputs,
		New:         func() *rules.Customer { return &rules.Customer{} },
		Marshal: func(c *rules.Customer) ([]byte, error) {
			return c.MarshalBinary()
		},
		Unmarshal: func(b []byte) (*rules.Customer, error) {
			var c rules.Customer
			return &c, c.UnmarshalBinary(b)
		},
		// Holds are Avro through the registry (the runtime's decode step);
		// the repartition topics are JSON, decoded in Process.
		Decode: func(ctx context.Context, r runtime.Record) (any, error) {
			if r.Topic != p.topics.OperatorHolds {
				return nil, nil
			}
			a := &records.OperatorAction{}
			if _, err := holds.Decode(ctx, r.Value, a); err != nil {
				return nil, err
			}
			return a, nil
		},
		Process: func(c *rules.Customer, in runtime.Input) (runtime.Step[*rules.Customer], error) {
			var (
				utility string
				changed []rules.EligibilityChanged
			)
			switch {
			case in.Timer != nil:
				// A hold's until date has passed (OV2): the timer's time,
				// not the clock, says which holds end.
				if c.ID == "" {
					return runtime.Step[*rules.Customer]{}, nil
				}
				changed, utility = c.EndHolds(p.policy, in.Timer.At)
			case in.Record.Topic == p.topics.OperatorHolds:
				a := in.Decoded.(*records.OperatorAction)
				if a.CustomerID != string(in.Record.Key) {
					return runtime.Step[*rules.Customer]{}, errKeyMismatch("operator hold", "customer_id", in.Record.Topic)
				}
				// The tools check actions before writing them; one written
				// otherwise is refused here rather than half applied.
				if err := a.Validate(); err != nil || !a.ForCustomer() || !rules.KnownProgram(a.Program) {
					if err == nil {
						err = fmt.Errorf("operator action %s: kind %s with program %q is no hold of a program the rules evaluate", a.ActionID, a.Kind, a.Program)
					}
					return runtime.Step[*rules.Customer]{}, quarantine.Poison(fmt.Errorf("%w (write holds with 'usagestream override')", err))
				}
				utility = a.Utility
				changed = c.ApplyAction(p.policy, a, rules.Source{Topic: in.Record.Topic, Partition: in.Record.Partition, Offset: in.Record.Offset})
			case in.Record.Topic == p.topics.IntervalHistory:
				var h intervalHistory
				if err := h.decode(in.Record.Value); err != nil {
					return runtime.Step[*rules.Customer]{}, quarantine.Poison(fmt.Errorf("decoding an interval history from %s: %w", in.Record.Topic, err))
				}
				if h.History.CustomerID != string(in.Record.Key) {
					return runtime.Step[*rules.Customer]{}, errKeyMismatch("interval history", "customer_id", in.Record.Topic)
				}
				if c.ID == "" {
					c.ID = h.History.CustomerID
				}
				utility = h.Utility
				changed = c.SetIntervalHistory(p.policy, h.History.PremiseID, h.History.ServicePointID, h.History.Months, h.History.Source)
			default:
				var ci customerInput
				if err := ci.decode(in.Record.Value); err != nil {
					return runtime.Step[*rules.Customer]{}, quarantine.Poison(fmt.Errorf("decoding a stage 2 input from %s: %w", in.Record.Topic, err))
				}
				if ci.Input.CustomerID != string(in.Record.Key) {
					return runtime.Step[*rules.Customer]{}, errKeyMismatch("stage 2 input", "customer_id", in.Record.Topic)
				}
				// Receive panics on such an input (a routing bug when the
				// premise stage made it): from the topic, it is poison.
				if m := ci.Input.Membership; m != nil && (m.CustomerID != ci.Input.CustomerID || m.PremiseID != ci.Input.PremiseID) {
					return runtime.Step[*rules.Customer]{}, quarantine.Poison(fmt.Errorf("stage 2 input from %s whose membership is not of its customer_id and premise_id (fix the producer)", in.Record.Topic))
				}
				utility = ci.Utility
				changed = c.Receive(p.policy, ci.Input, ci.Input.Cause)
			}
			ev := p.newEvents(in)
			for _, e := range changed {
				emit(ev, p.topics.Eligibility, e.CustomerID, p.eligibility, eligibilityRecord(ev.id(), utility, e))
				if ev.err == nil {
					ev.outs[len(ev.outs)-1].Coalesce = eligibilityCoalesce(e)
				}
			}
			if ev.err != nil {
				return runtime.Step[*rules.Customer]{}, ev.err
			}
			st := runtime.Step[*rules.Customer]{State: c, Write: true, Outputs: ev.outs}
			if at, ok := c.NextHoldEnd(); ok {
				st.Timers = []runtime.Timer{{Kind: runtime.WallClock, Key: []byte(c.ID), At: at}}
			}
			return st, nil
		},
	}
}

// membershipCoalesce makes the memberships stage 1 sends for one pair
// (customer, premise) at a service point within one transaction shrink to
// the net change (runtime.Coalesce): a gap that one file raises and fills
// again leaves the premise stage, and so eligibility, untouched. The state
// is what stage 1 remembers having sent (rules.SentMembership's hash, which
// leaves sources out); "" is a pair it has not sent, or no longer has (A9).
func membershipCoalesce(m *rules.Membership, before, after []rules.SentMembership) runtime.Coalesce {
	sent := func(ss []rules.SentMembership) string {
		i := slices.IndexFunc(ss, func(s rules.SentMembership) bool { return s.CustomerID == m.CustomerID && s.PremiseID == m.PremiseID })
		if i < 0 {
			return ""
		}
		// Eight bytes of the hash, not its digits: it is only compared.
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], ss[i].Hash)
		return string(b[:])
	}
	return runtime.Coalesce{Key: m.ServicePointID + "\x00" + m.CustomerID + "\x00" + m.PremiseID, Before: sent(before), After: sent(after)}
}

// eligibilityCoalesce makes the events of one (customer, premise, program)
// within one transaction shrink to the net change (runtime.Coalesce): no
// eligibility flip that the same transaction undoes is emitted. The state
// is the reasons as an event compares them (sources left out); "" is a
// subject never evaluated.
func eligibilityCoalesce(e rules.EligibilityChanged) *runtime.Coalesce {
	before := ""
	if !e.First {
		before = reasonsKey(e.Before)
	}
	return &runtime.Coalesce{Key: e.CustomerID + "\x00" + e.PremiseID + "\x00" + e.Program, Before: before, After: reasonsKey(e.Reasons)}
}

// reasonsKey renders what reasons say (not where they came from), never "".
func reasonsKey(rs []rules.Reason) string {
	var buf [128]byte
	b := append(buf[:0], '=')
	for _, r := range rs {
		b = append(append(append(append(append(append(b, r.Code...), '|'), r.Rule...), '|'), r.ServicePointID...), '|')
		b = append(strconv.AppendInt(append(strconv.AppendInt(b, int64(r.EffectiveDate), 10), '|'), int64(r.Until), 10), ';')
	}
	return string(b)
}
