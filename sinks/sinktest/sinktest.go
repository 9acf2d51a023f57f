// Package sinktest supports the sinks' tests and benchmarks: a generator of
// schema-valid events of the four event topics, a transactional producer that
// writes them as the processors do, and a private PostgreSQL database per test
// on the server that scripts/test.d/20-postgres.sh starts.
package sinktest

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	recavro "github.com/usagestream/usagestream/records/avro"
	"github.com/usagestream/usagestream/schemas"
)

// PostgresEnv names the variable that points the tests at a PostgreSQL
// server; scripts/test.d/20-postgres.sh sets it.
const PostgresEnv = "USAGESTREAM_TEST_POSTGRES_URL"

// Postgres returns the URL of a new, empty database on the test server,
// dropped when the test ends. Without the server it skips, but fails on CI
// (CI=true), where a skipped database test would hide a broken lane.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set on CI: scripts/test.d/20-postgres.sh should have started PostgreSQL", PostgresEnv)
		}
		t.Skipf("no PostgreSQL: set %s (make test starts one, see scripts/test.d/20-postgres.sh)", PostgresEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to %s: %v", PostgresEnv, err)
	}
	defer conn.Close(context.Background())
	var r [6]byte
	_, _ = crand.Read(r[:])
	db := "t_" + hex.EncodeToString(r[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s is not a postgres:// URL: %v", PostgresEnv, err)
	}
	u.Path = "/" + db
	return u.String()
}

// Event is one generated event as produced.
type Event struct {
	Topic   string
	Key     string
	EventID string
	Record  recavro.Record
}

// EventID is the event_id of an event record (empty for other records).
func EventID(r recavro.Record) string {
	switch e := r.(type) {
	case *recavro.EligibilityChanged:
		return e.EventID
	case *recavro.UsageCorrected:
		return e.EventID
	case *recavro.AccountEvent:
		return e.EventID
	case *recavro.Anomaly:
		return e.EventID
	}
	return ""
}

// Generator makes schema-valid events: eligibility changes for a set of
// subjects (each (customer, premise, program) alternating eligible and not,
// with reasons), and corrections, account events and anomalies on service
// points. Deterministic for a seed.
type Generator struct {
	names topics.Names
	rng   *rand.Rand
	seq   int64
	state map[string]bool // subject -> eligible
	// Customers is the number of customers (default 1000).
	Customers int
}

// NewGenerator starts a generator for the topics of names.
func NewGenerator(names topics.Names, seed uint64) *Generator {
	return &Generator{names: names, rng: rand.New(rand.NewPCG(seed, 7)), state: map[string]bool{}, Customers: 1000}
}

var programs = []string{"communications", "web_access", "neighbor_comparison", "dual_fuel_insights", "disaggregation"}

var day0 = dates.MustParse("20240101")

func cause(seq int64) recavro.Cause {
	line := seq + 2
	return recavro.Cause{Topic: "usagestream.billing.v1", Partition: int32(seq % 3), Offset: seq,
		File: recavro.Opt("opwr_gec_res_v1-19-0_full_20250101000000.tsv.gz"), Line: &line}
}

func ptr[T any](v T) *T { return &v }

// Next returns the next event: about 60% eligibility, then corrections,
// account events and anomalies.
func (g *Generator) Next() Event {
	g.seq++
	seq := g.seq
	id := fmt.Sprintf("gen-%d-0", seq)
	c := g.rng.IntN(g.Customers)
	cust, prem, sp := fmt.Sprintf("C%06d", c), fmt.Sprintf("P%06d", c), fmt.Sprintf("SP%06d", c)
	date := day0 + dates.Date(g.rng.IntN(700))
	later := dates.FromTime(date.Time().AddDate(2, 0, 0))
	switch k := g.rng.IntN(10); {
	case k < 6:
		prog := programs[g.rng.IntN(len(programs))]
		subj := cust + "|" + prem + "|" + prog
		// Changes flip eligibility, or (a third of the time) change the
		// reasons of an ineligible subject, as the processors emit them.
		prev, seen := g.state[subj]
		elig := !prev
		switch {
		case !seen:
			elig = g.rng.IntN(2) == 0
		case !prev && g.rng.IntN(3) == 0:
			elig = false
		}
		g.state[subj] = elig
		reasons := []recavro.Reason{}
		if !elig {
			codes := []string{"USAGE_GAP", "INACTIVE", "RATE_NOT_ALLOWED"}
			for i := 0; i <= g.rng.IntN(2); i++ {
				var until *dates.Date
				if i == 0 {
					until = &later
				}
				reasons = append(reasons, recavro.Reason{Code: codes[(int(seq)+i)%len(codes)], Rule: "U2",
					ServicePointID: recavro.Opt(sp), EffectiveDate: date - dates.Date(i*10), Until: until, Source: cause(seq)})
			}
		}
		return Event{Topic: g.names.Eligibility, Key: cust, EventID: id, Record: &recavro.EligibilityChanged{
			EventID: id, Utility: "gec", CustomerID: cust, PremiseID: prem, SecondaryID: recavro.Opt("S" + cust),
			Program: prog, Eligible: elig, Reasons: reasons, Cause: cause(seq)}}
	case k < 7:
		return Event{Topic: g.names.Corrections, Key: sp, EventID: id, Record: &recavro.UsageCorrected{
			EventID: id, Utility: "gec", ServicePointID: sp, Kind: "EXACT", Rule: "U4", DateTo: date,
			Duration: 30, OldValue: 100.5, NewValue: 99.25, OldCharge: ptr(12.5),
			NewDateTo: date, NewDuration: 30, Cause: cause(seq)}}
	case k < 9:
		return Event{Topic: g.names.AccountEvents, Key: sp, EventID: id, Record: &recavro.AccountEvent{
			EventID: id, Utility: "gec", ServicePointID: sp, AccountID: "A" + cust, CustomerID: cust,
			PremiseID: prem, Type: "TERMINATED", Rule: "A4", Date: date, Cause: cause(seq)}}
	default:
		return Event{Topic: g.names.Anomalies, Key: sp, EventID: id, Record: &recavro.Anomaly{
			EventID: id, Utility: "gec", ServicePointID: sp, Code: "USAGE_GAP", Rule: "U2",
			Message: "gap of 31 days", EffectiveDate: date, Until: &later,
			Cleared: seq%4 == 0, AccountID: recavro.Opt("A" + cust), CustomerID: recavro.Opt(cust), Cause: cause(seq)}}
	}
}

