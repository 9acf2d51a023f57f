package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	recavro "github.com/usagestream/usagestream/records/avro"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestMigrateOnceAndAgain(t *testing.T) {
	url := sinktest.Postgres(t)
	c := connect(t, url)
	ctx := context.Background()
	applied, err := Migrate(ctx, c)
	if err != nil || len(applied) == 0 || applied[0] != 1 {
		t.Fatalf("first migration: applied %v, err %v", applied, err)
	}
	applied, err = Migrate(ctx, c)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second run must apply nothing: applied %v, err %v", applied, err)
	}
	for _, table := range []string{"eligibility_history", "eligibility_current", "corrections", "account_events", "anomalies"} {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

func TestOpenWithoutServerSaysWhatToCheck(t *testing.T) {
	_, err := Open(context.Background(), Config{URL: "postgres://u:secret@127.0.0.1:1/db?connect_timeout=2"})
	if err == nil || !strings.Contains(err.Error(), "is it running") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("want a connection error that names what to check and hides the password, got %v", err)
	}
	_, err = Open(context.Background(), Config{})
	if err == nil || !strings.Contains(err.Error(), "USAGESTREAM_POSTGRES_URL") {
		t.Fatalf("no URL: %v", err)
	}
}

// roundTrip gives events as the loop hands them over: encoded with their
// schema and decoded again into the typed records.
func roundTrip(t testing.TB, evs []sinktest.Event, start time.Time) []sink.Event {
	t.Helper()
	out := make([]sink.Event, len(evs))
	for i, e := range evs {
		framed, err := recavro.Append(nil, 1, e.Record)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := recavro.DecodeBody(e.Record.Schema(), framed[5:])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = sink.Event{Topic: e.Topic, Partition: 0, Offset: int64(i), Key: []byte(e.Key), Timestamp: start.Add(time.Duration(i) * time.Second), Record: rec}
	}
	return out
}

type currentRow struct {
	Eligible    bool
	Since       *time.Time
	StatusSince time.Time
	EventID     string
	Codes       []string
}

