// Package adapter is the client an MDMS adapter written in Go uses to stream
// VEE-validated interval reads into usagestream: the same IntervalRead records
// on the same topic, keyed by service point, as interval files give.
//
//	c, err := adapter.New(ctx, kc, adapter.Config{Utility: "gec", Name: "mdms-east"})
//	...
//	if err := c.Send(ctx, read); err != nil { ... } // a *ReadError: that read is wrong
//	...
//	if err := c.Close(ctx); err != nil { ... }     // flushes; names every read not delivered
//
// Reads are batched by the Kafka client (linger) and sent by an idempotent
// producer: at least once, without duplicates from retries. A read sent again
// after an error is harmless: the interval stage treats the same value for
// the same interval as nothing new (I2). Back-pressure: Send blocks while
// MaxBuffered reads are waiting for Kafka.
package adapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
	"github.com/usagestream/usagestream/schemas"
)

// Config configures a Client.
type Config struct {
	Utility string // utility code carried on every record; required
	Name    string // names the adapter in each record's origin; required
	// Kind is the origin kind (the NDJSON endpoint uses
	// interval.OriginHTTP). Default: interval.OriginAdapter.
	Kind string
	// Topics. Default: topics.NewNames(kc.TopicPrefix).
	Topics *topics.Names
	Check  interval.Check
	// MaxBuffered reads may wait for Kafka before Send blocks. Default: 10,000.
	MaxBuffered int
	// Linger is how long the client waits to fill a batch. Default: 5ms.
	Linger time.Duration
}

// withDefaults returns c with the defaults its fields' docs state in place
// of zero values, for the Kafka configuration kc.
func (c Config) withDefaults(kc kafkaconf.Config) Config {
	if c.Kind == "" {
		c.Kind = interval.OriginAdapter
	}
	if c.Topics == nil {
		n := topics.NewNames(kc.TopicPrefix)
		c.Topics = &n
	}
	if c.MaxBuffered <= 0 {
		c.MaxBuffered = 10_000
	}
	if c.Linger <= 0 {
		c.Linger = 5 * time.Millisecond
	}
	return c
}

// Client publishes reads. It is safe for concurrent use.
type Client struct {
	cfg      Config
	cl       *kgo.Client
	schemaID int // of IntervalRead in the registry
	v        *interval.Validator
	topic    string

	mu     sync.Mutex
	failed []error // delivery errors since the last Flush
}

// ReadError says why one read was not accepted or not delivered.
type ReadError struct {
	ServicePointID string
	EndMillis      int64
	Reasons        []records.Reason // the read's faults, each naming its field
	Err            error            // a delivery failure (Reasons is empty then)
}

func (e *ReadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "read of service point %q ending %s: ", e.ServicePointID, time.UnixMilli(e.EndMillis).UTC().Format(time.RFC3339))
	if e.Err != nil {
		fmt.Fprintf(&b, "not delivered to Kafka (%v); send it again", e.Err)
		return b.String()
	}
	for i, r := range e.Reasons {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s: %s", r.Field, r.Code, r.Message)
	}
	return b.String()
}

func (e *ReadError) Unwrap() error { return e.Err }

// New registers the IntervalRead schema and connects to Kafka.
func New(ctx context.Context, kc kafkaconf.Config, cfg Config) (*Client, error) {
	if cfg.Utility == "" || cfg.Name == "" {
		return nil, errors.New("adapter: Config.Utility and Config.Name are required: every read carries its utility and where it came from")
	}
	cfg = cfg.withDefaults(kc)
	v, err := interval.NewValidator(cfg.Check)
	if err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, v: v, topic: cfg.Topics.Intervals}
	if err := serde.NewRegistry(rc).RegisterAll(ctx, serde.Binding{Topic: c.topic, Schema: schemas.MustText(schemas.IntervalRead), Dst: &c.schemaID}); err != nil {
		return nil, fmt.Errorf("adapter: %w (registry %s)", err, kc.RedactedRegistryURL())
	}
	c.cl, err = kc.NewClient(ctx, kgo.MaxBufferedRecords(cfg.MaxBuffered), kgo.ProducerLinger(cfg.Linger))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// encode validates r and builds its record.
func (c *Client) encode(r *records.IntervalRead) (*kgo.Record, error) {
	if rs := c.v.Validate(r); rs != nil {
		return nil, &ReadError{ServicePointID: r.ServicePointID, EndMillis: r.EndMillis, Reasons: rs}
	}
	v, err := interval.AppendAvro(make([]byte, 0, 96), c.schemaID, r,
		interval.Origin{Utility: c.cfg.Utility, Kind: c.cfg.Kind, Name: c.cfg.Name})
	if err != nil {
		return nil, &ReadError{ServicePointID: r.ServicePointID, EndMillis: r.EndMillis, Err: err}
	}
	return &kgo.Record{Topic: c.topic, Key: []byte(r.ServicePointID), Value: v}, nil
}

// Send validates r and queues it. A read that breaks the rules of
// docs/data-contract.md §3 comes back at once as a *ReadError naming each field; a
// delivery failure is returned by the next Flush or Close. Send blocks while
// MaxBuffered reads wait for Kafka, until ctx ends.
func (c *Client) Send(ctx context.Context, r records.IntervalRead) error {
	rec, err := c.encode(&r)
	if err != nil {
		return err
	}
	sp, end := r.ServicePointID, r.EndMillis
	c.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		if err != nil {
			c.mu.Lock()
			c.failed = append(c.failed, &ReadError{ServicePointID: sp, EndMillis: end, Err: err})
			c.mu.Unlock()
		}
	})
	return nil
}

// SendBatch sends reads and waits until each is delivered or refused: errs[i]
// is nil when reads[i] is on Kafka, else a *ReadError (or ctx's error).
func (c *Client) SendBatch(ctx context.Context, reads []records.IntervalRead) (errs []error) {
	errs = make([]error, len(reads))
	var wg sync.WaitGroup
	for i := range reads {
		rec, err := c.encode(&reads[i])
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		sp, end := reads[i].ServicePointID, reads[i].EndMillis
		c.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				errs[i] = &ReadError{ServicePointID: sp, EndMillis: end, Err: err}
			}
			wg.Done()
		})
	}
	wg.Wait()
	return errs
}

// Flush waits until every queued read is delivered or failed, and returns
// the failures since the last Flush, each a *ReadError, joined.
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
