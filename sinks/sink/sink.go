// Package sink is the consume loop every sink shares: it reads the event
// topics in a consumer group of its own (read_committed), decodes each record
// through the schema registry, hands batches to a Writer, and commits the
// batch's offsets only after the Writer has made it durable.
//
// Delivery is at least once: a sink killed after its write but before the
// offset commit sees the batch again. Every event carries an event_id derived
// from its input position, so Writers make a redelivered event change nothing
// (PostgreSQL by key, files by offset), which makes the effect exactly once.
// Offsets stay in Kafka rather than in each destination so that one loop
// serves every sink, standard tools show the groups' lag, and more instances
// of a sink share the partitions as any consumer group does.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/topology"
	recavro "github.com/usagestream/usagestream/records/avro"
)

// Event is one record of an event topic, decoded.
type Event struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Timestamp time.Time // when the processor produced it
	SchemaID  int
	Value     []byte         // the Confluent-framed Avro value, as on the topic
	Record    recavro.Record // the typed record (Format Typed): *recavro.EligibilityChanged, ...
	JSON      []byte         // the JSON rendering (Format JSON, see recavro.JSONSchema)
}

// Format says how the loop decodes values for a Writer.
type Format int

const (
	// Typed decodes into the typed records of records/avro (Event.Record),
	// any registered version of their schemas resolved against this build's.
	Typed Format = iota
	// JSON renders each value as JSON (Event.JSON): fields in the writer
	// schema's order, ISO dates, RFC 3339 timestamps, unions unwrapped.
	JSON
)

// Writer makes a batch durable. When Write returns nil the loop commits the
// batch's offsets; when it returns an error the same batch is offered again
// after a back-off, until it succeeds, the error is Permanent, or the loop
// stops. A Writer must therefore accept events it has already written
// (redelivery after a crash) without writing them twice.
type Writer interface {
	Write(ctx context.Context, batch []Event) error
}

// Ticker is implemented by Writers that act on time, not only on events (a
// file rotated by age): Tick is called about once a second, between batches.
type Ticker interface {
	Tick(ctx context.Context, now time.Time) error
}

// Revoker is implemented by Writers that keep per-partition state: Revoke is
// called, between batches, when partitions move to another group member.
type Revoker interface {
	Revoke(partitions map[string][]int32)
}

// Permanent marks a Write error that retrying cannot fix (a record the
// destination refuses): the loop stops with it instead of retrying.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Config configures one sink's loop.
type Config struct {
	Name   string // postgres, jsonl, webhook: names the group, metrics and logs
	Kafka  kafkaconf.Config
	Topics []string // Default: EventTopics of the prefix.
	Group  string   // Default: GroupFor(prefix, Name), <prefix>sink-<Name>.
	// Quarantine is where records that cannot be decoded go. Default:
	// <prefix>quarantine-sink-<Name>.v1 (see internal/quarantine).
	Quarantine string
	Format     Format
	// MaxBatch bounds the records handed to one Write. Default: 5000.
	MaxBatch int
	// RetryMin and RetryMax bound the back-off between failed Writes.
	// Default: 200ms and 30s.
	RetryMin, RetryMax time.Duration
	// RebalanceTimeout is how long the group waits for this member to finish
	// a batch during a rebalance. A Write that takes longer (a webhook
	// retrying) loses the member its partitions: its offsets are then not
	// committed and the new owner delivers the batch again. Default: 30s.
	RebalanceTimeout time.Duration
	// SessionTimeout is how long the group waits for a silent member (one
	// that was killed) before giving its partitions to others. Default: 10s.
	SessionTimeout time.Duration
	// InstanceID, when set, makes this a static group member: a restarted
	// instance with the same id takes its partitions back at once, without
	// a rebalance. Every running instance needs its own.
	InstanceID string
	// WriteTimeout bounds one Write. Default: 1m.
	WriteTimeout time.Duration
	Logger       *slog.Logger // Default: discard.
	Metrics      *Metrics     // Default: unregistered.
	// Committed, when set, is called after each batch's offsets are
	// committed (benchmarks measure delay and lag with it).
	Committed func(batch []Event, at time.Time)
}

