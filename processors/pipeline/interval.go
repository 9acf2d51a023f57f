package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/ellipsis"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
	recavro "github.com/usagestream/usagestream/records/avro"
)

// The interval stage (I1-I7) reads billing.v1 and intervals.v1, both keyed by
// service_point_id with the same partition count, so one partition holds a
// service point's bills and reads and the sum check (I6) needs no
// repartitioning:
//
//	billing.v1 + intervals.v1 (key service_point_id)
//	  └─ stage "interval" (state: rules.IntervalPoint, per service point)
//	       ├─> corrections.v1 (UsageCorrected kind INTERVAL, I2)
//	       ├─> anomalies.v1   (I1, I3, I4, I6, I7)
//	       └─> repartition-interval-history.v1 (internal binary, key customer_id;
//	           I5: months of history, for stage 2's SetIntervalHistory)

// IntervalStage is the interval stage, with the interval settings of the
// pipeline's policy (its `intervals:` section).
func (p *Pipeline) IntervalStage() *runtime.Processor[*rules.IntervalPoint] {
	ipol := p.policy.Intervals
	// twmb/avro struct codecs for both inputs: the embedded schemas
	// directly, other registered versions by Avro resolution.
	dec := interval.NewResolver(p.reg)
	bill := recavro.NewBillingDecoder(p.reg)
	type step = runtime.Step[*rules.IntervalPoint]
	st := p.topo.MustStage(StageInterval)
	return &runtime.Processor[*rules.IntervalPoint]{
		Name: st.Name,
		// Every decoder copies what it keeps (string conversions; twmb/avro
		// without AliasInput), so fetch buffers are reused.
		CopiesInput: true,
		Inputs:      st.Inputs,
		Outputs:     st.Outputs,
		New:         func() *rules.IntervalPoint { return &rules.IntervalPoint{} },
		Marshal: func(ip *rules.IntervalPoint) ([]byte, error) {
			return ip.MarshalBinary()
		},
		Unmarshal: func(b []byte) (*rules.IntervalPoint, error) {
			var ip rules.IntervalPoint
			return &ip, ip.UnmarshalBinary(b)
		},
		// Both inputs' registry lookups are the runtime's decode step, with
		// the transaction's context; Process does no I/O.
		Decode: func(ctx context.Context, r runtime.Record) (any, error) {
			if r.Topic == p.topics.Intervals {
				rd, o, err := dec.Decode(ctx, r.Value)
				if err != nil {
					return nil, err
				}
				// A record produced straight to the topic (an adapter in
				// another language) meets the contract every way in does,
				// or it is quarantined with the reason.
				if rs := p.reads.CheckStored(&rd); rs != nil {
					return nil, quarantine.Poison(contractError{sp: rd.ServicePointID, reasons: rs})
				}
				return decodedRead{rd, o}, nil
			}
			return bill.Decode(ctx, r.Value)
		},
		Process: func(ip *rules.IntervalPoint, in runtime.Input) (step, error) {
			var (
				out rules.IntervalOutput
				st  step
			)
			src := rules.Source{Topic: in.Record.Topic, Partition: in.Record.Partition, Offset: in.Record.Offset}
			switch {
			case in.Timer != nil:
				if ip.ID == "" {
					return st, nil // the key's state is gone: nothing to check
				}
				out = ip.CheckStale(ipol, in.Timer.At.UnixMilli(), src)
			case in.Record.Topic == p.topics.Intervals:
				d := in.Decoded.(decodedRead)
				r, o := d.read, d.origin
				if r.ServicePointID != string(in.Record.Key) {
					return st, errKeyMismatch("interval read", "service_point_id", "the interval topic")
				}
				src.File, src.Line = o.Name, r.Line
				ip.Utility = o.Utility
				out = ip.ApplyRead(p.policy, ipol, &r, in.Record.Timestamp.UnixMilli(), src)
				st.EventTime = time.UnixMilli(r.EndMillis)
			default: // billing
				d := in.Decoded.(*recavro.DecodedBillingRow)
				if d.Row.ServicePointID != string(in.Record.Key) {
					return st, errKeyMismatch("billing row", "service_point_id", "the billing topic")
				}
				src.File, src.Line = d.Source.File, d.Line
				ip.Utility = d.Source.Utility
				out = ip.ApplyBilling(p.policy, &d.Row, src)
				if d.Row.DateTo != 0 {
					st.EventTime = d.Row.DateTo.Time()
				}
				bill.Recycle(d) // the rules kept copies of its strings, never the row
			}
			ev := p.newEvents(in)
			for _, c := range out.Corrections {
				emit(ev, p.topics.Corrections, c.ServicePointID, p.corrections, intervalCorrectionRecord(ev.id(), ip.Utility, c))
			}
			for _, a := range out.Anomalies {
				emit(ev, p.topics.Anomalies, a.ServicePointID, p.anomalies, anomalyRecord(ev.id(), ip.Utility, a))
			}
			if h := out.History; h != nil {
				hv := intervalHistory{Utility: ip.Utility, History: *h}
				b := p.exactValue(hv.appendBinary)
				ev.outs = append(ev.outs, runtime.Out{Topic: p.topics.IntervalHistory, Key: []byte(h.CustomerID), Value: b})
			}
			if ev.err != nil {
				return st, ev.err
			}
			st.State, st.Write, st.Outputs = ip, true, ev.outs
			if !out.StaleTimer.IsZero() {
				st.Timers = []runtime.Timer{{Kind: runtime.WallClock, Key: in.Record.Key, At: out.StaleTimer}}
			}
			return st, nil
		},
	}
}

