package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
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
		parts := make([]string, len(records.BillingColumns()))
		for i, c := range records.BillingColumns() {
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

// decodedLines renders a topic's events as sorted JSON lines.
func decodedLines(t *testing.T, kc kafkaconf.Config, topic string) []string {
	t.Helper()
	var out []string
	for _, m := range kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, topic)) {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// TestOV1ShadowReplayAppliesTheClearAgain: an operator's clear is input, so
// a shadow replay from the earliest offset reads it and applies it again,
// citing it.
func TestOV1ShadowReplayAppliesTheClearAgain(t *testing.T) {
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

	liveAnoms := decodedLines(t, kc, env.Topics.Anomalies)
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
	// The shadow's stages read the action (they know the live topic's
	// name) and apply it in their transaction: OV1 events citing it. A
	// replay reads billing.v1 and operator-actions.v1 from the start in no
	// fixed order, so the clear may come before the rows that open the
	// condition: it is refused, waits, and applies when the row (ingested
	// before the action) opens it (docs/rules.md#OV1). Either way the
	// shadow ends as the live run did.
	var ov1 []string
	for _, l := range decodedLines(t, kc, shadow.Anomalies) {
		if strings.Contains(l, `"rule":"OV1"`) && strings.Contains(l, cited) {
			ov1 = append(ov1, l)
		}
	}
	if len(ov1) == 0 {
		t.Errorf("the shadow has no OV1 anomaly citing the action")
	}
	live, replayed := openAnomalies(t, kc, env.Topics.Anomalies), openAnomalies(t, kc, shadow.Anomalies)
	if !slices.Equal(live, replayed) {
		t.Errorf("open anomalies: live %v, shadow %v", live, replayed)
	}
	for _, k := range replayed {
		if strings.Contains(k, rules.AnomalyActiveDateChanged) || strings.Contains(k, rules.AnomalyOverrideRefused) {
			t.Errorf("the shadow leaves %s open", k)
		}
	}
}

// openAnomalies folds a topic of anomalies, in order, into those left open,
// by service point, code and effective date (as a consumer keys them: a
// clear by an operator has rule OV1, not the rule that raised it).
func openAnomalies(t *testing.T, kc kafkaconf.Config, topic string) []string {
	t.Helper()
	open := map[string]bool{}
	for _, a := range kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, topic)) {
		k := fmt.Sprintf("%s %s %s", a["service_point_id"], a["code"], plain(a["effective_date"]))
		if a["cleared"] == true {
			delete(open, k)
		} else {
			open[k] = true
		}
	}
	return slices.Sorted(maps.Keys(open))
}
