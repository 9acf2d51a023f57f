// Package postgres is the PostgreSQL sink: eligibility changes (history and
// the current state of each subject), corrections, account events and
// anomalies, written in batches, one transaction per batch.
//
// Idempotence: every event table is keyed by event_id and written with ON
// CONFLICT DO NOTHING, and the current-eligibility row of a subject moves
// only forward in its partition's offsets, so an event delivered again (a
// sink killed between its database commit and its Kafka offset commit)
// changes nothing. The consume loop (sinks/sink) commits offsets only after
// the database transaction committed.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/topics"
	recavro "github.com/usagestream/usagestream/records/avro"
	"github.com/usagestream/usagestream/sinks/sink"
)

// Config configures the sink.
type Config struct {
	URL     string // required: postgres://user:password@host:port/db?sslmode=...
	Topics  topics.Names
	Logger  *slog.Logger // Default: discard.
	Metrics *Metrics     // Default: unregistered.
}

// withDefaults returns c with the defaults its fields' docs state in place
// of zero values.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	return c
}

// Sink writes event batches to PostgreSQL. It holds one connection, opened
// again after any failure; batches come one at a time from the loop.
type Sink struct {
	cfg  Config
	log  *slog.Logger
	conn *pgx.Conn
}

// Open connects, runs the migrations, and returns the sink.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	if cfg.URL == "" {
		return nil, errors.New("no PostgreSQL URL: set --postgres-url or USAGESTREAM_POSTGRES_URL (postgres://user:password@host:5432/db)")
	}
	cfg = cfg.withDefaults()
	s := &Sink{cfg: cfg, log: cfg.Logger.With("sink", "postgres")}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	applied, err := Migrate(ctx, conn)
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("migrating the PostgreSQL tables: %w", err)
	}
	if len(applied) > 0 {
		s.log.Info("database migrated", "versions", applied)
	}
	s.conn = conn
	return s, nil
}

func (s *Sink) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.cfg.URL)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		return nil, errors.New("the PostgreSQL URL does not parse: want postgres://user:password@host:5432/db?sslmode=disable")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL at %s:%d database %s (is it running, and are the user and password right?): %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	return conn, nil
}

// Close closes the connection.
func (s *Sink) Close() {
	if s.conn != nil {
		s.conn.Close(context.Background())
		s.conn = nil
	}
}

// Write implements sink.Writer: the whole batch in one transaction.
func (s *Sink) Write(ctx context.Context, batch []sink.Event) error {
	rows, err := s.rows(batch)
	if err != nil {
		return sink.Permanent(err)
	}
	if s.conn == nil || s.conn.IsClosed() {
		if s.conn, err = s.connect(ctx); err != nil {
			return err
		}
	}
	err = s.write(ctx, rows)
	if err != nil {
		// A fresh connection for the retry: this one may be mid-protocol.
		s.Close()
		var pe *pgconn.PgError
		if errors.As(err, &pe) && permanentClass(pe.Code) {
			return sink.Permanent(fmt.Errorf("PostgreSQL refused the batch (%s %s); fix the table or the data, then restart the sink: %w", pe.Code, pe.Message, err))
		}
		return fmt.Errorf("writing %d events to PostgreSQL: %w", len(batch), err)
	}
	return nil
}

// permanentClass: data exceptions, integrity violations, a missing table or
// column, insufficient privilege. Retrying the same batch cannot help.
func permanentClass(code string) bool {
	switch code[:2] {
	case "22", "23", "42":
		return true
	}
	return false
}

type kindRows struct {
	n         int
	statement string
	args      []any
	inserted  prometheus.Counter
	dupes     prometheus.Counter
}

func (s *Sink) write(ctx context.Context, rows []kindRows) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	b := &pgx.Batch{}
	for _, r := range rows {
		if r.n > 0 {
			b.Queue(r.statement, r.args...)
		}
	}
	res := tx.SendBatch(ctx, b)
	affected := make([]int64, len(rows))
	for i, r := range rows {
		if r.n == 0 {
			continue
		}
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return err
		}
		affected[i] = tag.RowsAffected()
	}
	if err := res.Close(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	dupes := 0
	for i, r := range rows {
		if r.inserted == nil {
			continue
		}
		r.inserted.Add(float64(affected[i]))
		r.dupes.Add(float64(int64(r.n) - affected[i]))
		dupes += r.n - int(affected[i])
	}
	if dupes > 0 {
		s.log.Info("events already in the database skipped (delivered again after a restart)", "events", dupes)
	}
	return nil
}

