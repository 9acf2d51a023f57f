package main

// End-to-end tests of the sinks as users run them: `usagestream run` with
// sinks configured, `usagestream sink NAME` as its own process, killed with
// SIGKILL and started again, against a real PostgreSQL server
// (scripts/test.d/20-postgres.sh).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/sinks/postgres"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
	"github.com/usagestream/usagestream/sinks/webhook"
)

// startServing starts a long-running command and waits for its /readyz.
func startServing(t *testing.T, env []string, httpPort int, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd, &se
			}
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			cmd.Process.Kill()
			t.Fatalf("%s did not become ready:\n%s", args[0], se.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stopServing(t *testing.T, cmd *exec.Cmd, se *bytes.Buffer) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("did not stop cleanly on SIGTERM: %v\n%s", err, se.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("did not stop on SIGTERM\n%s", se.String())
	}
}

func waitSinkCaughtUp(t *testing.T, kc kafkaconf.Config, name string) {
	t.Helper()
	for _, topic := range sink.EventTopics(kc.TopicPrefix) {
		kafkatest.WaitCaughtUp(t, kc, sink.GroupFor(kc.TopicPrefix, name), topic, 3*time.Minute)
	}
}

// topicEvents is what the event topics hold, decoded, in partition and
// offset order.
type topicEvents map[string][]map[string]any

func readEvents(t *testing.T, kc kafkaconf.Config) topicEvents {
	t.Helper()
	out := topicEvents{}
	for _, topic := range sink.EventTopics(kc.TopicPrefix) {
		recs := readToEnd(t, kc, topic)
		out[topic] = kafkatest.Decode(t, kc, recs)
		for i, m := range out[topic] {
			m["_ts"] = recs[i].Timestamp
		}
	}
	return out
}

// readToEnd reads every committed record of topic up to its end, however
// slowly the broker answers (the machine is shared): it stops on reaching
// the end of each partition, not on an idle poll.
func readToEnd(t *testing.T, kc kafkaconf.Config, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kc.NewClient(ctx, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts})
	byPart := map[int32][]*kgo.Record{}
	reached := map[int32]bool{}
	for len(reached) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %d of %d partitions read to their end", topic, len(reached), len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				byPart[r.Partition] = append(byPart[r.Partition], r)
			}
			if r.Offset >= want[r.Partition]-1 {
				reached[r.Partition] = true
			}
		})
	}
	var out []*kgo.Record
	for p := int32(0); len(byPart) > 0; p++ {
		out = append(out, byPart[p]...)
		delete(byPart, p)
	}
	return out
}

var eventTables = map[string]func(n topics.Names) string{
	"eligibility_history": func(n topics.Names) string { return n.Eligibility },
	"corrections":         func(n topics.Names) string { return n.Corrections },
	"account_events":      func(n topics.Names) string { return n.AccountEvents },
	"anomalies":           func(n topics.Names) string { return n.Anomalies },
}

// checkDatabase compares the database with the topics: every event once in
// its table, and the current eligibility of each subject its newest event.
func checkDatabase(t *testing.T, url string, kc kafkaconf.Config, evs topicEvents) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	names := topics.NewNames(kc.TopicPrefix)
	for table, topic := range eventTables {
		want := map[string]bool{}
		for _, m := range evs[topic(names)] {
			want[m["event_id"].(string)] = true
		}
		rows, err := c.Query(ctx, "SELECT event_id FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != len(want) {
			t.Fatalf("%s: %d rows, the topic has %d events", table, len(ids), len(want))
		}
		for _, id := range ids {
			if !want[id] {
				t.Fatalf("%s: row %s is no event of the topic", table, id)
			}
		}
	}
	type cur struct {
		id       string
		eligible bool
	}
	last := map[string]cur{}
	for _, m := range evs[names.Eligibility] {
		last[m["customer_id"].(string)+"|"+m["premise_id"].(string)+"|"+m["program"].(string)] = cur{m["event_id"].(string), m["eligible"].(bool)}
	}
	rows, err := c.Query(ctx, "SELECT customer_id||'|'||premise_id||'|'||program, event_id, eligible FROM eligibility_current")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var k string
		var g cur
		if err := rows.Scan(&k, &g.id, &g.eligible); err != nil {
			t.Fatal(err)
		}
		if last[k] != g {
			t.Fatalf("eligibility_current %s = %+v, newest event is %+v", k, g, last[k])
		}
		n++
	}
	if n != len(last) {
		t.Fatalf("eligibility_current has %d subjects, the topic %d", n, len(last))
	}
}