// Producer writes generated events in Kafka transactions, as the processors
// do, so the sinks read them read_committed behind commit markers.
type Producer struct {
	cl  *kgo.Client
	ids map[string]int // schema id by topic
}

// NewProducer registers the event schemas and opens a transactional producer.
func NewProducer(ctx context.Context, kc kafkaconf.Config, names topics.Names) (*Producer, error) {
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return nil, err
	}
	reg := serde.NewRegistry(rc)
	var elig, corr, acct, anom int
	if err := reg.RegisterAll(ctx,
		serde.Binding{Topic: names.Eligibility, Schema: schemas.MustText(schemas.EligibilityChanged), Dst: &elig},
		serde.Binding{Topic: names.Corrections, Schema: schemas.MustText(schemas.UsageCorrected), Dst: &corr},
		serde.Binding{Topic: names.AccountEvents, Schema: schemas.MustText(schemas.AccountEvent), Dst: &acct},
		serde.Binding{Topic: names.Anomalies, Schema: schemas.MustText(schemas.Anomaly), Dst: &anom},
	); err != nil {
		return nil, err
	}
	var r [6]byte
	_, _ = crand.Read(r[:])
	cl, err := kc.NewClient(ctx, kgo.TransactionalID("sinktest-"+hex.EncodeToString(r[:])), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &Producer{cl: cl, ids: map[string]int{names.Eligibility: elig, names.Corrections: corr, names.AccountEvents: acct, names.Anomalies: anom}}, nil
}

// Close closes the client.
func (p *Producer) Close() { p.cl.Close() }

// Encode turns events into records, so a paced benchmark can encode ahead.
func (p *Producer) Encode(evs []Event) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, len(evs))
	for i, e := range evs {
		v, err := recavro.Append(nil, p.ids[e.Topic], e.Record)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", e.EventID, err)
		}
		recs[i] = &kgo.Record{Topic: e.Topic, Key: []byte(e.Key), Value: v}
	}
	return recs, nil
}

// Send produces evs in one transaction and waits for its commit.
func (p *Producer) Send(ctx context.Context, evs []Event) error {
	recs, err := p.Encode(evs)
	if err != nil {
		return err
	}
	return p.SendRecords(ctx, recs)
}

// SendRecords produces recs in one transaction and waits for its commit.
func (p *Producer) SendRecords(ctx context.Context, recs []*kgo.Record) error {
	if err := p.cl.BeginTransaction(); err != nil {
		return err
	}
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		_ = p.cl.EndTransaction(ctx, kgo.TryAbort)
		return err
	}
	return p.cl.EndTransaction(ctx, kgo.TryCommit)
}

// Produce generates n events and sends them in transactions of up to 1000.
func Produce(t testing.TB, kc kafkaconf.Config, names topics.Names, g *Generator, n int) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := NewProducer(ctx, kc, names)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	all := make([]Event, 0, n)
	for len(all) < n {
		chunk := make([]Event, 0, 1000)
		for len(chunk) < cap(chunk) && len(all)+len(chunk) < n {
			chunk = append(chunk, g.Next())
		}
		if err := p.Send(ctx, chunk); err != nil {
			t.Fatal(err)
		}
		all = append(all, chunk...)
	}
	return all
}
