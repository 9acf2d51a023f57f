// Package adapter is the Go SDK of usagestream: the client an MDMS adapter
// uses to stream VEE-validated interval reads into it. Reads become the same
// IntervalRead records, on the same topic (intervals.v1), keyed by service
// point, as interval files give, and they are held to the same contract
// (docs/intervals.md in the usagestream repository): a read the contract
// refuses comes back as a *ReadError naming each field and code, and is
// written to rejected.v1 with its origin, as a rejected file row is.
//
// # Use
//
// Give New a schema registry client (github.com/twmb/franz-go/pkg/sr) and
// the options of a Kafka client (github.com/twmb/franz-go/pkg/kgo: seed
// brokers, TLS, SASL):
//
//	reg, err := sr.NewClient(sr.URLs("http://registry:8081"))
//	c, err := adapter.New(ctx, reg, adapter.Config{Utility: "gec", Name: "mdms-east"},
//		kgo.SeedBrokers("kafka:9092"))
//	err = c.Send(ctx, adapter.Read{ServicePointID: "SP1", End: end, Minutes: 15, Value: 0.25, Units: "KWH"})
//	err = c.Close(ctx) // flushes; names every read not delivered
//
// A read's time is the instant its interval ends (Read.End). Its local date,
// time and UTC offset, which billing days and daylight-saving days are
// counted in, come from the utility's time zone (Config.Location), or from
// Read.LocalEnd when the MDMS has the meter's local clock; when both End and
// LocalEnd are given they must be the same instant.
//
// Delivery is at least once through an idempotent producer: reads are
// batched by the Kafka client (Config.Linger) and a read sent again after an
// error is harmless (the interval stage treats the same value for the same
// interval as nothing new, rule I2). Back-pressure: Send blocks while
// Config.MaxBuffered records wait for Kafka.
//
// # Compatibility
//
// This package follows semantic versioning from the module's first tagged
// release: within a major version, exported names are not removed or
// renamed, their meaning does not change, and fields are only added (use
// keyed struct literals). Reason codes (Reason.Code) are stable strings,
// catalogued in docs/rules.md; messages are for people and may change. The
// records written follow the Avro schemas of the schemas/ folder, which only
// evolve backward compatibly. Everything else of the module (internal/,
// the other producers/ and processors/ packages) is no part of this promise.
package adapter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/ellipsis"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/producers/interval/readrules"
	"github.com/usagestream/usagestream/records"
	recavro "github.com/usagestream/usagestream/records/avro"
	"github.com/usagestream/usagestream/schemas"
)

// Origin kinds a Client records on every read (Config.Kind).
const (
	// KindAdapter is an adapter using this package; the default.
	KindAdapter = "adapter"
	// KindHTTP is usagestream's own POST /v1/intervals endpoint.
	KindHTTP = "http"
)

// Config configures a Client. Only Utility and Name are required.
type Config struct {
	// Utility is the utility code carried on every record, e.g. "gec".
	Utility string
	// Name names this adapter in each record's origin, e.g. "mdms-east":
	// rejected reads and the events they cause point back to it.
	Name string
	// Kind is the origin kind: KindAdapter (the default) or KindHTTP.
	Kind string
	// Location is the utility's time zone: a read given by its End alone
	// gets its local date, time and offset from it. Default: UTC.
	Location *time.Location
	// TopicPrefix is put before every topic name, as usagestream's
	// --topic-prefix (USAGESTREAM_TOPIC_PREFIX) is. Default: none, so
	// reads go to intervals.v1 and rejected reads to rejected.v1.
	TopicPrefix string
	// Units are the allowed units, compared case-insensitively. Default:
	// KWH, WH, MWH, KVARH, THERM, CCF, HCF, CF, M3, GAL.
	Units []string
	// ServiceTypes are the allowed service types. Default: E, G, W.
	ServiceTypes []string
	// Earliest is the earliest plausible local date of a read. Default:
	// 1990-01-01.
	Earliest time.Time
	// DaysAhead is how many days after today a read may end. Default: 366.
	DaysAhead int
	// MaxBuffered records may wait for Kafka before Send blocks. Default:
	// 10,000.
	MaxBuffered int
	// Linger is how long the Kafka client waits to fill a batch. Default:
	// 5ms.
	Linger time.Duration
}