// ReadContract sets the contract the interval stage holds records on
// intervals.v1 to (the allowed units and service types, the date window):
// the settings the ways in were given. Default: interval.Check{}.
func ReadContract(c interval.Check) Option {
	return func(o *options) { o.readContract = c }
}

// contractError is why a record on intervals.v1 was quarantined: every
// reason the contract gives, with field and code, as a file row's rejected
// record lists them.
type contractError struct {
	sp      string
	reasons []records.Reason
}

func (e contractError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "interval read of service point %q breaks the read contract (docs/intervals.md): ", ellipsis.Clip(strings.ToValidUTF8(e.sp, "\uFFFD"), 64))
	for i, r := range e.reasons {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s (%s): %s", r.Field, r.Code, r.Rule, r.Message)
	}
	b.WriteString("; fix the producer and re-feed it (usagestream replay --quarantine interval)")
	return b.String()
}

// decodedRead is an interval read as the interval stage's Decode makes it.
type decodedRead struct {
	read   records.IntervalRead
	origin interval.Origin
}

// intervalHistory is the interval stage -> stage 2 record (I5): the months
// of interval history of a service point, for its customer at its premise.
// Stage 2 is to apply it with rules.Customer.SetIntervalHistory.
type intervalHistory struct {
	Utility string                `json:"utility"`
	History rules.IntervalHistory `json:"history"`
}

func intervalCorrectionRecord(id, utility string, c rules.IntervalCorrection) *recavro.UsageCorrected {
	end := time.UnixMilli(c.EndMs).UTC()
	minutes := int32(c.Minutes)
	oldEst, newEst := c.OldEstimate, c.NewEstimate
	return &recavro.UsageCorrected{
		EventID: id, Utility: utility, ServicePointID: c.ServicePointID, Kind: rules.CorrectionInterval, Rule: "I2",
		DateTo: c.Date, Duration: 1, OldValue: c.OldValue, NewValue: c.NewValue,
		NewDateTo: c.Date, NewDuration: 1, Cause: cause(c.Source), Channel: recavro.Opt(c.Channel),
		IntervalEnd: &end, IntervalMinutes: &minutes, OldEstimate: &oldEst, NewEstimate: &newEst,
	}
}
