package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/records"
)

// hourly renders the hourly interval lines of local days at -0400.
func hourly(sp string, value float64, days ...string) []string {
	var out []string
	for _, day := range days {
		d, _ := time.Parse("20060102", day)
		for h := 1; h <= 24; h++ {
			date, hh := day, h
			if h == 24 {
				date, hh = d.AddDate(0, 0, 1).Format("20060102"), 0
			}
			out = append(out, fmt.Sprintf("%s\t%v\t%s\t%02d00\tKWH\tA\t-0400\tE\t", sp, value, date, hh))
		}
	}
	return out
}

func writeFile(t *testing.T, dir, name, header string, lines []string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(header+"\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func billRow(sp, dateTo string, duration int, value float64) string {
	vals := map[string]string{"customer_id": "C-" + sp, "premise_id": "P-" + sp, "account_id": "A-" + sp, "active_date": "20240101",
		"service_point_id": sp, "service_type": "E", "rate_code": "R1", "usage_value": fmt.Sprint(value),
		"date_to": dateTo, "duration": fmt.Sprint(duration), "is_estimate": "A"}
	parts := make([]string, len(records.BillingColumns()))
	for i, c := range records.BillingColumns() {
		parts[i] = vals[c.Name]
	}
	return strings.Join(parts, "\t")
}

// runIntervalStage runs the interval stage alone, with the wall clock now,
// until it has caught up on both inputs and done() holds (nil: at once).
func runIntervalStage(t testing.TB, kc kafkaconf.Config, dir string, now func() time.Time, done func() bool) {
	t.Helper()
	runIntervalStageWith(t, rules.DefaultPolicy(), kc, dir, now, done)
}

// runIntervalStageWith is runIntervalStage under policy pol.
func runIntervalStageWith(t testing.TB, pol rules.Policy, kc kafkaconf.Config, dir string, now func() time.Time, done func() bool) {
	t.Helper()
	p, err := New(context.Background(), kc, pol)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		errs <- runtime.Run(ctx, runtime.Config{Kafka: kc, DataDir: dir, Logger: testLogger(t), Now: now, WallClockTick: 50 * time.Millisecond}, p.IntervalStage())
	}()
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	names := topics.NewNames(kc.TopicPrefix)
	for _, topic := range []string{names.Billing, names.Intervals} {
		if err := consume.WaitCaughtUp(wctx, kc, runtime.GroupName(kc.TopicPrefix, StageInterval), topic); err != nil {
			cancel()
			t.Fatalf("waiting for the interval stage on %s: %v (stage: %v)", topic, err, <-errs)
		}
	}
	for done != nil && !done() {
		select {
		case <-wctx.Done():
			cancel()
			t.Fatalf("the interval stage did not get there: %v", <-errs)
		case err := <-errs:
			t.Fatalf("the interval stage stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func decodedEvents(t *testing.T, env *kafkatest.Env, topic string) []string {
	var out []string
	for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, topic)) {
		cause := m["cause"].(map[string]any)
		line := ""
		if l, ok := cause["line"].(map[string]any); ok {
			line = fmt.Sprint(l["long"])
		}
		switch topic {
		case env.Topics.Corrections:
			out = append(out, fmt.Sprintf("%s %s %s %v->%v end=%v line=%s", m["service_point_id"], m["kind"], m["rule"], m["old_value"], m["new_value"],
				m["interval_end"].(map[string]any)["long.timestamp-millis"].(time.Time).UTC().Format("2006-01-02T15:04"), line))
		default:
			out = append(out, fmt.Sprintf("%s %s %s cleared=%v line=%s", m["service_point_id"], m["code"], m["rule"], m["cleared"], line))
		}
	}
	slices.Sort(out)
	return out
}

// TestIntervalStage: billing and interval files through ingest and the
// interval stage on the runtime: a corrected interval (I2), whole days
// missing (I3), a bill that the intervals do not add up to (I6) and one they
// do, and, with the wall clock 73 hours later, stale feeds (I4).
func TestIntervalStage(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	days := []string{"20240601", "20240602", "20240603"}
	var first []string
	first = append(first, hourly("SP1", 1, days...)...)
	first = append(first, hourly("SP2", 1, days...)...)
	first = append(first, hourly("SP3", 0.5, "20240601", "20240604")...)
	files := []string{
		writeFile(t, dir, "opwr_gec_res_v1-19-0_full_20240604000000.tsv", records.HeaderLine(records.LayoutFull),
			[]string{billRow("SP1", "20240603", 3, 72), billRow("SP2", "20240603", 3, 100)}),
		writeFile(t, dir, "opwr_gec_res_v1-19-0_interval60_20240605000000.tsv", strings.Join(records.IntervalColumns(), "\t"), first),
		writeFile(t, dir, "opwr_gec_res_v1-19-0_interval60_20240606000000.tsv", strings.Join(records.IntervalColumns(), "\t"),
			[]string{"SP1\t1.5\t20240601\t0100\tKWH\tA\t-0400\tE\t", "SP1\t1\t20240601\t0200\tKWH\tA\t-0400\tE\t"}),
	}
	in, err := ingest.New(context.Background(), env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	runIntervalStage(t, env.Kafka, state, time.Now, nil)

	want := []string{"SP1 INTERVAL I2 1->1.5 end=2024-06-01T05:00 line=2"}
	if got := decodedEvents(t, env, env.Topics.Corrections); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("corrections:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The mismatch is found by whichever came last of the bill (billing line
	// 3) and SP2's last interval (line 145): the two topics interleave freely.
	want = []string{
		"SP2 BILLING_INTERVAL_MISMATCH I6 cleared=false line=N",
		"SP3 INTERVAL_GAP_DAYS I3 cleared=false line=170",
	}
	got := decodedEvents(t, env, env.Topics.Anomalies)
	for i, e := range got {
		if strings.HasPrefix(e, "SP2 BILLING") && (strings.HasSuffix(e, "line=3") || strings.HasSuffix(e, "line=145")) {
			got[i] = e[:strings.LastIndex(e, "=")+1] + "N"
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("anomalies:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// 73 hours later by the wall clock, with no new reads: every feed is
	// stale, once, even across a restart of the stage.
	later := func() time.Time { return time.Now().Add(73 * time.Hour) }
	staleCount := func() int {
		n := 0
		for _, e := range decodedEvents(t, env, env.Topics.Anomalies) {
			if strings.Contains(e, "STALE_FEED I4 cleared=false") {
				n++
			}
		}
		return n
	}
	runIntervalStage(t, env.Kafka, state, later, func() bool { return staleCount() >= 3 })
	runIntervalStage(t, env.Kafka, state, later, nil)
	if n, all := staleCount(), len(decodedEvents(t, env, env.Topics.Anomalies)); n != 3 || all != 5 {
		t.Fatalf("%d stale feeds in %d anomalies, want 3 in 5", n, all)
	}
}

// TestIntervalStageUsesPolicyFile: the interval settings of a policy file
// reach the stage: with `intervals: {stale_after: 2h}` a feed is stale 3
// hours after its last read (by the default 72h it would not be, as
// TestIntervalStage shows), and the message gives the configured duration.
func TestIntervalStageUsesPolicyFile(t *testing.T) {
	pol, err := rules.ParsePolicy([]byte("intervals:\n  stale_after: 2h\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := kafkatest.Start(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "opwr_gec_res_v1-19-0_interval60_20240605000000.tsv", strings.Join(records.IntervalColumns(), "\t"), hourly("SP1", 1, "20240601"))
	in, err := ingest.New(context.Background(), env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(context.Background(), []string{file}); err != nil {
		t.Fatal(err)
	}
	stale := func() []map[string]any {
		var out []map[string]any
		for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Anomalies)) {
			if m["code"] == "STALE_FEED" {
				out = append(out, m)
			}
		}
		return out
	}
	later := func() time.Time { return time.Now().Add(3 * time.Hour) }
	runIntervalStageWith(t, pol, env.Kafka, t.TempDir(), later, func() bool { return len(stale()) > 0 })
	got := stale()
	if len(got) != 1 || got[0]["service_point_id"] != "SP1" || !strings.Contains(fmt.Sprint(got[0]["message"]), "more than 2h0m0s ago") {
		t.Fatalf("stale feeds: %v", got)
	}
}

// TestIntervalStageRestoresFromChangelog: the stage stopped between two
// files and restarted on an empty disk (its state rebuilt from the
// changelog) emits exactly what one uninterrupted run emits, ids included.
func TestIntervalStageRestoresFromChangelog(t *testing.T) {
	dir := t.TempDir()
	hdr := strings.Join(records.IntervalColumns(), "\t")
	var first []string
	first = append(first, hourly("SP1", 1, "20240601", "20240602")...)
	first = append(first, hourly("SP2", 0, "20240601", "20240602")...) // zeros: a 24-hour run (I7)
	first = first[:len(first)-5]                                       // SP2's last day incomplete
	second := append(hourly("SP1", 2, "20240602"), hourly("SP2", 1, "20240605")...)
	files := []string{
		writeFile(t, dir, "opwr_gec_res_v1-19-0_interval60_20240603000000.tsv", hdr, first),
		writeFile(t, dir, "opwr_gec_res_v1-19-0_interval60_20240606000000.tsv", hdr, second),
	}
	ingestFiles := func(env *kafkatest.Env, paths ...string) {
		in, err := ingest.New(context.Background(), env.Kafka, ingest.Config{Topics: env.Topics})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.Run(context.Background(), paths); err != nil {
			t.Fatal(err)
		}
	}
	emitted := func(env *kafkatest.Env) []string {
		var out []string
		for _, topic := range []string{env.Topics.Corrections, env.Topics.Anomalies} {
			for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, topic)) {
				// The topic names in the cause and the event id carry the
				// test's prefix, which differs per run on a real cluster.
				delete(m, "cause")
				m["event_id"] = strings.TrimPrefix(m["event_id"].(string), env.Kafka.TopicPrefix)
				b, _ := json.Marshal(m)
				out = append(out, string(b))
			}
		}
		slices.Sort(out)
		return out
	}

	once := kafkatest.Start(t)
	ingestFiles(once, files...)
	runIntervalStage(t, once.Kafka, t.TempDir(), time.Now, nil)
	want := emitted(once)

	split := kafkatest.Start(t)
	ingestFiles(split, files[0])
	runIntervalStage(t, split.Kafka, t.TempDir(), time.Now, nil)
	ingestFiles(split, files[1])
	runIntervalStage(t, split.Kafka, t.TempDir(), time.Now, nil) // a new, empty disk
	got := emitted(split)

	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after a restore:\n%s\nuninterrupted:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var codes []string
	for _, e := range want {
		var m map[string]any
		json.Unmarshal([]byte(e), &m)
		if c, ok := m["code"].(string); ok {
			codes = append(codes, m["service_point_id"].(string)+" "+c)
		} else {
			codes = append(codes, m["service_point_id"].(string)+" "+m["kind"].(string))
		}
	}
	slices.Sort(codes)
	// 24 corrections of SP1's second day, SP2's zero run (raised, then
	// cleared by the reads of the 5th), its incomplete day and the two days
	// missing before the 5th.
	if len(want) != 28 || !strings.Contains(strings.Join(codes, ","), "SP2 INTERVAL_GAP,SP2 INTERVAL_GAP_DAYS,SP2 INTERVAL_ZERO_RUN,SP2 INTERVAL_ZERO_RUN") {
		t.Fatalf("%d events: %v", len(want), codes)
	}
}

// TestIntervalHistoryForStage2: the months of history of a service point
// with a known customer go to stage 2's input, keyed by customer (I5).
func TestIntervalHistoryForStage2(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	var daily []string
	start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := 1; d <= 400; d++ { // the read ending at 0000 of day d covers day d-1
		daily = append(daily, fmt.Sprintf("SP1\t10\t%s\t0000\tKWH\tA\t-0500\tE\t", start.AddDate(0, 0, d).Format("20060102")))
	}
	files := []string{
		writeFile(t, dir, "opwr_gec_res_v1-19-0_full_20230201000000.tsv", records.HeaderLine(records.LayoutFull), []string{billRow("SP1", "20230131", 31, 310)}),
		writeFile(t, dir, "opwr_gec_res_v1-19-0_interval1440_20240205000000.tsv", strings.Join(records.IntervalColumns(), "\t"), daily),
	}
	in, err := ingest.New(context.Background(), env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	runIntervalStage(t, env.Kafka, t.TempDir(), time.Now, nil)
	var months []int
	for _, r := range kafkatest.ReadAll(t, env.Kafka, env.Topics.IntervalHistory) {
		var h intervalHistory
		if err := h.decode(r.Value); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != "C-SP1" || h.History.PremiseID != "P-SP1" || h.Utility != "gec" {
			t.Fatalf("record %s %+v", r.Key, h)
		}
		months = append(months, h.History.Months)
	}
	// The bill may come before or after the reads: the history is sent from
	// the first month the customer is known.
	if len(months) == 0 || months[len(months)-1] != 13 {
		t.Fatalf("months sent: %v", months)
	}
}