// withDefaults returns c with the defaults its fields' docs state in place
// of zero values.
func (c Config) withDefaults() Config {
	if c.Kind == "" {
		c.Kind = KindAdapter
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.MaxBuffered <= 0 {
		c.MaxBuffered = 10_000
	}
	if c.Linger <= 0 {
		c.Linger = 5 * time.Millisecond
	}
	return c
}

// Read is one interval read as an adapter sends it.
type Read struct {
	ServicePointID string // required
	// Channel is the service_quantity_identifier; "" is the main channel.
	Channel string
	// ServiceType is E, G or W (as configured); "" when not known.
	ServiceType string
	// End is the instant the interval ends, on its grid (a whole multiple
	// of Minutes after local midnight). Its location is irrelevant: only
	// the instant counts. Required unless LocalEnd is given.
	End time.Time
	// LocalEnd, optional, is the end as the meter's local clock showed it,
	// with that clock's UTC offset: a time in a time.FixedZone (or in the
	// utility's *time.Location). When End is given too, both must be the
	// same instant. Without it, the local end is End in Config.Location.
	LocalEnd time.Time
	// Minutes is the interval length: 5, 15, 30, 60 or 1440.
	Minutes int
	// Value is the usage over the interval, in Units; negative values are
	// kept (net metering) and reported, not refused.
	Value float64
	// Units is one of Config.Units, e.g. "KWH". Required.
	Units string
	// Estimate is "A" (actual), "E" (estimated) or "U" (user); "" is "E".
	Estimate string
	// Line, optional, is where the read came from in the adapter's own
	// source (a line of an export file); kept in its record's origin.
	Line int64
	// Raw, optional, is the read's source text (that line); a refused read
	// keeps it in its rejected record. Default: the read's fields.
	Raw string
}

// Reason is one rule a read breaks.
type Reason struct {
	Field   string // the data-contract column or read field, e.g. "units"
	Code    string // stable code, e.g. "BAD_UNITS" (docs/rules.md)
	Rule    string // the rule id, e.g. "DC-3" (docs/rules.md)
	Message string // what is wrong and what to do, for people
}

// ReadError says why one read was refused (Reasons) or not delivered (Err).
type ReadError struct {
	ServicePointID string
	End            time.Time // as sent; zero when only LocalEnd was
	Line           int64
	// Reasons are the contract's faults, each naming its field; empty when
	// the read was acceptable but could not be delivered.
	Reasons []Reason
	// Err is a delivery failure: of the read, or, when Reasons are set, of
	// its rejected record. Send the read again.
	Err error
}

// Error names the read (service point, end, line) and every reason, or the
// delivery failure.
func (e *ReadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "read of service point %q", e.ServicePointID)
	if !e.End.IsZero() {
		fmt.Fprintf(&b, " ending %s", e.End.UTC().Format(time.RFC3339))
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	b.WriteString(": ")
	for i, r := range e.Reasons {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s: %s", r.Field, r.Code, r.Message)
	}
	if e.Err != nil {
		if len(e.Reasons) > 0 {
			b.WriteString("; its rejected record ")
		}
		fmt.Fprintf(&b, "not delivered to Kafka (%v); send it again", e.Err)
	}
	return b.String()
}

// Unwrap returns the delivery failure, if any: errors.Is(err,
// context.DeadlineExceeded) and the like see through a ReadError.
func (e *ReadError) Unwrap() error { return e.Err }

// Codes returns the reason codes, in order: what a caller branches on.
func (e *ReadError) Codes() []string {
	out := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		out[i] = r.Code
	}
	return out
}

// Rejection is something an adapter could not even turn into a Read (a
// line of its export that does not parse), to be kept on rejected.v1 with
// its origin beside the reads the contract refused.
type Rejection struct {
	Line           int64  // where it came from in the adapter's source; 0: unknown
	Raw            string // its text
	ServicePointID string // when readable; the record's key
	Reasons        []Reason
}

