package replay

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/testlog"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/topology"
)

// TestPlanFollowsTheTopology plans replays on an empty stack (nothing is
// applied): the stages come in the topology's data-flow order, a live
// replay leaves each stage's own repartition outputs out, and a shadow
// replay reads the live external input, its own internal topics, and
// creates exactly what the stages write.
func TestPlanFollowsTheTopology(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	cl, err := env.Kafka.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topo := topology.New(env.Kafka.TopicPrefix)
	base := Options{Kafka: env.Kafka, State: Keep, Policy: rules.DefaultPolicy(), NoRun: true, Log: slog.New(slog.DiscardHandler)}

	live, err := NewPlan(ctx, adm, base)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sp := range live.stages {
		names = append(names, sp.name)
		st := topo.MustStage(sp.name)
		if !slices.Equal(sp.inputs, st.Inputs) {
			t.Errorf("stage %s: inputs %v, want the topology's %v", sp.name, sp.inputs, st.Inputs)
		}
		var want []string
		for _, out := range st.Outputs {
			if x, _ := topo.Topic(out); x.Kind == topology.Repartition {
				want = append(want, out)
			}
		}
		if !slices.Equal(sp.dropped, want) {
			t.Errorf("stage %s: outputs not written again %v, want its repartition outputs %v", sp.name, sp.dropped, want)
		}
	}
	if !slices.Equal(names, topo.StageNames()) {
		t.Fatalf("planned stages %v, want %v", names, topo.StageNames())
	}
	text := live.String()
	for _, want := range []string{"Replay plan", "the live topics again", "state: kept as it is", "then: nothing"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan text lacks %q:\n%s", want, text)
		}
	}
	for _, s := range topo.StageNames() {
		if !strings.Contains(text, "stage "+s+" (group "+topo.MustStage(s).Group(topo.Prefix)) {
			t.Errorf("plan text lacks stage %s with its group:\n%s", s, text)
		}
	}

	opts := base
	opts.State, opts.Shadow = Recompute, "t1"
	shadow, err := NewPlan(ctx, adm, opts)
	if err != nil {
		t.Fatal(err)
	}
	sp := ShadowPrefix(env.Kafka.TopicPrefix, "t1")
	st := topology.New(sp)
	var created []string
	for _, s := range shadow.recreat {
		created = append(created, s.Name)
	}
	want := st.OfKind(topology.Event, topology.Repartition, topology.Quarantine)
	if !slices.Equal(created, want) {
		t.Errorf("shadow creates %v, want %v", created, want)
	}
	for _, p := range shadow.stages {
		for _, in := range p.inputs {
			x, ok := topo.Topic(in)
			switch {
			case ok && x.Kind == topology.Input: // live external input
			case st.Internal(in): // the shadow's own
			default:
				t.Errorf("shadow stage %s reads %s: neither live input nor a shadow internal topic", p.name, in)
			}
		}
		if p.group != st.MustStage(p.name).Group(sp) {
			t.Errorf("shadow stage %s in group %s", p.name, p.group)
		}
	}

	for _, bad := range []struct {
		opts Options
		want string
	}{
		{Options{Stages: []string{"nosuch"}}, "no stage"},
		{Options{Shadow: "x", State: Keep}, "always recomputes"},
		{Options{Shadow: "x", State: Recompute, Stages: []string{topology.Customer}}, "every stage"},
		{Options{Offsets: []string{"0:1"}}, "one stage"},
		{Options{State: Restore}, "state directory"},
		{Options{Shadow: "a/b", State: Recompute}, "letters, digits"},
	} {
		o := bad.opts
		o.Kafka, o.Policy = env.Kafka, rules.DefaultPolicy()
		if _, err := NewPlan(ctx, adm, o); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: got %v, want an error saying %q", bad.opts, err, bad.want)
		}
	}
}

// TestPlanCountsRecordsNotOffsets: a transactional input holds a commit
// marker after each transaction. The plan counts the records to process,
// not the offsets: a replay from the start of 40 records written in 4
// transactions has 40 to process (not 44), and a group caught up (its
// offset at the last marker) has none left (not 1).
func TestPlanCountsRecordsNotOffsets(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	topo := topology.New(env.Kafka.TopicPrefix)
	first := topo.MustStage(topo.StageNames()[0])
	in := first.Inputs[0]
	cl, err := env.Kafka.NewClient(ctx, kgo.TransactionalID("plan-test-"+env.Kafka.TopicPrefix), kgo.DefaultProduceTopic(in), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for tx := 0; tx < 4; tx++ {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	base := Options{Kafka: env.Kafka, State: Keep, Policy: rules.DefaultPolicy(), NoRun: true, Stages: []string{first.Name}, Log: slog.New(slog.DiscardHandler)}
	left := func(opts Options) string {
		t.Helper()
		plan, err := NewPlan(ctx, adm, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(plan.String(), "\n") {
			if strings.Contains(line, "input "+in+":") {
				_, after, _ := strings.Cut(line, "about ")
				n, _, _ := strings.Cut(after, " ")
				return n
			}
		}
		t.Fatalf("the plan does not list %s:\n%s", in, plan.String())
		return ""
	}
	if n := left(base); n != "40" {
		t.Errorf("from the start: about %s records to process, want 40", n)
	}
	// Where a caught-up transactional consumer commits: after the last
	// record, at the last commit marker (offset 43 of 44).
	atRest := base
	atRest.Offsets = []string{in + ":0:43"}
	if n := left(atRest); n != "0" {
		t.Errorf("caught up: about %s records to process, want 0", n)
	}
}

// TestRunOpensEveryStageBeforeRunningAny: a stage that cannot start (its
// state directory cannot be made) fails the run before any other stage
// runs, and Run returns the cause.
// Before, the earlier stages ran while the run returned and closed them
// under their live Run.
func TestRunOpensEveryStageBeforeRunningAny(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	cl, err := env.Kafka.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topo := topology.New(env.Kafka.TopicPrefix)
	logs := &testlog.Buffer{}
	plan, err := NewPlan(ctx, adm, Options{Kafka: env.Kafka, State: Keep, Policy: rules.DefaultPolicy(), Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	last := topo.StageNames()[len(topo.StageNames())-1]
	if err := os.WriteFile(filepath.Join(dir, last), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = plan.Run(ctx, RunOptions{StateDir: dir, Timeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, last)) {
		t.Fatalf("Run: %v, want the state directory of stage %s named", err, last)
	}
	if strings.Contains(logs.String(), "processor started") {
		t.Errorf("a stage ran although another could not start:\n%s", logs)
	}
	for _, s := range topo.StageNames() {
		if _, err := os.Stat(filepath.Join(dir, s, "pebble")); s != last && err != nil {
			t.Errorf("stage %s was not opened before the failing one: %v", s, err)
		}
	}
}