// EventTopics are the topics the sinks deliver, under a topic prefix: the
// topology's event topics (eligibility, corrections, account events,
// anomalies), so a new event topic reaches the sinks without a list to keep.
func EventTopics(prefix string) []string {
	return topology.New(prefix).OfKind(topology.Event)
}

// GroupFor is the default consumer group of a sink.
func GroupFor(prefix, name string) string { return prefix + "sink-" + name }

// withDefaults returns c with the defaults its fields' docs state in place
// of zero values.
func (c Config) withDefaults() Config {
	if len(c.Topics) == 0 {
		c.Topics = EventTopics(c.Kafka.TopicPrefix)
	}
	if c.Group == "" {
		c.Group = GroupFor(c.Kafka.TopicPrefix, c.Name)
	}
	if c.Quarantine == "" {
		c.Quarantine = quarantine.SinkTopic(c.Kafka.TopicPrefix, c.Name)
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 5000
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 200 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	return c
}

// Run consumes until ctx ends (nil) or a Permanent error or a failed offset
// commit stops it. A batch in progress when ctx ends is finished (its write
// and commit get 10 more seconds), so a stop leaves nothing to redeliver.
//
// A record that cannot be decoded (not Confluent-framed Avro, a schema id
// the registry does not have, bytes the schema does not read) goes to the
// sink's quarantine topic with its origin headers and the loop goes on; a
// registry that cannot be reached is waited for. A re-feed addressed to
// another consumer (replay --quarantine) is skipped. Quarantine records are
// produced after the batch is written and before its offsets are committed:
// at least once, like the delivery (replay --quarantine re-feeds a record
// quarantined twice once).
func Run(ctx context.Context, cfg Config, w Writer) error {
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("sink", cfg.Name)
	rc, err := cfg.Kafka.NewRegistryClient()
	if err != nil {
		return err
	}
	reg := serde.NewRegistry(rc)
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Polls and rebalances gate each other: a batch is written and
		// committed by the member that owns its partitions.
		kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.WithLogger(cfg.Kafka.ClientLogger(log)),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	l := &loop{cfg: cfg, log: log, dec: recavro.NewDecoder(reg), w: w, lagged: map[prometheus.Gauge]bool{}}
	// Revocations are gated by the polls (and signalled to the loop, which
	// then stops fetching ahead), whether or not the Writer keeps state.
	revoke := func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
		if r, ok := w.(Revoker); ok {
			r.Revoke(ps)
		}
	}
	opts = append(opts, kgo.OnPartitionsRevoked(revoke), kgo.OnPartitionsLost(revoke),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { l.rebalanceWaiting.Store(true) }))
	cl, err := cfg.Kafka.NewClient(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.CloseAllowingRebalance()
	l.cl = cl
	if err := topics.EnsureQuarantine(ctx, kadm.NewClient(cl), cfg.Quarantine, quarantine.SinkConsumer(cfg.Name), cfg.Topics[0]); err != nil {
		return fmt.Errorf("sink %s: %w", cfg.Name, err)
	}
	log.Info("sink consuming", "group", cfg.Group, "topics", cfg.Topics)
	return l.run(ctx)
}

type loop struct {
	cfg      Config
	log      *slog.Logger
	cl       *kgo.Client
	dec      *recavro.Decoder
	w        Writer
	lastTick time.Time
	// rebalanceWaiting is set when the group wants to rebalance: the loop
	// stops fetching ahead so that it can let the rebalance through.
	rebalanceWaiting atomic.Bool
	// lagged are the lag gauges set since the last poll that found nothing
	// (caughtUp).
	lagged map[prometheus.Gauge]bool
}

// batch is a poll's records, decoded.
type batch struct {
	fs     kgo.Fetches
	recs   []*kgo.Record // every record, committed together
	events []Event       // those to write
	// quarantine holds the quarantine records of those that could not be
	// decoded.
	quarantine []*kgo.Record
}

// grace is how long a batch in progress may go on after a stop.
const grace = 10 * time.Second