// Client publishes reads. It is safe for concurrent use.
type Client struct {
	cfg      Config
	cl       *kgo.Client
	schemaID int // of IntervalRead in the registry
	rejected *recavro.Writer[recavro.RejectedRow]
	v        *interval.Validator
	names    topics.Names

	mu     sync.Mutex
	failed []error // delivery errors since the last Flush
}

// New registers the IntervalRead and RejectedRow schemas with reg and
// creates the Kafka client from opts (seed brokers, TLS, SASL; New adds
// the batching settings of cfg). The topics must exist: usagestream run
// creates them.
func New(ctx context.Context, reg *sr.Client, cfg Config, opts ...kgo.Opt) (*Client, error) {
	if cfg.Utility == "" || cfg.Name == "" {
		return nil, errors.New("adapter: Config.Utility and Config.Name are required: every read carries its utility and where it came from")
	}
	if reg == nil {
		return nil, errors.New("adapter: a schema registry client is required: records carry the id of their schema there")
	}
	cfg = cfg.withDefaults()
	if cfg.Kind != KindAdapter && cfg.Kind != KindHTTP {
		return nil, fmt.Errorf("adapter: Config.Kind %q is neither %q nor %q", cfg.Kind, KindAdapter, KindHTTP)
	}
	win := readrules.Window{DaysAhead: cfg.DaysAhead}
	if !cfg.Earliest.IsZero() {
		win.Earliest = dates.FromCivil(cfg.Earliest.Date())
	}
	v, err := interval.NewValidator(interval.Check{Units: cfg.Units, ServiceTypes: cfg.ServiceTypes, Dates: win, Location: cfg.Location})
	if err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	c := &Client{cfg: cfg, v: v, names: topics.NewNames(cfg.TopicPrefix)}
	r := serde.NewRegistry(reg)
	if err := r.RegisterAll(ctx, serde.Binding{Topic: c.names.Intervals, Schema: schemas.MustText(schemas.IntervalRead), Dst: &c.schemaID}); err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	if c.rejected, err = recavro.Register[recavro.RejectedRow](ctx, r, c.names.Rejected); err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	opts = append(append([]kgo.Opt(nil), opts...), kgo.MaxBufferedRecords(cfg.MaxBuffered), kgo.ProducerLinger(cfg.Linger))
	if c.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("adapter: creating the Kafka client: %w", err)
	}
	// A wrong address or password fails here, not at the first read.
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.cl.Ping(pctx); err != nil {
		c.cl.Close()
		return nil, fmt.Errorf("adapter: Kafka does not answer (check the seed brokers, TLS and SASL options): %w", err)
	}
	return c, nil
}

// toRecord maps a Read to the record the contract checks.
func toRecord(r *Read) (records.IntervalRead, []records.Reason) {
	rd := records.IntervalRead{ServicePointID: r.ServicePointID, Channel: r.Channel, ServiceType: r.ServiceType,
		Value: r.Value, Units: r.Units, Line: r.Line}
	var rs []records.Reason
	if r.Minutes < -1<<15 || r.Minutes >= 1<<15 {
		rd.Minutes = -1 // BAD_LENGTH from the contract, not a wrapped int16
	} else {
		rd.Minutes = int16(r.Minutes)
	}
	if !r.End.IsZero() {
		rd.EndMillis = r.End.UnixMilli()
	}
	if !r.LocalEnd.IsZero() {
		_, off := r.LocalEnd.Zone()
		if r.LocalEnd.Second() != 0 || r.LocalEnd.Nanosecond() != 0 || off%60 != 0 {
			// Field interval_end: what the HTTP endpoint calls it, and
			// the contract's name for a read's time.
			rs = append(rs, records.Reason{Field: interval.FieldIntervalEnd, Code: records.CodeBadTime, Rule: records.RuleIntervalColumns,
				Message: fmt.Sprintf("the local end %s (LocalEnd, or an interval_end with an offset) is not on a whole minute at a whole-minute offset", r.LocalEnd.Format(time.RFC3339Nano))})
		}
		rd.LocalDate = dates.FromCivil(r.LocalEnd.Date())
		rd.LocalTime = int16(r.LocalEnd.Hour()*60 + r.LocalEnd.Minute())
		rd.OffsetMinutes, rd.OffsetGiven = int16(off/60), true
	}
	switch strings.ToUpper(r.Estimate) {
	case "":
	case "A", "E", "U":
		rd.Estimate = records.Estimate(strings.ToUpper(r.Estimate)[0])
	default:
		rd.Estimate = '?' // BAD_ESTIMATE from the contract
	}
	return rd, rs
}

