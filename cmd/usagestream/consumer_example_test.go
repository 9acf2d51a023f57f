package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/producers/gen"
)

// TestGoConsumerExample runs examples/consumer-go (docs/consumers.md), a
// module of its own as a consuming service would be, against `usagestream
// run`'s embedded broker after a file with every labelled anomaly was
// processed and 25 eligibility events were delivered a second time (as a
// replay into the live topics would): it reads every event, drops the 25
// by event_id, fills its reader-only field from the default, and folds the
// events into each (customer, premise, program)'s eligibility, which is
// the topic's newest event of that subject and the query API's answer.
func TestGoConsumerExample(t *testing.T) {
	// The Python example (docs/consumers.md) reads with the same reader
	// schema, which this test resolves against the current writer's.
	gs, gerr := os.ReadFile("../../examples/consumer-go/eligibility.avsc")
	ps, perr := os.ReadFile("../../examples/consumer-python/eligibility.avsc")
	if gerr != nil || perr != nil || !bytes.Equal(gs, ps) {
		t.Errorf("examples/consumer-go and consumer-python read with different schemas (%v, %v): keep eligibility.avsc the same in both", gerr, perr)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the example with")
	}
	exe := filepath.Join(t.TempDir(), "consumer-go")
	build := exec.Command(goBin, "build", "-o", exe, ".")
	build.Dir = filepath.Join("..", "..", "examples", "consumer-go")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/consumer-go: %v\n%s", err, out)
	}

	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	run := startRun(t, hport, "--data-dir", t.TempDir(), "--kafka-port", fmt.Sprint(kport), "--registry-port", fmt.Sprint(rport))
	defer run.stop(t)
	kc := kafkaconf.Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", kport)}, Registry: fmt.Sprintf("http://127.0.0.1:%d", rport), TopicPrefix: "usagestream."}
	kinds := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		kinds[k] = 1
	}
	files := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 60, Months: 14, Seed: 5, Anomalies: kinds})
	conn := []string{"USAGESTREAM_BROKERS=" + kc.Brokers[0], "USAGESTREAM_REGISTRY=" + kc.Registry}
	if r := runCLI(t, conn, append([]string{"ingest"}, files.Files...)...); r.code != 0 && r.code != 3 {
		t.Fatalf("ingest: exit %d\n%s", r.code, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := pipeline.WaitCaughtUp(ctx, kc); err != nil {
		t.Fatal(err)
	}
	topic := topics.NewNames(kc.TopicPrefix).Eligibility
	recs := kafkatest.ReadAll(t, kc, topic)
	const again = 25
	if len(recs) < 100 {
		t.Fatalf("only %d eligibility events", len(recs))
	}
	cl, err := kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dups []*kgo.Record
	for _, r := range recs[:again] {
		dups = append(dups, &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value})
	}
	err = cl.ProduceSync(ctx, dups...).FirstErr()
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}

	// The expected fold: the newest event of each subject.
	type subject struct{ Customer, Premise, Program string }
	type current struct {
		Eligible bool
		EventID  string
		Reasons  []string
	}
	want := map[subject]current{}
	for _, m := range kafkatest.Decode(t, kc, recs) {
		var reasons []string
		for _, r := range m["reasons"].([]any) {
			rm := r.(map[string]any)
			reasons = append(reasons, fmt.Sprint(rm["code"], " ", rm["rule"]))
		}
		want[subject{m["customer_id"].(string), m["premise_id"].(string), m["program"].(string)}] = current{m["eligible"].(bool), m["event_id"].(string), reasons}
	}

	cmd := exec.CommandContext(ctx, exe, "-brokers", kc.Brokers[0], "-registry", kc.Registry, "-topic-prefix", kc.TopicPrefix, "-until-idle", "3s")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		t.Fatalf("consumer-go: %v\n%s", err, se.String())
	}
	var got struct {
		Events, Duplicates int
		Channels           map[string]int
		Subjects           []struct {
			CustomerID string `json:"customer_id"`
			PremiseID  string `json:"premise_id"`
			Program    string
			Eligible   bool
			EventID    string `json:"event_id"`
			Source     string
			Reasons    []struct{ Code, Rule string }
		}
	}
	if err := json.Unmarshal(so.Bytes(), &got); err != nil {
		t.Fatalf("consumer-go printed %v: %s", err, so.String())
	}
	if got.Events != len(recs)+again || got.Duplicates != again {
		t.Errorf("consumer-go read %d events, %d duplicates; want %d and %d", got.Events, got.Duplicates, len(recs)+again, again)
	}
	if got.Channels["billing"] != len(recs) || len(got.Channels) != 1 {
		t.Errorf("the reader-only field: %v, want its default on each of %d events", got.Channels, len(recs))
	}
	if len(got.Subjects) != len(want) {
		t.Errorf("consumer-go folded %d subjects, the topic has %d", len(got.Subjects), len(want))
	}
	api := fmt.Sprintf("http://127.0.0.1:%d", hport)
	premises := map[[2]string]map[string]bool{} // the API's eligibility, by customer and premise
	withSource := 0
	for _, s := range got.Subjects {
		w, ok := want[subject{s.CustomerID, s.PremiseID, s.Program}]
		var reasons []string
		for _, r := range s.Reasons {
			reasons = append(reasons, r.Code+" "+r.Rule)
		}
		if !ok || w.Eligible != s.Eligible || w.EventID != s.EventID || fmt.Sprint(w.Reasons) != fmt.Sprint(reasons) {
			t.Errorf("%s/%s/%s folded to %v %s %v; the newest event is %+v", s.CustomerID, s.PremiseID, s.Program, s.Eligible, s.EventID, reasons, w)
		}
		if s.Source != "" {
			withSource++
		}
		key := [2]string{s.CustomerID, s.PremiseID}
		if premises[key] == nil {
			premises[key] = apiEligibility(t, api, s.CustomerID, s.PremiseID)
		}
		if e, ok := premises[key][s.Program]; !ok || e != s.Eligible {
			t.Errorf("%s/%s/%s folded to eligible=%v; the query API says %v (known: %v)", s.CustomerID, s.PremiseID, s.Program, s.Eligible, e, ok)
		}
	}
	if withSource == 0 {
		t.Error("no folded subject names the file line of its cause")
	}
}

func apiEligibility(t *testing.T, base, customer, premise string) map[string]bool {
	t.Helper()
	resp, err := http.Get(base + "/v1/customers/" + url.PathEscape(customer) + "/premises/" + url.PathEscape(premise))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Programs []struct {
			Program  string
			Eligible bool
		}
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&p) != nil {
		t.Fatalf("the query API on %s at %s: %d", customer, premise, resp.StatusCode)
	}
	out := map[string]bool{}
	for _, pr := range p.Programs {
		out[pr.Program] = pr.Eligible
	}
	return out
}