// TestSinksFromABillingFile: a billing file ingested into `usagestream run`
// with the PostgreSQL and JSON Lines sinks configured ends as rows and lines
// matching the event topics; `usagestream sink postgres` (configured by its
// environment variable) fills a second database the same way; the README's
// query finds who became ineligible, with reasons and file lines.
func TestSinksFromABillingFile(t *testing.T) {
	env := kafkatest.Start(t)
	db1, db2 := sinktest.Postgres(t), sinktest.Postgres(t)
	jsonDir := t.TempDir()
	anomalies, _ := gen.ParseAnomalies("all=1")
	files := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 400, Months: 14, Seed: 21, Anomalies: anomalies})

	hport := freePort(t)
	run, se := startServing(t, nil, hport, append([]string{"run", "--data-dir", t.TempDir(), "--http-addr", fmt.Sprintf("127.0.0.1:%d", hport),
		"--partitions", "3", "--postgres-url", db1, "--jsonl-dir", jsonDir}, connArgs(env.Kafka)...)...)
	if r := runCLI(t, nil, append(append([]string{"ingest"}, connArgs(env.Kafka)...), files.Files...)...); r.code != exitRejected && r.code != 0 {
		t.Fatalf("ingest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := pipeline.WaitCaughtUp(ctx, env.Kafka); err != nil {
		t.Fatal(err)
	}
	waitSinkCaughtUp(t, env.Kafka, "postgres")
	waitSinkCaughtUp(t, env.Kafka, "jsonl")
	// The metrics of run carry the sinks'.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", hport))
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	stopServing(t, run, se)
	for _, m := range []string{`usagestream_sink_events_total{sink="postgres"`, `usagestream_sink_events_total{sink="jsonl"`, "usagestream_sink_postgres_rows_inserted_total"} {
		if !strings.Contains(metrics.String(), m) {
			t.Fatalf("run's /metrics lacks %s", m)
		}
	}

	evs := readEvents(t, env.Kafka)
	names := topics.NewNames(env.Kafka.TopicPrefix)
	if len(evs[names.Eligibility]) == 0 || len(evs[names.Anomalies]) == 0 || len(evs[names.AccountEvents]) == 0 || len(evs[names.Corrections]) == 0 {
		t.Fatalf("the generated file should give events of every kind: %d eligibility, %d anomalies, %d account events, %d corrections",
			len(evs[names.Eligibility]), len(evs[names.Anomalies]), len(evs[names.AccountEvents]), len(evs[names.Corrections]))
	}
	checkDatabase(t, db1, env.Kafka, evs)
	checkJSONL(t, jsonDir, evs, true)

	// The same through `usagestream sink postgres`, configured by environment.
	sport := freePort(t)
	sinkCmd, sse := startServing(t, []string{"USAGESTREAM_POSTGRES_URL=" + db2}, sport,
		append([]string{"sink", "postgres", "--http-addr", fmt.Sprintf("127.0.0.1:%d", sport), "--group", "second"}, connArgs(env.Kafka)...)...)
	for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
		kafkatest.WaitCaughtUp(t, env.Kafka, "second", topic, 3*time.Minute)
	}
	stopServing(t, sinkCmd, sse)
	checkDatabase(t, db2, env.Kafka, evs)
	if strings.Contains(sse.String(), db2) {
		t.Fatal("the sink logged the database URL")
	}

	// The README query, for today: the processors emitted every event today.
	c, err := pgx.Connect(ctx, db1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	c.Exec(ctx, "SET TIME ZONE 'UTC'")
	rows, err := c.Query(ctx, postgres.BecameIneligibleOn, time.Now().UTC().Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var cust, prem, prog, reason, rule string
		var at time.Time
		var since time.Time
		var sp, file *string
		var line *int64
		if err := rows.Scan(&cust, &prem, &prog, &at, &reason, &rule, &since, &sp, &file, &line); err != nil {
			t.Fatal(err)
		}
		if rule == "" || reason == "" {
			t.Fatalf("a reason without code or rule: %s %s %s", cust, prem, prog)
		}
		got[cust+"|"+prem+"|"+prog]++
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	want := map[string]int{}
	wasEligible := map[string]bool{}
	for _, m := range evs[names.Eligibility] {
		k := m["customer_id"].(string) + "|" + m["premise_id"].(string) + "|" + m["program"].(string)
		el := m["eligible"].(bool)
		prev, seen := wasEligible[k]
		if !el && (!seen || prev) {
			want[k] += len(m["reasons"].([]any))
		}
		wasEligible[k] = el
	}
	if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("README query: %d subjects became ineligible by the query, %d by the events\n got %v\nwant %v", len(got), len(want), got, want)
	}
	t.Logf("%d eligibility events, %d subjects became ineligible today", len(evs[names.Eligibility]), len(got))
}