// check maps r and applies the contract.
func (c *Client) check(r *Read) (records.IntervalRead, *ReadError) {
	rd, rs := toRecord(r)
	rs = append(rs, c.v.Validate(&rd)...)
	if len(rs) == 0 {
		return rd, nil
	}
	e := &ReadError{ServicePointID: r.ServicePointID, End: r.End, Line: r.Line, Reasons: make([]Reason, len(rs))}
	for i, x := range rs {
		e.Reasons[i] = Reason(x)
	}
	return rd, e
}

func (c *Client) readRecord(rd *records.IntervalRead) (*kgo.Record, error) {
	v, err := interval.AppendAvro(make([]byte, 0, 96), c.schemaID, rd,
		interval.Origin{Utility: c.cfg.Utility, Kind: c.cfg.Kind, Name: c.cfg.Name})
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: c.names.Intervals, Key: []byte(rd.ServicePointID), Value: v}, nil
}

// rejectedRecord is the rejected.v1 record of a refused read or a
// rejection: layout "interval", its origin (kind:name) where a file row
// names its file.
func (c *Client) rejectedRecord(rj Rejection) (*kgo.Record, error) {
	reasons := make([]recavro.RejectReason, len(rj.Reasons))
	for i, r := range rj.Reasons {
		reasons[i] = recavro.RejectReason{Field: recavro.Opt(r.Field), Code: r.Code, Rule: r.Rule, Message: r.Message}
	}
	spid := ""
	if readrules.CheckID(readrules.FieldServicePoint, rj.ServicePointID) == nil {
		spid = rj.ServicePointID
	}
	row := &recavro.RejectedRow{Utility: c.cfg.Utility, Layout: "interval",
		Source: recavro.SourceRef{File: c.Origin(), Line: rj.Line},
		Raw:    ellipsis.Clip(strings.ToValidUTF8(rj.Raw, "\uFFFD"), maxRawBytes), ServicePointID: recavro.Opt(spid), Reasons: reasons}
	v, err := c.rejected.Append(nil, row)
	if err != nil {
		return nil, err
	}
	key := spid
	if key == "" {
		key = c.Origin()
	}
	return &kgo.Record{Topic: c.names.Rejected, Key: []byte(key), Value: v}, nil
}

// maxRawBytes bounds a rejected record's raw text, as a file line is
// bounded: the record names the fault, it is no copy of a huge payload.
const maxRawBytes = 4096

// Origin is how rejected records name this client: kind:name, e.g.
// "adapter:mdms-east", in the field where a file row's record names its
// file (source.file).
func (c *Client) Origin() string { return c.cfg.Kind + ":" + c.cfg.Name }

func rawOf(r *Read) string {
	if r.Raw != "" {
		return r.Raw
	}
	var b strings.Builder
	b.WriteString("service_point_id=" + strconv.Quote(r.ServicePointID))
	if r.Channel != "" {
		b.WriteString(" channel=" + strconv.Quote(r.Channel))
	}
	if !r.End.IsZero() {
		b.WriteString(" end=" + r.End.UTC().Format(time.RFC3339Nano))
	}
	if !r.LocalEnd.IsZero() {
		b.WriteString(" local_end=" + r.LocalEnd.Format(time.RFC3339Nano))
	}
	fmt.Fprintf(&b, " minutes=%d value=%v units=%q", r.Minutes, r.Value, r.Units)
	if r.ServiceType != "" {
		b.WriteString(" service_type=" + strconv.Quote(r.ServiceType))
	}
	if r.Estimate != "" {
		b.WriteString(" is_estimate=" + strconv.Quote(r.Estimate))
	}
	return b.String()
}

