// Command consumer-go is an example of a service that consumes usagestream's
// eligibility events (docs/consumers.md): it reads eligibility.v1
// read_committed in a consumer group, decodes each Confluent-framed Avro
// value with the writer's schema from the registry resolved against its own
// reader schema (eligibility.avsc, so that fields added later are skipped),
// drops events it has seen by event_id (a replay or a redelivery sends the
// same event again), and folds them into the current eligibility of each
// (customer, premise, program). It commits its offsets after folding, so a
// crash delivers a batch again, which the de-duplication absorbs.
//
//	go run . -brokers 127.0.0.1:9092 -registry http://127.0.0.1:8081 -until-idle 5s
//
// With -until-idle it stops once nothing arrives for that long and prints
// the fold as JSON; without it, it runs until interrupted.
package main

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

//go:embed eligibility.avsc
var readerSchemaText string

// Event is what this service reads of an EligibilityChanged event.
type Event struct {
	EventID    string   `avro:"event_id"`
	CustomerID string   `avro:"customer_id"`
	PremiseID  string   `avro:"premise_id"`
	Program    string   `avro:"program"`
	Eligible   bool     `avro:"eligible"`
	Reasons    []Reason `avro:"reasons"`
	Cause      Cause    `avro:"cause"`
	Channel    string   `avro:"channel"` // reader-only: its default
}

// Reason is one thing that blocks the program (docs/rules.md#<Rule>).
type Reason struct {
	Code           string    `avro:"code" json:"code"`
	Rule           string    `avro:"rule" json:"rule"`
	ServicePointID *string   `avro:"service_point_id" json:"service_point_id,omitempty"`
	EffectiveDate  time.Time `avro:"effective_date" json:"effective_date"`
}

// Cause is the input behind the event: a file line for billing rows.
type Cause struct {
	Topic     string  `avro:"topic"`
	Partition int32   `avro:"partition"`
	Offset    int64   `avro:"offset"`
	File      *string `avro:"file"`
	Line      *int64  `avro:"line"`
}

// Subject is what eligibility is about.
type Subject struct {
	CustomerID string `json:"customer_id"`
	PremiseID  string `json:"premise_id"`
	Program    string `json:"program"`
}

// Current is the folded eligibility of one subject: its newest event.
type Current struct {
	Subject
	Eligible bool     `json:"eligible"`
	Reasons  []Reason `json:"reasons"`
	EventID  string   `json:"event_id"`
	Source   string   `json:"source,omitempty"` // file:line of the newest event's cause
}

// Fold is the consumer's state. A real service keeps it, and the event ids
// it has applied, in its own database, in the transaction that applies an
// event: the ids are then a unique key there, and the fold survives
// restarts.
type Fold struct {
	Events     int                 `json:"events"`
	Duplicates int                 `json:"duplicates"`
	Current    map[Subject]Current `json:"-"`
	seen       map[string]bool
	// Channels counts the reader-only field's values: the default for every
	// event of usagestream's schema.
	Channels map[string]int `json:"channels"`
}

// NewFold returns an empty fold.
func NewFold() *Fold {
	return &Fold{Current: map[Subject]Current{}, seen: map[string]bool{}, Channels: map[string]int{}}
}

// Apply folds one event: an id already applied changes nothing; otherwise
// the event is the subject's current eligibility. The events of a customer
// arrive in order (one partition, keyed by customer_id), so the newest is
// the last.
func (f *Fold) Apply(e Event) {
	f.Events++
	if f.seen[e.EventID] {
		f.Duplicates++
		return
	}
	f.seen[e.EventID] = true
	f.Channels[e.Channel]++
	c := Current{Subject: Subject{e.CustomerID, e.PremiseID, e.Program}, Eligible: e.Eligible, Reasons: e.Reasons, EventID: e.EventID}
	if e.Cause.File != nil && e.Cause.Line != nil {
		c.Source = fmt.Sprintf("%s:%d", *e.Cause.File, *e.Cause.Line)
	}
	if c.Reasons == nil {
		c.Reasons = []Reason{}
	}
	f.Current[c.Subject] = c
}

// Decoder turns Confluent-framed values into Events: the writer's schema by
// the id in the frame (fetched from the registry once), resolved against
// the reader schema.
type Decoder struct {
	reg    *sr.Client
	reader *avro.Schema
	mu     sync.Mutex
	byID   map[int]*avro.Schema
}

// NewDecoder parses the reader schema.
func NewDecoder(reg *sr.Client) (*Decoder, error) {
	reader, err := avro.Parse(readerSchemaText)
	if err != nil {
		return nil, fmt.Errorf("the reader schema eligibility.avsc: %w", err)
	}
	return &Decoder{reg: reg, reader: reader, byID: map[int]*avro.Schema{}}, nil
}