func currentTable(t *testing.T, c *pgx.Conn) map[string]currentRow {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT customer_id||'|'||premise_id||'|'||program, eligible, since, status_since, event_id, reason_codes FROM eligibility_current`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]currentRow{}
	for rows.Next() {
		var k string
		var r currentRow
		if err := rows.Scan(&k, &r.Eligible, &r.Since, &r.StatusSince, &r.EventID, &r.Codes); err != nil {
			t.Fatal(err)
		}
		r.StatusSince = r.StatusSince.UTC()
		out[k] = r
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return out
}

// TestBatchingAndRedeliveryDoNotChangeTheResult writes the same event
// sequence in batches of every size, each batch also delivered again with
// its predecessor, and checks the tables equal those of one batch.
func TestBatchingAndRedeliveryDoNotChangeTheResult(t *testing.T) {
	names := topics.NewNames("usagestream.")
	g := sinktest.NewGenerator(names, 3)
	g.Customers = 5 // few subjects: many changes per subject
	var gen []sinktest.Event
	for range 300 {
		gen = append(gen, g.Next())
	}
	evs := roundTrip(t, gen, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()

	var want map[string]currentRow
	for _, size := range []int{len(evs), 1, 2, 7, 50} {
		url := sinktest.Postgres(t)
		m := NewMetrics(nil)
		s, err := Open(ctx, Config{URL: url, Topics: names, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		var prev []sink.Event
		for i := 0; i < len(evs); i += size {
			b := evs[i:min(i+size, len(evs))]
			if err := s.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
			if len(prev) > 0 && size > 1 {
				// The previous batch and this one again, as one batch.
				if err := s.Write(ctx, append(append([]sink.Event{}, prev...), b...)); err != nil {
					t.Fatal(err)
				}
			}
			prev = b
		}
		// Every batch delivered again, newest first: older events must not
		// move the current state back.
		for i := (len(evs) - 1) / size * size; i >= 0 && size > 1; i -= size {
			if err := s.Write(ctx, evs[i:min(i+size, len(evs))]); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		c := connect(t, url)
		var hist int
		if err := c.QueryRow(ctx, "SELECT (SELECT count(*) FROM eligibility_history)+(SELECT count(*) FROM corrections)+(SELECT count(*) FROM account_events)+(SELECT count(*) FROM anomalies)").Scan(&hist); err != nil {
			t.Fatal(err)
		}
		if hist != len(evs) {
			t.Fatalf("batch size %d: %d rows in the event tables, want %d", size, hist, len(evs))
		}
		got := currentTable(t, c)
		if want == nil {
			want = got
			if len(want) == 0 {
				t.Fatal("no current eligibility rows")
			}
			checkCurrentAgainstEvents(t, evs, want)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("batch size %d: current eligibility differs from one batch:\n got %v\nwant %v", size, got, want)
		}
		if size > 1 {
			dupes := testutil.ToFloat64(m.duplicates.WithLabelValues("eligibility_history")) + testutil.ToFloat64(m.duplicates.WithLabelValues("anomalies"))
			if dupes == 0 {
				t.Fatalf("batch size %d: redelivered batches counted no duplicates", size)
			}
		}
	}
}

// checkCurrentAgainstEvents recomputes the current state of each subject
// from the event sequence: the last event wins; status_since is the
// timestamp of the event that started its run of equal eligible values.
func checkCurrentAgainstEvents(t *testing.T, evs []sink.Event, got map[string]currentRow) {
	t.Helper()
	type st struct {
		id       string
		eligible bool
		since    time.Time
	}
	want := map[string]st{}
	for _, e := range evs {
		n, ok := e.Record.(*recavro.EligibilityChanged)
		if !ok {
			continue
		}
		k := n.CustomerID + "|" + n.PremiseID + "|" + n.Program
		el := n.Eligible
		prev, seen := want[k]
		since := e.Timestamp
		if seen && prev.eligible == el {
			since = prev.since
		}
		want[k] = st{n.EventID, el, since}
	}
	if len(got) != len(want) {
		t.Fatalf("%d current rows, want %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g.EventID != w.id || g.Eligible != w.eligible || !g.StatusSince.Equal(w.since) {
			t.Errorf("%s: got %+v, want event %s eligible %v status_since %v", k, g, w.id, w.eligible, w.since)
		}
		if !g.Eligible && (g.Since == nil || len(g.Codes) == 0) {
			t.Errorf("%s: ineligible without since date or reason codes: %+v", k, g)
		}
		if g.Eligible && (g.Since != nil || len(g.Codes) != 0) {
			t.Errorf("%s: eligible with reasons: %+v", k, g)
		}
	}
}

// TestSinkThroughKafka: events produced in transactions land once each,
// through the consume loop; a second group over the same database (every
// event delivered again) changes nothing.
func TestSinkThroughKafka(t *testing.T) {
	env := kafkatest.Start(t)
	url := sinktest.Postgres(t)
	evs := sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 9), 6000)
	perTopic := map[string]int{}
	for _, e := range evs {
		perTopic[e.Topic]++
	}
	c := connect(t, url)
	run := func(group string) float64 {
		ctx, cancel := context.WithCancel(context.Background())
		m := NewMetrics(nil)
		s, err := Open(ctx, Config{URL: url, Topics: env.Topics, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		done := make(chan error, 1)
		go func() {
			done <- sink.Run(ctx, sink.Config{Name: "postgres", Kafka: env.Kafka, Group: group, MaxBatch: 700}, s)
		}()
		for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
			kafkatest.WaitCaughtUp(t, env.Kafka, group, topic, 2*time.Minute)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var d float64
		for _, table := range []string{"eligibility_history", "corrections", "account_events", "anomalies"} {
			d += testutil.ToFloat64(m.duplicates.WithLabelValues(table))
		}
		return d
	}
	if d := run("first"); d != 0 {
		t.Fatalf("first delivery counted %v duplicates", d)
	}
	for topic, table := range map[string]string{env.Topics.Eligibility: "eligibility_history", env.Topics.Corrections: "corrections",
		env.Topics.AccountEvents: "account_events", env.Topics.Anomalies: "anomalies"} {
		var n, distinct int
		if err := c.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT kafka_offset::text||kafka_partition::text) FROM "+table).Scan(&n, &distinct); err != nil {
			t.Fatal(err)
		}
		if n != perTopic[topic] || distinct != n {
			t.Errorf("%s: %d rows (%d distinct positions), want %d", table, n, distinct, perTopic[topic])
		}
	}
	before := currentTable(t, c)
	if d := run("second"); d != float64(len(evs)) {
		t.Fatalf("second group: %v duplicates, want every event (%d)", d, len(evs))
	}
	if after := currentTable(t, c); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("delivering every event again changed eligibility_current")
	}
}