// prepare turns r into the record to produce: the read's, or, when the
// contract refuses it, its rejected record and the *ReadError to return.
func (c *Client) prepare(r *Read) (*kgo.Record, *ReadError) {
	rd, re := c.check(r)
	if re != nil {
		rec, err := c.rejectedRecord(Rejection{Line: r.Line, Raw: rawOf(r), ServicePointID: r.ServicePointID, Reasons: re.Reasons})
		if err != nil {
			re.Err = err
			return nil, re
		}
		return rec, re
	}
	rec, err := c.readRecord(&rd)
	if err != nil {
		return nil, &ReadError{ServicePointID: r.ServicePointID, End: r.End, Line: r.Line, Err: err}
	}
	return rec, nil
}

// Send checks r and queues it. A read the contract refuses comes back at
// once as a *ReadError naming each field (and its rejected record is
// queued for rejected.v1); a delivery failure is returned by the next Flush
// or Close. Send blocks while MaxBuffered records wait for Kafka, until
// ctx ends.
func (c *Client) Send(ctx context.Context, r Read) error {
	rec, re := c.prepare(&r)
	if rec == nil {
		return re
	}
	sp, end, line := r.ServicePointID, r.End, r.Line
	c.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		if err != nil {
			c.fail(&ReadError{ServicePointID: sp, End: end, Line: line, Err: err})
		}
	})
	if re != nil {
		return re
	}
	return nil
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	c.failed = append(c.failed, err)
	c.mu.Unlock()
}

// SendBatch sends reads and waits until each is delivered or refused:
// errs[i] is nil when reads[i] is on Kafka, else a *ReadError (refused,
// with its rejected record on rejected.v1 unless Err says otherwise; or
// not delivered).
func (c *Client) SendBatch(ctx context.Context, reads []Read) (errs []error) {
	errs = make([]error, len(reads))
	var wg sync.WaitGroup
	for i := range reads {
		rec, re := c.prepare(&reads[i])
		if re != nil {
			errs[i] = re
		}
		if rec == nil {
			continue
		}
		wg.Add(1)
		r := &reads[i]
		c.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				if re != nil {
					re.Err = err
				} else {
					errs[i] = &ReadError{ServicePointID: r.ServicePointID, End: r.End, Line: r.Line, Err: err}
				}
			}
			wg.Done()
		})
	}
	wg.Wait()
	return errs
}

// Reject writes each rejection to rejected.v1 with this client's origin
// and waits until they are there: for what the adapter could not turn into
// a Read.
func (c *Client) Reject(ctx context.Context, rjs ...Rejection) error {
	recs := make([]*kgo.Record, len(rjs))
	for i, rj := range rjs {
		rec, err := c.rejectedRecord(rj)
		if err != nil {
			return fmt.Errorf("adapter: encoding a rejected record: %w", err)
		}
		recs[i] = rec
	}
	if err := c.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("adapter: writing rejected records to %s: %w; send them again", c.names.Rejected, err)
	}
	return nil
}

// Flush waits until every queued record is delivered or failed, and
// returns the failures since the last Flush, each a *ReadError, joined.
func (c *Client) Flush(ctx context.Context) error {
	err := c.cl.Flush(ctx)
	c.mu.Lock()
	failed := c.failed
	c.failed = nil
	c.mu.Unlock()
	if err != nil {
		failed = append(failed, fmt.Errorf("adapter: flushing to Kafka: %w", err))
	}
	return errors.Join(failed...)
}

// Close flushes and disconnects.
func (c *Client) Close(ctx context.Context) error {
	err := c.Flush(ctx)
	c.cl.Close()
	return err
}