// run writes one batch while it fetches and decodes the next, so the
// destination and Kafka work at the same time. Rebalances are held back
// (BlockRebalanceOnPoll) while records are polled but not committed; when
// the group wants one, the loop stops fetching ahead, finishes what it has
// and lets it through.
func (l *loop) run(ctx context.Context) error {
	ticker, _ := l.w.(Ticker)
	var next *batch
	for {
		cur := next
		next = nil
		if cur == nil {
			fs := l.poll(ctx)
			if ctx.Err() != nil && fs.Empty() {
				l.allow()
				return nil
			}
			if fs.NumRecords() == 0 && !fetchFailed(fs) {
				l.caughtUp()
			}
			if fs.IsClientClosed() {
				return errors.New("kafka client closed")
			}
			var err error
			if cur, err = l.decode(ctx, fs); err != nil {
				l.allow()
				if ctx.Err() != nil {
					return nil // stopped while the registry was away
				}
				return err
			}
		}
		if len(cur.recs) > 0 {
			type result struct {
				written bool
				err     error
			}
			done := make(chan result, 1)
			go func() {
				if len(cur.events) == 0 { // all skipped or quarantined
					done <- result{written: true}
					return
				}
				written, err := l.deliver(ctx, cur.events)
				done <- result{written, err}
			}()
			var res result
			var decodeErr error
			if ctx.Err() == nil && !l.rebalanceWaiting.Load() {
				// Fetch ahead until the write ends.
				pctx, cancel := context.WithCancel(ctx)
				waited := make(chan result, 1)
				go func() { r := <-done; cancel(); waited <- r }()
				fs := l.cl.PollRecords(pctx, l.cfg.MaxBatch)
				if !fs.Empty() {
					next, decodeErr = l.decode(ctx, fs)
				}
				res = <-waited
				cancel()
			} else {
				res = <-done
			}
			if res.err != nil {
				l.allow()
				return res.err
			}
			if !res.written {
				l.allow()
				return nil // stopping: delivered again on the next start
			}
			if err := l.quarantined(ctx, cur); err != nil {
				l.allow()
				return err
			}
			if err := l.committed(ctx, cur); err != nil {
				l.allow()
				return err
			}
			if decodeErr != nil {
				l.allow()
				if ctx.Err() != nil {
					return nil // stopped while the registry was away
				}
				return decodeErr
			}
		}
		if ticker != nil && time.Since(l.lastTick) >= time.Second {
			l.lastTick = time.Now()
			if err := ticker.Tick(ctx, l.lastTick); err != nil && ctx.Err() == nil {
				l.allow()
				return fmt.Errorf("sink %s: %w", l.cfg.Name, err)
			}
		}
		if next == nil || len(next.recs) == 0 {
			next = nil
			l.allow()
		}
	}
}

// caughtUp sets the lag of every partition delivered from to 0 after a
// poll that found nothing to read. The high watermark counts the commit
// marker ending each transaction, which is never delivered, so after the
// last record the lag reads 1 or more; a poll a second later that brings
// nothing shows those offsets hold no record.
func (l *loop) caughtUp() {
	for g := range l.lagged {
		g.Set(0)
	}
	clear(l.lagged)
}

// fetchFailed reports an error in fs other than the poll's own deadline.
func fetchFailed(fs kgo.Fetches) bool {
	failed := false
	fs.EachError(func(_ string, _ int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			failed = true
		}
	})
	return failed
}

// allow lets a waiting rebalance through; nothing may be polled and
// uncommitted then.
func (l *loop) allow() {
	l.rebalanceWaiting.Store(false)
	l.cl.AllowRebalance()
}

// poll waits up to a second for records: a sink with a Ticker ticks
// meanwhile, and a poll that finds nothing tells the lag gauges the sink
// caught up.
func (l *loop) poll(ctx context.Context) kgo.Fetches {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return l.cl.PollRecords(pctx, l.cfg.MaxBatch)
}

