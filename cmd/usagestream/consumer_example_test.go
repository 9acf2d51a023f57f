package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/query"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/runtime/runtimetest"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

// The example consumers of docs/consumers.md, run against the pipeline's
// output: kfake in the normal test lane, the real Kafka and Apicurio of the
// real-Kafka lane (scripts/test.d/60-realkafka.sh) when
// USAGESTREAM_TEST_BROKERS is set (internal/kafkatest).

// duplicated is how many eligibility events the fixture delivers twice.
const duplicated = 25

type subject struct{ Customer, Premise, Program string }

type current struct {
	Eligible bool
	EventID  string
	Reasons  []string // "CODE RULE"
}

// consumerFixture is a generated file with every labelled anomaly, ingested
// and processed by every stage, with the query API over their state; then
// the first events of eligibility.v1 are produced again as they were (as a
// replay into the live topics delivers them).
type consumerFixture struct {
	env  *kafkatest.Env
	api  string
	recs int                 // events on the topic before the copies
	want map[subject]current // the newest event of each subject
}

func newConsumerFixture(t *testing.T) consumerFixture {
	t.Helper()
	env := kafkatest.Start(t)
	kinds := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		kinds[k] = 1
	}
	res := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 60, Months: 14, Seed: 5, Anomalies: kinds})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(ctx, res.Files); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(ctx, env.Kafka, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	api := query.New(query.Config{Kafka: env.Kafka})
	ts := httptest.NewServer(api.Handler())
	api.Listening(strings.TrimPrefix(ts.URL, "http://"))
	t.Cleanup(func() { ts.Close(); api.Close() })
	runtimetest.StartAll(t, ctx, p.Stages(), func(runtime.Stage) runtime.Config {
		return runtime.Config{Kafka: env.Kafka, DataDir: t.TempDir(), SessionTimeout: 6 * time.Second}
	}, api.Attach)
	if err := pipeline.WaitCaughtUp(ctx, env.Kafka); err != nil {
		t.Fatal(err)
	}

	topic := env.Topics.Eligibility
	recs := kafkatest.ReadAll(t, env.Kafka, topic)
	if len(recs) < 100 {
		t.Fatalf("only %d eligibility events", len(recs))
	}
	want := map[subject]current{}
	for _, m := range kafkatest.Decode(t, env.Kafka, recs) {
		var reasons []string
		for _, r := range m["reasons"].([]any) {
			rm := r.(map[string]any)
			reasons = append(reasons, fmt.Sprint(rm["code"], " ", rm["rule"]))
		}
		want[subject{m["customer_id"].(string), m["premise_id"].(string), m["program"].(string)}] = current{m["eligible"].(bool), m["event_id"].(string), reasons}
	}
	cl, err := env.Kafka.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var dups []*kgo.Record
	for _, r := range recs[:duplicated] {
		dups = append(dups, &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value})
	}
	if err := cl.ProduceSync(ctx, dups...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return consumerFixture{env: env, api: ts.URL, recs: len(recs), want: want}
}

// check compares what an example printed with the fixture: every event
// read, the copies dropped by event_id, the reader-only field at its
// default, each subject folded to its newest event, which is also the
// query API's answer.
func (f consumerFixture) check(t *testing.T, name string, out []byte) {
	t.Helper()
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
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s printed %v: %s", name, err, out)
	}
	if got.Events != f.recs+duplicated || got.Duplicates != duplicated {
		t.Errorf("%s read %d events, %d duplicates; want %d and %d", name, got.Events, got.Duplicates, f.recs+duplicated, duplicated)
	}
	if got.Channels["billing"] != f.recs || len(got.Channels) != 1 {
		t.Errorf("%s: the reader-only field: %v, want its default on each of %d events", name, got.Channels, f.recs)
	}
	if len(got.Subjects) != len(f.want) {
		t.Errorf("%s folded %d subjects, the topic has %d", name, len(got.Subjects), len(f.want))
	}
	premises := map[[2]string]map[string]bool{}
	withSource := 0
	for _, s := range got.Subjects {
		w, ok := f.want[subject{s.CustomerID, s.PremiseID, s.Program}]
		var reasons []string
		for _, r := range s.Reasons {
			reasons = append(reasons, r.Code+" "+r.Rule)
		}
		if !ok || w.Eligible != s.Eligible || w.EventID != s.EventID || fmt.Sprint(w.Reasons) != fmt.Sprint(reasons) {
			t.Errorf("%s: %s/%s/%s folded to %v %s %v; the newest event is %+v", name, s.CustomerID, s.PremiseID, s.Program, s.Eligible, s.EventID, reasons, w)
		}
		if s.Source != "" {
			withSource++
		}
		key := [2]string{s.CustomerID, s.PremiseID}
		if premises[key] == nil {
			premises[key] = apiEligibility(t, f.api, s.CustomerID, s.PremiseID)
		}
		if e, ok := premises[key][s.Program]; !ok || e != s.Eligible {
			t.Errorf("%s: %s/%s/%s folded to eligible=%v; the query API says %v (known: %v)", name, s.CustomerID, s.PremiseID, s.Program, s.Eligible, e, ok)
		}
	}
	if withSource == 0 {
		t.Errorf("%s: no folded subject names the file line of its cause", name)
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

func runExample(t *testing.T, name string, argv ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, se.String())
	}
	return so.Bytes()
}

// TestGoConsumerExample runs examples/consumer-go, a module of its own as
// a consuming service would be, built with the go command.
func TestGoConsumerExample(t *testing.T) {
	// The Python example reads with the same reader schema, which this
	// test resolves against the current writer's.
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
	f := newConsumerFixture(t)
	out := runExample(t, "consumer-go", exe, "-brokers", strings.Join(f.env.Kafka.Brokers, ","), "-registry", f.env.Kafka.Registry,
		"-topic-prefix", f.env.Kafka.TopicPrefix, "-group", f.env.Kafka.TopicPrefix+"example-go", "-until-idle", "5s")
	f.check(t, "consumer-go", out)
}

// TestPythonConsumerExample runs examples/consumer-python with the Python
// of $USAGESTREAM_TEST_PYTHON, which must have confluent-kafka and
// fastavro (the real-Kafka lane's virtual environment); skipped without it.
func TestPythonConsumerExample(t *testing.T) {
	python := os.Getenv("USAGESTREAM_TEST_PYTHON")
	if python == "" {
		t.Skip("USAGESTREAM_TEST_PYTHON is not set: the real-Kafka lane sets it to a Python with confluent-kafka and fastavro")
	}
	f := newConsumerFixture(t)
	out := runExample(t, "consumer.py", python, "../../examples/consumer-python/consumer.py", "--brokers", strings.Join(f.env.Kafka.Brokers, ","),
		"--registry", f.env.Kafka.Registry, "--topic-prefix", f.env.Kafka.TopicPrefix, "--group", f.env.Kafka.TopicPrefix+"example-python", "--until-idle", "5")
	f.check(t, "consumer.py", out)
}