// rows turns a batch into one multi-row statement per table: unnest of
// arrays, one array per column, which PostgreSQL plans once and pgx sends in
// binary.
func (s *Sink) rows(batch []sink.Event) ([]kindRows, error) {
	var el eligibilityRows
	var co correctionRows
	var ae accountRows
	var an anomalyRows
	for _, ev := range batch {
		var err error
		switch rec := ev.Record.(type) {
		case *recavro.EligibilityChanged:
			err = onTopic(ev, s.cfg.Topics.Eligibility, el.add(ev, rec))
		case *recavro.UsageCorrected:
			err = onTopic(ev, s.cfg.Topics.Corrections, co.add(ev, rec))
		case *recavro.AccountEvent:
			err = onTopic(ev, s.cfg.Topics.AccountEvents, ae.add(ev, rec))
		case *recavro.Anomaly:
			err = onTopic(ev, s.cfg.Topics.Anomalies, an.add(ev, rec))
		default:
			err = fmt.Errorf("a %T record is not an event this sink writes", ev.Record)
		}
		if err != nil {
			return nil, fmt.Errorf("%s partition %d offset %d: %w", ev.Topic, ev.Partition, ev.Offset, err)
		}
	}
	m := s.cfg.Metrics
	cur := el.current()
	return []kindRows{
		{n: len(el.id), statement: insertEligibility, args: el.args(), inserted: m.inserted.WithLabelValues("eligibility_history"), dupes: m.duplicates.WithLabelValues("eligibility_history")},
		{n: len(cur.customer), statement: upsertCurrent, args: cur.args()},
		{n: len(co.id), statement: insertCorrections, args: co.args(), inserted: m.inserted.WithLabelValues("corrections"), dupes: m.duplicates.WithLabelValues("corrections")},
		{n: len(ae.id), statement: insertAccountEvents, args: ae.args(), inserted: m.inserted.WithLabelValues("account_events"), dupes: m.duplicates.WithLabelValues("account_events")},
		{n: len(an.id), statement: insertAnomalies, args: an.args(), inserted: m.inserted.WithLabelValues("anomalies"), dupes: m.duplicates.WithLabelValues("anomalies")},
	}, nil
}

// onTopic is err, or an error when ev's record is not of its topic's kind
// (an eligibility event on the anomalies topic): its rows would go to the
// wrong table.
func onTopic(ev sink.Event, topic string, err error) error {
	if err == nil && ev.Topic != topic {
		err = fmt.Errorf("a %s record on a topic that is not %s (check --topic-prefix)", ev.Record.Schema(), topic)
	}
	return err
}

// Metrics are the sink's own Prometheus metrics.
type Metrics struct {
	inserted   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		inserted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_sink_postgres_rows_inserted_total", Help: "Event rows inserted, by table.",
		}, []string{"table"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_sink_postgres_duplicates_total", Help: "Events delivered again that were already in the table (skipped by event_id).",
		}, []string{"table"}),
	}
	if reg != nil {
		reg.MustRegister(m.inserted, m.duplicates)
	}
	return m
}

// common holds the columns every event table has.
type common struct {
	id         []string
	utility    []string
	sourceFile []*string
	sourceLine []*int64
	cause      []string
	topic      []string
	partition  []int32
	offset     []int64
	produced   []time.Time
}

func (c *common) add(ev sink.Event, id, utility string, cause *recavro.Cause) error {
	cj, err := json.Marshal(sourceOf(cause))
	if err != nil {
		return err
	}
	c.id = append(c.id, id)
	c.utility = append(c.utility, utility)
	c.sourceFile = append(c.sourceFile, cause.File)
	c.sourceLine = append(c.sourceLine, cause.Line)
	c.cause = append(c.cause, string(cj))
	c.topic = append(c.topic, ev.Topic)
	c.partition = append(c.partition, ev.Partition)
	c.offset = append(c.offset, ev.Offset)
	c.produced = append(c.produced, ev.Timestamp)
	return nil
}

func (c *common) args() []any {
	return []any{c.id, c.utility, c.sourceFile, c.sourceLine, c.cause, c.topic, c.partition, c.offset, c.produced}
}

// The first nine parameters of every insert are common's columns.
const commonColumns = `event_id, utility, source_file, source_line, cause, kafka_topic, kafka_partition, kafka_offset, produced_at`
const commonUnnest = `$1::text[], $2::text[], $3::text[], $4::bigint[], $5::jsonb[], $6::text[], $7::int[], $8::bigint[], $9::timestamptz[]`