// decode reads a poll's records through the registry. A record that
// cannot be decoded becomes a quarantine record; a registry that cannot be
// reached is retried with back-off until it answers or the loop stops (the
// error is then returned, and the batch is not committed).
func (l *loop) decode(ctx context.Context, fs kgo.Fetches) (*batch, error) {
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
			continue
		}
		// franz-go retries fetch errors itself; these are for the log.
		l.log.Warn("fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
	}
	b := &batch{fs: fs, recs: fs.Records()}
	b.events = make([]Event, 0, len(b.recs))
	consumer := quarantine.SinkConsumer(l.cfg.Name)
	// One bounded context for the batch, not one per record: decoding is
	// the loop's hot path, and most records hit the registry's cache.
	dctx, cancel := graceContext(ctx, grace, l.cfg.WriteTimeout)
	defer cancel()
	for _, r := range b.recs {
		if quarantine.SkipFor(consumer, r.Headers) {
			// A re-feed addressed to another consumer: delivered already.
			l.cfg.Metrics.skipped.WithLabelValues(l.cfg.Name, r.Topic).Inc()
			continue
		}
		ev := Event{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Timestamp: r.Timestamp, Value: r.Value}
		err := l.decodeOne(ctx, dctx, r, &ev)
		if quarantine.IsPoison(err) {
			cause := fmt.Errorf("sink %s: decoding %s partition %d offset %d: %w", l.cfg.Name, r.Topic, r.Partition, r.Offset, err)
			src := quarantine.Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, SchemaID: quarantine.SchemaID(r.Value)}
			b.quarantine = append(b.quarantine, quarantine.Record(l.cfg.Quarantine, r, src, consumer, cause))
			continue
		}
		if err != nil {
			return nil, err
		}
		b.events = append(b.events, ev)
	}
	return b, nil
}

// decodeOne decodes r into ev within dctx, waiting out a registry that
// cannot be reached (each retry with a fresh bound): only the record's own
// faults (quarantine.IsPoison) and a stop of ctx end it with an error.
func (l *loop) decodeOne(ctx, dctx context.Context, r *kgo.Record, ev *Event) error {
	backoff := l.cfg.RetryMin
	for attempt := 0; ; attempt++ {
		cancel := context.CancelFunc(func() {})
		if attempt > 0 {
			dctx, cancel = graceContext(ctx, grace, l.cfg.WriteTimeout)
		}
		var err error
		switch l.cfg.Format {
		case JSON:
			ev.JSON, ev.SchemaID, err = l.dec.AppendJSON(dctx, nil, r.Value)
		default:
			ev.Record, ev.SchemaID, err = l.dec.Decode(dctx, r.Value)
		}
		cancel()
		if err == nil || quarantine.IsPoison(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sink %s: stopped while the registry could not be reached: %w", l.cfg.Name, err)
		}
		l.log.Warn("the schema registry cannot be reached; retrying (check --registry)", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
			"retry_in", backoff.String(), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("sink %s: stopped while the registry could not be reached: %w", l.cfg.Name, err)
		case <-time.After(backoff + rand.N(backoff/4+1)):
		}
		backoff = min(2*backoff, l.cfg.RetryMax)
	}
}

// quarantined produces a batch's quarantine records, counts and logs them
// (never the key or value: they may hold personal data).
func (l *loop) quarantined(ctx context.Context, b *batch) error {
	if len(b.quarantine) == 0 {
		return nil
	}
	qctx, cancel := graceContext(ctx, grace, l.cfg.WriteTimeout)
	defer cancel()
	if err := l.cl.ProduceSync(qctx, b.quarantine...).FirstErr(); err != nil {
		return fmt.Errorf("sink %s: producing %d records to the quarantine topic %s (the batch is delivered again on restart): %w", l.cfg.Name, len(b.quarantine), l.cfg.Quarantine, err)
	}
	for _, q := range b.quarantine {
		src, _ := quarantine.Parse(q)
		why, _ := quarantine.Header(q.Headers, quarantine.HeaderError)
		l.cfg.Metrics.quarantined.WithLabelValues(l.cfg.Name, src.Source.Topic).Inc()
		l.log.Warn("record quarantined: it cannot be decoded; the sink goes on without it (re-feed it with 'usagestream replay --quarantine "+quarantine.SinkConsumer(l.cfg.Name)+"' once fixed)",
			"topic", src.Source.Topic, "partition", src.Source.Partition, "offset", src.Source.Offset, "schema_id", src.Source.SchemaID,
			"quarantine_topic", l.cfg.Quarantine, "err", why)
	}
	return nil
}

