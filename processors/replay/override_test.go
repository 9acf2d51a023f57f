package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/producers/override"
	"github.com/usagestream/usagestream/records"
)

// activeDateChangedFile writes a year of monthly rows for SP1 whose
// active_date changes in July (A3).
func activeDateChangedFile(t *testing.T) string {
	t.Helper()
	lines := []string{records.HeaderLine(records.LayoutFull)}
	for m := 1; m <= 12; m++ {
		from := time.Date(2023, time.Month(m), 1, 0, 0, 0, 0, time.UTC)
		to := from.AddDate(0, 1, -1)
		active := "20230101"
		if m >= 7 {
			active = "20230601"
		}
		v := map[string]string{"customer_id": "C1", "premise_id": "P1", "account_id": "A1", "active_date": active, "rate_code": "R1",
			"service_point_id": "SP1", "service_type": "E", "date_to": to.Format("20060102"), "duration": fmt.Sprint(to.Day()),
			"usage_value": "500", "is_estimate": "A"}
		parts := make([]string, len(records.BillingColumns))
		for i, c := range records.BillingColumns {
			parts[i] = v[c.Name]
		}
		lines = append(lines, strings.Join(parts, "\t"))
	}
	path := filepath.Join(t.TempDir(), "opwr_tst_res_v1-19-0_full_20240101000000.tsv")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runLive runs every stage until it has caught up, then stops them.
func runLive(t *testing.T, kc kafkaconf.Config, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := pipeline.New(ctx, kc, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, len(p.Stages()))
	for _, st := range p.Stages() {
		go func() {
			errs <- runtime.Run(ctx, runtime.Config{Kafka: kc, DataDir: dir, Logger: slog.New(slog.DiscardHandler)}, st)
		}()
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	err = pipeline.WaitCaughtUp(wctx, kc)
	wcancel()
	cancel()
	for range p.Stages() {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// decodedLines renders a topic's events as sorted JSON lines. With
// dropInternalIDs, event ids are left out, for a topic whose events are
// caused by records of an internal topic (eligibility.v1): they derive from its offsets, which count the
// transaction markers of the run that wrote it, so a shadow (one run) and
// the live topics (two runs here) number them differently.
func decodedLines(t *testing.T, kc kafkaconf.Config, topic string, dropInternalIDs bool) []string {
	t.Helper()
	var out []string
	for _, m := range kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, topic)) {
		if dropInternalIDs {
			delete(m, "event_id")
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// TestOV1ShadowReplayReproducesTheClear: an operator's clear is input, so
// a shadow replay from the earliest offset applies it again at the same
// place: the shadow's anomalies and eligibility are the live ones, event
// ids and the action's citation included.
func TestOV1ShadowReplayReproducesTheClear(t *testing.T) {
	env := kafkatest.Start(t)
	kc := env.Kafka
	ctx := context.Background()
	in, err := ingest.New(ctx, kc, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := in.Run(ctx, []string{activeDateChangedFile(t)}); err != nil || res[0].Status != ingest.Completed {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	dir := t.TempDir()
	runLive(t, kc, dir)
	w, err := override.NewWriter(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a := records.OperatorAction{Kind: records.ActionClearAnomaly, Utility: "tst", ServicePointID: "SP1", AnomalyCode: rules.AnomalyActiveDateChanged,
		Actor: "ops", Reason: "confirmed", Ticket: "OPS-1"}
	pos, err := w.Write(ctx, &a)
	if err != nil {
		t.Fatal(err)
	}
	runLive(t, kc, dir)

	liveAnoms := decodedLines(t, kc, env.Topics.Anomalies, false)
	cited := fmt.Sprintf(`"cause":{"file":null,"line":null,"offset":%d,"partition":%d,"topic":%q}`, pos.Offset, pos.Partition, pos.Topic)
	if !slices.ContainsFunc(liveAnoms, func(l string) bool { return strings.Contains(l, `"rule":"OV1"`) && strings.Contains(l, cited) }) {
		t.Fatalf("no live OV1 anomaly citing %s:\n%s", cited, strings.Join(liveAnoms, "\n"))
	}

	cl, err := kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	plan, err := NewPlan(ctx, adm, Options{Kafka: kc, State: Recompute, Shadow: "ov", Policy: rules.DefaultPolicy(), Force: true,
		StateDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(ctx, adm); err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Run(ctx, RunOptions{Timeout: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	shadow := topics.NewNames(ShadowPrefix(kc.TopicPrefix, "ov"))
	for _, pair := range [][2]string{{env.Topics.Anomalies, shadow.Anomalies}, {env.Topics.Eligibility, shadow.Eligibility}} {
		internal := pair[0] == env.Topics.Eligibility
		live, again := decodedLines(t, kc, pair[0], internal), decodedLines(t, kc, pair[1], internal)
		if !slices.Equal(live, again) {
			t.Errorf("%s and its shadow %s differ:\n--- live\n%s\n--- shadow\n%s", pair[0], pair[1], strings.Join(live, "\n"), strings.Join(again, "\n"))
		}
	}
}