// Decode reads one framed value: a magic byte 0, the schema id as 4 bytes
// big-endian, the Avro body.
func (d *Decoder) Decode(ctx context.Context, value []byte) (Event, error) {
	var e Event
	if len(value) < 5 || value[0] != 0 {
		return e, errors.New("not a Confluent-framed Avro value")
	}
	id := int(binary.BigEndian.Uint32(value[1:5]))
	s, err := d.resolved(ctx, id)
	if err != nil {
		return e, err
	}
	if _, err := s.Decode(value[5:], &e); err != nil {
		return e, fmt.Errorf("schema id %d: %w", id, err)
	}
	return e, nil
}

func (d *Decoder) resolved(ctx context.Context, id int) (*avro.Schema, error) {
	d.mu.Lock()
	s := d.byID[id]
	d.mu.Unlock()
	if s != nil {
		return s, nil
	}
	ws, err := d.reg.SchemaByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("fetching schema id %d from the registry: %w", id, err)
	}
	writer, err := avro.Parse(ws.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	// Resolution fails when the writer dropped a field this reader needs
	// without a default: a schema change this consumer must follow.
	s, err = avro.Resolve(writer, d.reader)
	if err != nil {
		return nil, fmt.Errorf("schema id %d cannot be read with this consumer's eligibility.avsc: %w", id, err)
	}
	d.mu.Lock()
	d.byID[id] = s
	d.mu.Unlock()
	return s, nil
}

// Config is what the consumer connects to.
type Config struct {
	Brokers   []string
	Registry  string
	Topic     string
	Group     string
	UntilIdle time.Duration // 0: run until ctx ends
}

// Run consumes until ctx ends (or until idle) and returns the fold.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Fold, error) {
	// Idle time counts from the assignment: joining the group can take
	// seconds on a real cluster, and nothing arrives before it.
	var assignedMu sync.Mutex
	var assigned time.Time
	cl, err := kgo.NewClient(
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			assignedMu.Lock()
			assigned = time.Now()
			assignedMu.Unlock()
		}),
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		// Only what the processors' transactions committed: an aborted
		// transaction's events are never seen.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Offsets are committed after the fold, never before.
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	reg, err := sr.NewClient(sr.URLs(cfg.Registry))
	if err != nil {
		return nil, err
	}
	dec, err := NewDecoder(reg)
	if err != nil {
		return nil, err
	}
	fold := NewFold()
	last := time.Now()
	for {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if cfg.UntilIdle > 0 {
			pctx, cancel = context.WithTimeout(ctx, time.Second)
		}
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return fold, nil
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = cmp.Or(ferr, fmt.Errorf("%s partition %d: %w", t, p, err))
			}
		})
		if ferr != nil {
			return fold, ferr
		}
		n := 0
		var derr error
		fs.EachRecord(func(r *kgo.Record) {
			if derr != nil {
				return
			}
			e, err := dec.Decode(ctx, r.Value)
			if err != nil {
				// Stop rather than skip: a skipped event would leave its
				// subject wrong for good. Fix the cause (usually a
				// schema change) and start again from the committed offset.
				derr = fmt.Errorf("%s partition %d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			fold.Apply(e)
			n++
		})
		if derr != nil {
			return fold, derr
		}
		if n > 0 {
			last = time.Now()
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return fold, fmt.Errorf("committing offsets: %w", err)
			}
			log.Debug("folded", "events", n)
		} else if cfg.UntilIdle > 0 {
			assignedMu.Lock()
			since := assigned
			assignedMu.Unlock()
			from := last
			if since.After(from) {
				from = since
			}
			if !since.IsZero() && time.Since(from) >= cfg.UntilIdle {
				return fold, nil
			}
		}
	}
}

// Report is what -until-idle prints: the counts and every subject's
// current eligibility, sorted.
type Report struct {
	Events     int            `json:"events"`
	Duplicates int            `json:"duplicates"`
	Channels   map[string]int `json:"channels"`
	Subjects   []Current      `json:"subjects"`
}

func report(w io.Writer, f *Fold) error {
	r := Report{Events: f.Events, Duplicates: f.Duplicates, Channels: f.Channels, Subjects: make([]Current, 0, len(f.Current))}
	for _, c := range f.Current {
		r.Subjects = append(r.Subjects, c)
	}
	slices.SortFunc(r.Subjects, func(a, b Current) int {
		return cmp.Or(strings.Compare(a.CustomerID, b.CustomerID), strings.Compare(a.PremiseID, b.PremiseID), strings.Compare(a.Program, b.Program))
	})
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	registry := flag.String("registry", "http://127.0.0.1:8081", "schema registry URL")
	prefix := flag.String("topic-prefix", "", "usagestream's topic prefix (USAGESTREAM_TOPIC_PREFIX)")
	group := flag.String("group", "eligibility-example", "consumer group")
	idle := flag.Duration("until-idle", 0, "stop once nothing arrived for this long, and print the fold as JSON")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fold, err := Run(ctx, Config{Brokers: strings.Split(*brokers, ","), Registry: *registry, Topic: *prefix + "eligibility.v1",
		Group: *group, UntilIdle: *idle}, log)
	if err != nil {
		log.Error("consuming", "err", err)
		os.Exit(1)
	}
	if err := report(os.Stdout, fold); err != nil {
		log.Error("printing", "err", err)
		os.Exit(1)
	}
}