// deliver writes a batch, retrying transient failures with back-off. It
// reports false, without error, when the loop stopped before the batch was
// written: the batch is then delivered again on the next start.
func (l *loop) deliver(ctx context.Context, events []Event) (bool, error) {
	m := l.cfg.Metrics
	backoff := l.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := l.write(ctx, grace, events)
		m.writeSeconds.WithLabelValues(l.cfg.Name).Observe(time.Since(start).Seconds())
		if err == nil {
			return true, nil
		}
		m.writeErrors.WithLabelValues(l.cfg.Name).Inc()
		if IsPermanent(err) {
			return false, fmt.Errorf("sink %s: %w", l.cfg.Name, err)
		}
		if ctx.Err() != nil {
			l.log.Warn("batch not written before the stop; it is delivered again on the next start", "events", len(events), "err", err)
			return false, nil
		}
		l.log.Warn("write failed; retrying", "attempt", attempt, "events", len(events), "retry_in", backoff.String(), "err", err)
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(backoff + rand.N(backoff/4+1)):
		}
		backoff = min(2*backoff, l.cfg.RetryMax)
	}
}

// committed commits a written batch's offsets and records its metrics.
func (l *loop) committed(ctx context.Context, b *batch) error {
	cctx, cancel := graceContext(ctx, grace, l.cfg.WriteTimeout)
	defer cancel()
	if err := l.commit(cctx, b.recs); err != nil {
		if lostMembership(err) {
			// The group moved on while this batch was written: the new
			// owner delivers it again, and the Writers drop what they have.
			l.log.Warn("offsets not committed: the partitions went to another member during the write; it delivers the batch again", "err", err)
			return nil
		}
		return fmt.Errorf("sink %s: committing offsets after a durable write (the batch is delivered again on restart, without duplicates): %w", l.cfg.Name, err)
	}
	m := l.cfg.Metrics
	now := time.Now()
	b.fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			lag := m.lag.WithLabelValues(l.cfg.Name, p.Topic, strconv.Itoa(int(p.Partition)))
			lag.Set(float64(p.HighWatermark - p.Records[n-1].Offset - 1))
			l.lagged[lag] = true
		}
	})
	if len(b.events) == 0 {
		return nil
	}
	oldest := b.events[0].Timestamp
	counts := map[string]int{}
	for _, ev := range b.events {
		counts[ev.Topic]++
		if ev.Timestamp.Before(oldest) {
			oldest = ev.Timestamp
		}
	}
	for t, n := range counts {
		m.events.WithLabelValues(l.cfg.Name, t).Add(float64(n))
	}
	m.batches.WithLabelValues(l.cfg.Name).Inc()
	m.delay.WithLabelValues(l.cfg.Name).Observe(now.Sub(oldest).Seconds())
	if l.cfg.Committed != nil {
		l.cfg.Committed(b.events, now)
	}
	return nil
}

// lostMembership reports a commit refused because this member is no longer
// the owner of its partitions in the current generation of the group.
func lostMembership(err error) bool {
	return errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.UnknownMemberID) ||
		errors.Is(err, kerr.RebalanceInProgress)
}

func (l *loop) commit(ctx context.Context, recs []*kgo.Record) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = l.cl.CommitRecords(ctx, recs...); err == nil || lostMembership(err) {
			return err
		}
		l.log.Warn("offset commit failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return err
}

// graceContext is a context for finishing a batch: it ends timeout after now,
// or grace after parent ends, whichever comes first.
func graceContext(parent context.Context, grace, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), timeout)
	stop := context.AfterFunc(parent, func() { time.AfterFunc(grace, cancel) })
	return ctx, func() { stop(); cancel() }
}

// write is one attempt at a batch, bounded by WriteTimeout and the grace.
func (l *loop) write(ctx context.Context, grace time.Duration, batch []Event) error {
	wctx, cancel := graceContext(ctx, grace, l.cfg.WriteTimeout)
	defer cancel()
	err := l.w.Write(wctx, batch)
	if err == nil && wctx.Err() != nil {
		// A Writer that ignored its context: do not trust the result.
		err = wctx.Err()
	}
	return err
}