// checkJSONL: every event of the topics is one line, nothing else is there,
// and every line is whole.
func checkJSONL(t *testing.T, dir string, evs topicEvents, finished bool) {
	t.Helper()
	seen := map[string]int{}
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	slices.Sort(files)
	for _, p := range files {
		if finished && strings.HasSuffix(p, ".part") {
			t.Fatalf("%s: a stopped sink leaves no unfinished file", p)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l struct {
				Topic string `json:"topic"`
				Value struct {
					EventID string `json:"event_id"`
				} `json:"value"`
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Value.EventID == "" {
				t.Fatalf("%s: not a whole event line: %q", p, sc.Text())
			}
			seen[l.Topic+" "+l.Value.EventID]++
		}
		f.Close()
	}
	n := 0
	for topic, ms := range evs {
		for _, m := range ms {
			if k := topic + " " + m["event_id"].(string); seen[k] != 1 {
				t.Fatalf("%s: %d lines, want 1", k, seen[k])
			}
			n++
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events in the files, %d on the topics", len(seen), n)
	}
}

// committed is the sum of the group's committed offsets.
func committed(t *testing.T, kc kafkaconf.Config, group string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return 0 // the group does not exist yet
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	return sum
}

// killRepeatedly runs a sink command ten times, each time SIGKILLing it at a
// random moment soon after it has committed a first batch (so mid-stream), and
// finally lets one run until the group has caught up. The instances share
// a static member id, as a restarted container would, so each restart gets
// the partitions back at once.
func killRepeatedly(t *testing.T, kc kafkaconf.Config, name string, env []string, args []string) (kills int, logs string) {
	t.Helper()
	group := sink.GroupFor(kc.TopicPrefix, name)
	args = append(args, "--instance-id", "killed-"+name)
	rng := rand.New(rand.NewPCG(8, uint64(len(name))))
	var all strings.Builder
	for attempt := 0; attempt < 10; attempt++ {
		before := committed(t, kc, group)
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), env...)
		var se bytes.Buffer
		cmd.Stderr = &se
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); committed(t, kc, group) == before && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if committed(t, kc, group) > before {
			time.Sleep(time.Duration(rng.IntN(80)) * time.Millisecond)
			kills++
		} else {
			t.Logf("attempt %d: no batch committed within 20 s:\n%s", attempt, se.String())
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		all.WriteString(se.String())
	}
	port := freePort(t)
	cmd, se := startServing(t, env, port, append(args, "--http-addr", fmt.Sprintf("127.0.0.1:%d", port))...)
	waitSinkCaughtUp(t, kc, name)
	stopServing(t, cmd, se)
	all.WriteString(se.String())
	return kills, all.String()
}

// TestSinkPostgresKilledMidBatch: `usagestream sink postgres` killed with
// SIGKILL ten times while it writes small batches, then run to the end:
// every event is in its table exactly once, and the current eligibility is
// each subject's newest event.
func TestSinkPostgresKilledMidBatch(t *testing.T) {
	env := kafkatest.Start(t)
	db := sinktest.Postgres(t)
	sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 12), 60000)
	kills, logs := killRepeatedly(t, env.Kafka, "postgres", []string{"USAGESTREAM_POSTGRES_URL=" + db, "USAGESTREAM_LOG_FORMAT=json"},
		append([]string{"sink", "postgres", "--batch", "200"}, connArgs(env.Kafka)...))
	if kills < 8 {
		t.Fatalf("only %d kills landed while the sink was consuming; the test proves nothing\n%s", kills, logs)
	}
	checkDatabase(t, db, env.Kafka, readEvents(t, env.Kafka))
	t.Logf("%d SIGKILLs while consuming; %d restarts found events already written (delivered again)", kills,
		strings.Count(logs, "already in the database"))
}

