package replay

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"golang.org/x/sync/errgroup"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/topology"
	"github.com/usagestream/usagestream/producers/adapter"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/httpin"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/records"
)

// TestFinalEventsDependOnTheDataOnly (issue 14): the generated input with
// one of every anomaly kind (an S1 replacement among them) and interval
// reads for its electric service points (a year and more of daily reads in
// one file, more days for some of them in a second, as a live feed adds
// them), run through every stage on 1, 3 and 6 partitions, and through a
// shadow replay of every stage with the same policy, ends with the same
// final events: per (customer, premise, program) the eligibility and every
// reason with its dates; per (service point, anomaly, effective date) whether
// it is open and until when; the corrections.
func TestFinalEventsDependOnTheDataOnly(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	kinds := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		kinds[k] = 1
	}
	now := time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
	res, err := gen.Generate(dir, gen.Config{ServicePoints: 80, Months: 14, Seed: 7, Now: now, Anomalies: kinds})
	if err != nil {
		t.Fatal(err)
	}
	// Reads for every electric service point the bills name, the S1
	// replacement's included (the interval generator numbers them as the
	// billing generator does).
	electric := 0
	err = ingest.EachRow(res.Files, billing.Options{}, func(_ string, row *records.BillingRow) error {
		if n, ok := strings.CutPrefix(row.ServicePointID, "SP-E-"); ok {
			if v, err := strconv.Atoi(n); err == nil {
				electric = max(electric, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	first := now.AddDate(-1, -2, 0)
	// Hourly reads for the first three, enough for I5's 13 months; the
	// daily reads that follow for them are of another length and not
	// counted (I1).
	hourly, _, err := gen.GenerateIntervals(dir, gen.IntervalConfig{ServicePoints: 3, Minutes: 60, Days: 420,
		Start: dates.FromTime(first), Seed: 9, Now: now.Add(30 * time.Minute), Compression: "gzip"})
	if err != nil {
		t.Fatal(err)
	}
	iv, _, err := gen.GenerateIntervals(dir, gen.IntervalConfig{ServicePoints: electric, Minutes: 1440, Days: 400,
		Start: dates.FromTime(first), Seed: 7, Now: now.Add(time.Hour), Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	more, _, err := gen.GenerateIntervals(dir, gen.IntervalConfig{ServicePoints: electric / 3, Minutes: 1440, Days: 20,
		Start: dates.FromTime(first.AddDate(0, 0, 400)), Seed: 8, Now: now.Add(2 * time.Hour), Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	// And reads posted as NDJSON (POST /v1/intervals) for the ten first,
	// after the files' days.
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	var ndjson bytes.Buffer
	for sp := 1; sp <= 10; sp++ {
		for d := 420; d < 426; d++ {
			end := time.Date(first.Year(), first.Month(), first.Day()+d+1, 0, 0, 0, 0, loc)
			fmt.Fprintf(&ndjson, `{"service_point_id":"SP-E-%08d","interval_end":%q,"minutes":1440,"value":%d.5,"units":"KWH","is_estimate":"A"}`+"\n",
				sp, end.Format(time.RFC3339), 20+sp+d%7)
		}
	}
	bills, reads := inputs{files: res.Files}, inputs{files: []string{hourly, iv, more}, ndjson: ndjson.Bytes()}

	// Each partition count with another interleaving of the inputs: every
	// bill before any read, every read before any bill, and both there
	// before the stages start.
	var want finalState
	var wantFrom string
	for _, run := range []struct {
		parts   int32
		batches []inputs
		name    string
	}{
		{1, []inputs{bills, reads}, "1 partition, bills first"},
		{3, []inputs{reads, bills}, "3 partitions, reads first"},
		{6, []inputs{{files: append(slices.Clone(bills.files), reads.files...), ndjson: reads.ndjson}}, "6 partitions"},
	} {
		kc := env.Kafka
		kc.TopicPrefix = fmt.Sprintf("p%d.", run.parts)
		got := runEveryStage(t, kc, run.parts, run.batches)
		if want.empty() {
			want, wantFrom = got, run.name
			continue
		}
		want.compare(t, wantFrom, got, run.name)
		if run.parts != 6 {
			continue
		}
		// A shadow replay of every stage with the same policy, on the
		// instance the live processors ran on.
		cl, err := kc.NewClient(ctx)
		if err != nil {
			t.Fatal(err)
		}
		adm := kadm.NewClient(cl)
		plan, err := NewPlan(ctx, adm, Options{Kafka: kc, Shadow: "same", State: Recompute, Policy: rules.DefaultPolicy(),
			Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := plan.Apply(ctx, adm); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		if _, err := plan.Run(ctx, RunOptions{Timeout: 2 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		shadow := readFinal(t, kc, topics.NewNames(ShadowPrefix(kc.TopicPrefix, "same")))
		if n := len(kafkatest.ReadAll(t, kc, topology.New(ShadowPrefix(kc.TopicPrefix, "same")).MustStage(topology.Interval).Quarantine)); n > 0 {
			t.Errorf("the shadow's interval stage quarantined %d records", n)
		}
		got.compare(t, run.name, shadow, "the shadow replay")
	}
	// The input exercises what the comparison is about.
	for _, needs := range []string{"eligible=false", "eligible=true", "SERVICE_POINT_CHANGED/S1", "INSUFFICIENT_HISTORY/I5", "NO_DUAL_FUEL/S2", "PROPERTY_MANAGER/C2", "BLOCKED_FOR_COMMUNICATIONS"} {
		if !slices.ContainsFunc(slices.Collect(maps.Values(want.eligibility)), func(v string) bool { return strings.Contains(v, needs) }) {
			t.Errorf("no final eligibility with %s", needs)
		}
	}
	if !slices.ContainsFunc(slices.Collect(maps.Keys(want.eligibility)), func(k string) bool {
		return strings.HasSuffix(k, " disaggregation") && strings.HasPrefix(want.eligibility[k], "eligible=true")
	}) {
		t.Error("no customer eligible for disaggregation: the interval history (I5) never reached eligibility")
	}
	t.Logf("final state: %d subject-programs, %d anomalies, %d corrections", len(want.eligibility), len(want.anomalies), len(want.corrections))
}

// inputs are files to ingest and NDJSON reads to post.
type inputs struct {
	files  []string
	ndjson []byte
}

// send ingests the files with in, then posts the NDJSON reads to the
// interval endpoint (producers/httpin) under kc's prefix.
func (b inputs) send(ctx context.Context, kc kafkaconf.Config, in *ingest.Ingester) error {
	if _, err := in.Run(ctx, b.files); err != nil {
		return err
	}
	if len(b.ndjson) == 0 {
		return nil
	}
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return err
	}
	opts, err := kc.Opts()
	if err != nil {
		return err
	}
	c, err := adapter.New(ctx, rc, adapter.Config{Utility: "gec", Name: "http", Kind: adapter.KindHTTP, TopicPrefix: kc.TopicPrefix}, opts...)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	w := httptest.NewRecorder()
	httpin.Handler(c, httpin.Config{}).ServeHTTP(w, httptest.NewRequest(http.MethodPost, httpin.Path, bytes.NewReader(b.ndjson)))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"rejected":0,"failed":0`) {
		return fmt.Errorf("POST %s: %d %s", httpin.Path, w.Code, w.Body.String())
	}
	return nil
}

// runEveryStage creates the topology's topics with parts partitions under
// kc's prefix, ingests the first batch of files, starts every stage, and
// ingests each further batch once the stages caught up with the one before;
// it returns the final state their events leave.
func runEveryStage(t *testing.T, kc kafkaconf.Config, parts int32, batches []inputs) finalState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = topics.Ensure(ctx, kadm.NewClient(cl), topology.New(kc.TopicPrefix).Specs(), parts, 1)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	names := topics.NewNames(kc.TopicPrefix)
	in, err := ingest.New(ctx, kc, ingest.Config{Topics: names})
	if err != nil {
		t.Fatal(err)
	}
	if err := batches[0].send(ctx, kc, in); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(ctx, kc, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	eg, ectx := errgroup.WithContext(rctx)
	dir := t.TempDir()
	for _, st := range p.Stages() {
		eg.Go(func() error { return runtime.Run(ectx, runtime.Config{Kafka: kc, DataDir: dir}, st) })
	}
	eg.Go(func() error {
		defer stop()
		for _, b := range batches[1:] {
			if err := pipeline.WaitCaughtUp(ectx, kc); err != nil {
				return err
			}
			if err := b.send(ectx, kc, in); err != nil {
				return err
			}
		}
		return pipeline.WaitCaughtUp(ectx, kc)
	})
	if err := eg.Wait(); err != nil && ctx.Err() == nil && rctx.Err() == nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%d partitions: the stages did not catch up in time", parts)
	}
	return readFinal(t, kc, names)
}

// finalState is what the events of a run leave, keyed by their subject.
type finalState struct {
	eligibility map[string]string // customer premise program -> eligible and reasons
	anomalies   map[string]string // open: service point code rule effective date -> until, account
	corrections map[string]int    // a correction -> how often
}

func (f finalState) empty() bool { return f.eligibility == nil }

func readFinal(t *testing.T, kc kafkaconf.Config, names topics.Names) finalState {
	t.Helper()
	f := finalState{eligibility: map[string]string{}, anomalies: map[string]string{}, corrections: map[string]int{}}
	read := func(topic string) []map[string]any {
		return kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, topic))
	}
	for _, e := range read(names.Eligibility) {
		var rs []string
		for _, r := range e["reasons"].([]any) {
			m := r.(map[string]any)
			rs = append(rs, fmt.Sprintf("%s/%s/%s from %s until %s", m["code"], m["rule"], plain(m["service_point_id"]), plain(m["effective_date"]), plain(m["until"])))
		}
		f.eligibility[fmt.Sprintf("%s %s %s", e["customer_id"], e["premise_id"], e["program"])] = fmt.Sprintf("eligible=%v secondary_id=%s %s", e["eligible"], plain(e["secondary_id"]), strings.Join(rs, "; "))
	}
	// A condition raised and cleared again is no final state: a run in
	// which it never held ends the same.
	for _, a := range read(names.Anomalies) {
		k := fmt.Sprintf("%s %s %s %s", a["service_point_id"], a["code"], a["rule"], plain(a["effective_date"]))
		if a["cleared"] == true {
			delete(f.anomalies, k)
			continue
		}
		f.anomalies[k] = fmt.Sprintf("open until %s account %s customer %s premise %s", plain(a["until"]), plain(a["account_id"]),
			plain(a["customer_id"]), plain(a["premise_id"]))
	}
	for _, c := range read(names.Corrections) {
		f.corrections[fmt.Sprintf("%s %s %s %s %s->%s %s %s", c["service_point_id"], c["kind"], c["rule"], plain(c["date_to"]),
			plain(c["old_value"]), plain(c["new_value"]), plain(c["channel"]), plain(c["interval_end"]))]++
	}
	return f
}

// plain renders a decoded Avro value (a union as its value, a date as
// yyyy-mm-dd).
func plain(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case map[string]any:
		for _, y := range x {
			return plain(y)
		}
		return ""
	case time.Time:
		return x.UTC().Format(time.DateOnly)
	}
	return fmt.Sprint(v)
}

func (f finalState) compare(t *testing.T, fromName string, g finalState, gotName string) {
	t.Helper()
	diff := func(what string, want, got map[string]string) {
		var lines []string
		for _, k := range slices.Sorted(mapsKeys(want, got)) {
			if want[k] != got[k] {
				lines = append(lines, fmt.Sprintf("  %s\n    %s: %q\n    %s: %q", k, fromName, want[k], gotName, got[k]))
			}
		}
		if len(lines) > 0 {
			t.Errorf("final %s: %s and %s differ in %d of %d:\n%s", what, fromName, gotName, len(lines), len(want), strings.Join(lines, "\n"))
		}
	}
	diff("eligibility", f.eligibility, g.eligibility)
	diff("anomalies", f.anomalies, g.anomalies)
	counts := func(m map[string]int) map[string]string {
		out := map[string]string{}
		for k, n := range m {
			out[k] = strconv.Itoa(n)
		}
		return out
	}
	diff("corrections", counts(f.corrections), counts(g.corrections))
}

func mapsKeys(ms ...map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}