// TestSinkJSONLKilledMidBatch: the same for `usagestream sink jsonl`, with
// small files: every event is one whole line, exactly once.
func TestSinkJSONLKilledMidBatch(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 13), 60000)
	kills, logs := killRepeatedly(t, env.Kafka, "jsonl", []string{"USAGESTREAM_JSONL_DIR=" + dir, "USAGESTREAM_LOG_FORMAT=json"},
		append([]string{"sink", "jsonl", "--batch", "100", "--jsonl-max-bytes", "300000"}, connArgs(env.Kafka)...))
	if kills < 8 {
		t.Fatalf("only %d kills landed while the sink was consuming\n%s", kills, logs)
	}
	checkJSONL(t, dir, readEvents(t, env.Kafka), true)
	t.Logf("%d SIGKILLs while consuming; %d restarts skipped events already in the files, %d cut a half line", kills,
		strings.Count(logs, "already in the files"), strings.Count(logs, "half-written"))
}

// TestSinkCommandErrors: a sink without its destination, or with a
// database that does not answer, says what to set and exits 1.
func TestSinkCommandErrors(t *testing.T) {
	env := kafkatest.Start(t)
	r := runCLI(t, []string{"USAGESTREAM_POSTGRES_URL="}, append([]string{"sink", "postgres", "--http-addr", "127.0.0.1:0"}, connArgs(env.Kafka)...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "USAGESTREAM_POSTGRES_URL") {
		t.Fatalf("no URL: exit %d\n%s", r.code, r.stderr)
	}
	r = runCLI(t, []string{fmt.Sprintf("USAGESTREAM_POSTGRES_URL=postgres://u:hunter2@127.0.0.1:%d/x?connect_timeout=3", freePort(t))},
		append([]string{"sink", "postgres", "--http-addr", "127.0.0.1:0"}, connArgs(env.Kafka)...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "is it running") || strings.Contains(r.stderr, "hunter2") {
		t.Fatalf("unreachable database: exit %d\n%s", r.code, r.stderr)
	}
	r = runCLI(t, []string{"USAGESTREAM_WEBHOOK_URL=http://127.0.0.1:1/hook", "USAGESTREAM_WEBHOOK_SECRET="},
		append([]string{"sink", "webhook", "--http-addr", "127.0.0.1:0"}, connArgs(env.Kafka)...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "USAGESTREAM_WEBHOOK_SECRET") {
		t.Fatalf("webhook without a secret: exit %d\n%s", r.code, r.stderr)
	}
}

// TestSinkWebhookCommand: `usagestream sink webhook`, configured by its
// environment variables, POSTs signed batches to a receiver that fails its
// first attempts; every event arrives, and a receiver that refuses (400)
// sends the batches to the dead-letter topic instead.
func TestSinkWebhookCommand(t *testing.T) {
	env := kafkatest.Start(t)
	evs := sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 14), 1500)
	const secret = "e2e-secret"
	var mu sync.Mutex
	requests, refuse := 0, false
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header.Get("X-Usagestream-Signature"), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		requests++
		switch {
		case refuse:
			w.WriteHeader(http.StatusBadRequest)
			return
		case requests <= 3:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var b struct {
			Events []struct {
				Topic string `json:"topic"`
				Event struct {
					EventID string `json:"event_id"`
				} `json:"event"`
			} `json:"events"`
		}
		json.Unmarshal(body, &b)
		for _, e := range b.Events {
			got[e.Topic+" "+e.Event.EventID]++
		}
	}))
	defer srv.Close()
	port := freePort(t)
	cmdEnv := []string{"USAGESTREAM_WEBHOOK_URL=" + srv.URL, "USAGESTREAM_WEBHOOK_SECRET=" + secret}
	cmd, se := startServing(t, cmdEnv, port, append([]string{"sink", "webhook", "--http-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--webhook-retry-for", "5s"}, connArgs(env.Kafka)...)...)
	waitSinkCaughtUp(t, env.Kafka, "webhook")
	mu.Lock()
	for _, e := range evs {
		if got[e.Topic+" "+e.EventID] == 0 {
			t.Fatalf("%s %s never arrived (%d requests)", e.Topic, e.EventID, requests)
		}
	}
	refuse = true
	mu.Unlock()
	more := sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 15), 50)
	waitSinkCaughtUp(t, env.Kafka, "webhook")
	stopServing(t, cmd, se)
	dead := readToEnd(t, env.Kafka, webhook.DeadLetterTopic(env.Kafka.TopicPrefix))
	if len(dead) != len(more) {
		t.Fatalf("%d dead letters, want the %d refused events\n%s", len(dead), len(more), se.String())
	}
	if strings.Contains(se.String(), secret) {
		t.Fatal("the secret appears in the logs")
	}
}
