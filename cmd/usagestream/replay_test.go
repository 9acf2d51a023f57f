package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/records"
)

// processedEnv is the embedded stack with generated files ingested and
// processed by every stage.
type processedEnv struct {
	env   *kafkatest.Env
	g     *Globals
	files []string
}

func newProcessedEnv(t *testing.T) processedEnv {
	t.Helper()
	kinds := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		kinds[k] = 1
	}
	env := kafkatest.Start(t)
	res := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 80, Months: 14, Seed: 11, Anomalies: kinds})
	ctx := context.Background()
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(ctx, res.Files); err != nil {
		t.Fatal(err)
	}
	g := &Globals{Kafka: env.Kafka, log: slog.New(slog.DiscardHandler)}
	if err := processUntilCaughtUp(ctx, g, env.Kafka, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return processedEnv{env: env, g: g, files: res.Files}
}

// topicRecords reads a topic back, grouped by partition in offset order.
func topicRecords(t *testing.T, pe processedEnv, topic string) map[int32][]*kgo.Record {
	t.Helper()
	out := map[int32][]*kgo.Record{}
	for _, r := range kafkatest.ReadAll(t, pe.env.Kafka, topic) {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

func committedOffsets(t *testing.T, pe processedEnv, group string) map[string]map[int32]int64 {
	t.Helper()
	cl, err := pe.env.Kafka.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	os, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	out := map[string]map[int32]int64{}
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Each(func(o kadm.OffsetResponse) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out
}

func runReplay(t *testing.T, pe processedEnv, c replayCmd) (string, error) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := c.run(ctx, pe.g, nil, &out)
	return out.String(), err
}

// TestReplayReemitsIdenticalEvents: a replay of every stage from the
// earliest offset, state recomputed, into the live topics, appends to each
// output partition exactly the records it had (same event ids, same bytes);
// the repartition topics get nothing new. Before that: a dry run changes
// nothing, a replay while processors run is refused, and without a terminal
// it asks for --yes.
func TestReplayReemitsIdenticalEvents(t *testing.T) {
	pe := newProcessedEnv(t)
	n := pe.env.Topics
	outputs := []string{n.Eligibility, n.Corrections, n.AccountEvents, n.Anomalies}
	internal := []string{n.Premises, n.Memberships}
	before := map[string]map[int32][]*kgo.Record{}
	for _, topic := range append(slices.Clone(outputs), internal...) {
		before[topic] = topicRecords(t, pe, topic)
		total := 0
		for _, rs := range before[topic] {
			total += len(rs)
		}
		if total == 0 {
			t.Fatalf("%s is empty after processing: the test data must produce every kind of event", topic)
		}
	}
	group := groupName(pe.env.Kafka.TopicPrefix, "servicepoint")
	offsetsBefore := committedOffsets(t, pe, group)

	// A dry run shows the plan and changes nothing.
	out, err := runReplay(t, pe, replayCmd{To: "earliest", State: "recompute", Output: "same", DryRun: true, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Replay plan", "stage servicepoint", "stage customer", "tombstones", "Dry run"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if got := committedOffsets(t, pe, group); !mapsEqual(got, offsetsBefore) {
		t.Fatalf("a dry run moved the offsets: %v -> %v", offsetsBefore, got)
	}

	// While processors run, the replay refuses (even with --yes).
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := &atomic.Bool{}
	go func() {
		done <- runProcessors(ctx, pe.env.Kafka, processFlags{StateDir: t.TempDir(), SessionTimeout: 10 * time.Second}, prometheus.NewRegistry(), ready, pe.g.log)
	}()
	waitMembers(t, pe, group)
	_, err = runReplay(t, pe, replayCmd{To: "earliest", State: "recompute", Output: "same", Yes: true, Timeout: time.Minute})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "members") {
		t.Fatalf("replay with running processors: got %v, want a refusal naming the members", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := committedOffsets(t, pe, group); !mapsEqual(got, offsetsBefore) {
		t.Fatalf("a refused replay moved the offsets: %v -> %v", offsetsBefore, got)
	}

	// Without --yes and without a terminal: asks for --yes. Stopped static
	// members stay registered for their session timeout: --force removes them.
	_, err = runReplay(t, pe, replayCmd{To: "earliest", State: "recompute", Output: "same", Force: true, Timeout: time.Minute})
	if !errors.As(err, &ee) || !strings.Contains(ee.msg, "--yes") {
		t.Fatalf("replay without --yes off a terminal: got %v, want a request for --yes", err)
	}

	// The replay serves its metrics while it runs.
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	scraped := make(chan bool, 1)
	stopScrape := make(chan struct{})
	go func() {
		seen := false
		defer func() { scraped <- seen }()
		for {
			select {
			case <-stopScrape:
				return
			case <-time.After(10 * time.Millisecond):
			}
			resp, err := http.Get("http://" + maddr + "/metrics")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "go_goroutines") {
				seen = true
			}
		}
	}()
	out, err = runReplay(t, pe, replayCmd{To: "earliest", State: "recompute", Output: "same", Force: true, Yes: true, Timeout: 3 * time.Minute, MetricsAddr: maddr})
	close(stopScrape)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if !<-scraped {
		t.Errorf("no /metrics on --metrics-addr %s during the replay", maddr)
	}
	if !strings.Contains(out, "replay done") {
		t.Fatalf("replay output:\n%s", out)
	}
	for _, topic := range outputs {
		after := topicRecords(t, pe, topic)
		for p, old := range before[topic] {
			got := after[p]
			if len(got) != 2*len(old) {
				t.Errorf("%s[%d]: %d records before, %d after the replay; want twice as many", topic, p, len(old), len(got))
				continue
			}
			for i, r := range old {
				again := got[len(old)+i]
				if !bytes.Equal(r.Key, again.Key) || !bytes.Equal(r.Value, again.Value) {
					t.Errorf("%s[%d]: record %d replayed differently (key %q vs %q)", topic, p, i, r.Key, again.Key)
					break
				}
			}
		}
		if len(after) != len(before[topic]) {
			t.Errorf("%s: records in partitions %d before, %d after", topic, len(before[topic]), len(after))
		}
	}
	// Event ids: every id appears exactly twice in the eligibility topic.
	ids := map[string]int{}
	for _, m := range kafkatest.Decode(t, pe.env.Kafka, kafkatest.ReadAll(t, pe.env.Kafka, n.Eligibility)) {
		ids[m["event_id"].(string)]++
	}
	for id, c := range ids {
		if c != 2 {
			t.Errorf("event %s appears %d times, want 2 (original and replay)", id, c)
		}
	}
	for _, topic := range internal {
		after := topicRecords(t, pe, topic)
		for p, old := range before[topic] {
			if len(after[p]) != len(old) {
				t.Errorf("%s[%d]: %d records before, %d after: the replay wrote to a repartition topic", topic, p, len(old), len(after[p]))
			}
		}
	}
}

func mapsEqual(a, b map[string]map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, m := range a {
		if len(m) != len(b[k]) {
			return false
		}
		for p, o := range m {
			if b[k][p] != o {
				return false
			}
		}
	}
	return true
}

func waitMembers(t *testing.T, pe processedEnv, group string) {
	t.Helper()
	cl, err := pe.env.Kafka.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		gs, err := adm.DescribeGroups(context.Background(), group)
		if err == nil && len(gs[group].Members) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("group %s has no members after a minute", group)
}

// finalEligibility runs the pure rules over the files (one partition's
// order) and keeps each subject's last state per program.
func finalEligibility(t *testing.T, policy rules.Policy, files []string) map[subjectKey]rules.EligibilityChanged {
	t.Helper()
	ch := rules.NewChain(policy)
	out := map[subjectKey]rules.EligibilityChanged{}
	err := ingest.EachRow(files, billing.Options{}, func(file string, row *records.BillingRow) error {
		res, err := ch.Apply(row, rules.Source{File: file, Line: row.Line})
		for _, e := range res.Eligibility {
			out[subjectKey{e.CustomerID, e.PremiseID, e.Program}] = e
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func codes(rs []rules.Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code+"/"+r.Rule+"/"+r.ServicePointID+"/"+r.EffectiveDate.ISO()+"/"+r.Until.String())
	}
	slices.Sort(out)
	return out
}

// TestShadowReplayDiffShowsARateLeavingTheAllowlist: a shadow replay with
// R2 taken off the rate allowlist, then diff: exactly the subjects the rules
// say change do, each gaining RATE_NOT_ALLOWED (A7) on a service point that
// has an R2 account (or the communications block that follows from it), and
// nothing else changes; the live topics are untouched.
func TestShadowReplayDiffShowsARateLeavingTheAllowlist(t *testing.T) {
	pe := newProcessedEnv(t)
	liveBefore := topicRecords(t, pe, pe.env.Topics.Eligibility)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("rate_allowlist: [R1, TOU1]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runReplay(t, pe, replayCmd{To: "earliest", State: "recompute", Output: "shadow", Shadow: "no-r2",
		Policy: policyFile, Yes: true, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatalf("shadow replay: %v\n%s", err, out)
	}
	if !strings.Contains(out, "usagestream diff --shadow no-r2") {
		t.Errorf("the replay does not say how to compare:\n%s", out)
	}
	liveAfter := topicRecords(t, pe, pe.env.Topics.Eligibility)
	for p, rs := range liveBefore {
		if len(liveAfter[p]) != len(rs) {
			t.Fatalf("a shadow replay wrote to the live eligibility topic (partition %d: %d -> %d)", p, len(rs), len(liveAfter[p]))
		}
	}

	ctx := context.Background()
	res, err := diffEligibility(ctx, pe.env.Kafka, "no-r2", false)
	if err != nil {
		t.Fatal(err)
	}

	// The rules' own answer, with both policies.
	noR2, err := rules.ParsePolicy([]byte("rate_allowlist: [R1, TOU1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	liveRules := finalEligibility(t, rules.DefaultPolicy(), pe.files)
	shadowRules := finalEligibility(t, noR2, pe.files)
	want := map[subjectKey]bool{}
	for k, l := range liveRules {
		s := shadowRules[k]
		if l.Eligible != s.Eligible || !slices.Equal(codes(l.Reasons), codes(s.Reasons)) {
			want[k] = true
		}
	}
	if len(want) == 0 {
		t.Fatal("the generated data has no subject on rate R2: the test proves nothing")
	}
	r2 := servicePointsWithRate(t, pe.files, "R2")
	got := map[subjectKey]bool{}
	for _, d := range res.Diffs {
		got[d.subjectKey] = true
		if d.Change != "changed" {
			t.Errorf("%v: %s, want only changes", d.subjectKey, d.Change)
		}
		for _, l := range d.Lost {
			// A reason may only move its date (communications blocked
			// earlier, by the rate), never go.
			if !slices.ContainsFunc(d.Gained, func(g reasonBrief) bool {
				return g.Code == l.Code && g.Rule == l.Rule && g.ServicePointID == l.ServicePointID
			}) {
				t.Errorf("%v lost reason %v: taking a rate off the allowlist removes none", d.subjectKey, l)
			}
		}
		if len(d.Gained) == 0 || d.Shadow.Eligible {
			t.Errorf("%v: gained %v, shadow eligible %v: want a new blocking reason", d.subjectKey, d.Gained, d.Shadow.Eligible)
		}
		for _, r := range d.Gained {
			switch {
			case r.Code == rules.ReasonRateNotAllowed && r.Rule == "A7":
				if !r2[r.ServicePointID] {
					t.Errorf("%v gained %v on a service point with no R2 account", d.subjectKey, r)
				}
			case r.Code == rules.ReasonBlockedForCommunications:
			default:
				t.Errorf("%v gained %v: only A7 (and the communications block it causes) may change", d.subjectKey, r)
			}
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("the rules say %v changes; diff does not report it", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("diff reports %v, which the rules do not change", k)
		}
	}
	if res.Counts["changed"] != len(want) || res.Counts["added"]+res.Counts["removed"] != 0 {
		t.Errorf("counts %v, want %d changed and nothing added or removed", res.Counts, len(want))
	}
	var buf bytes.Buffer
	if err := printDiff(&buf, res, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "+RATE_NOT_ALLOWED (A7") || !strings.Contains(buf.String(), "changed") {
		t.Errorf("diff table:\n%s", buf.String())
	}
	t.Logf("%d subject-programs changed out of %d", len(want), res.Compared)
}

// servicePointsWithRate lists the service points with a row on rate.
func servicePointsWithRate(t *testing.T, files []string, rate string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range files {
		rd, err := billing.Open(f, billing.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Row != nil && rec.Row.RateCode == rate {
				out[rec.Row.ServicePointID] = true
			}
		}
		rd.Close()
	}
	return out
}

// TestReplayOffsetsTimesAndRestore: explicit offsets and times set exactly
// the planned offsets; bad ones are refused with what to write; --state
// restore wipes the given instance's local store and, with --no-run, only
// resets (the processors started next redo the work).
func TestReplayOffsetsTimesAndRestore(t *testing.T) {
	pe := newProcessedEnv(t)
	n := pe.env.Topics
	group := groupName(pe.env.Kafka.TopicPrefix, "customer")
	before := committedOffsets(t, pe, group)[n.Memberships]
	if len(before) == 0 {
		t.Fatal("stage customer committed nothing")
	}

	for _, c := range []struct {
		cmd  replayCmd
		want string
	}{
		{replayCmd{Stages: []string{"customer"}, Offsets: []string{"0"}}, "PARTITION:OFFSET"},
		{replayCmd{Stages: []string{"customer"}, Offsets: []string{"0:1"}}, "write TOPIC:PARTITION:OFFSET"},
		{replayCmd{Stages: []string{"customer"}, Offsets: []string{"billing.v1:0:1"}}, "not billing.v1"},
		{replayCmd{Stages: []string{"customer"}, Offsets: []string{"repartition-memberships.v1:0:999999999"}}, "holds offsets"},
		{replayCmd{Stages: []string{"customer"}, Offsets: []string{"repartition-memberships.v1:99:1"}}, "no partition 99"},
		{replayCmd{Offsets: []string{"0:1"}}, "one stage"},
		{replayCmd{Stages: []string{"nosuch"}}, "no stage"},
		{replayCmd{To: "yesterday"}, "not a time"},
		{replayCmd{State: "restore"}, "--state-dir"},
		{replayCmd{Output: "shadow", State: "keep"}, "recomputes"},
		{replayCmd{Output: "shadow", State: "recompute", Stages: []string{"customer"}}, "every stage"},
	} {
		c.cmd.Yes, c.cmd.Force, c.cmd.Timeout = true, true, time.Minute
		if c.cmd.To == "" {
			c.cmd.To = "earliest"
		}
		if c.cmd.State == "" {
			c.cmd.State = "keep"
		}
		if c.cmd.Output == "" {
			c.cmd.Output = "same"
		}
		if c.cmd.Shadow == "" {
			c.cmd.Shadow = "default"
		}
		_, err := runReplay(t, pe, c.cmd)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error saying %q", c.cmd, err, c.want)
		}
	}
	if got := committedOffsets(t, pe, group)[n.Memberships]; !mapsEqual(map[string]map[int32]int64{"x": got}, map[string]map[int32]int64{"x": before}) {
		t.Fatalf("refused replays moved offsets: %v -> %v", before, got)
	}

	// --offsets: the named partition moves, the others stay.
	stateDir := t.TempDir()
	pebble := filepath.Join(stateDir, "customer", "pebble")
	if err := os.MkdirAll(pebble, 0o750); err != nil {
		t.Fatal(err)
	}
	out, err := runReplay(t, pe, replayCmd{Stages: []string{"customer"}, Offsets: []string{"repartition-memberships.v1:0:1"}, To: "earliest", State: "restore",
		StateDir: stateDir, Output: "same", Force: true, Yes: true, NoRun: true, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := committedOffsets(t, pe, group)[n.Memberships]
	for p, o := range before {
		want := o
		if p == 0 {
			want = 1
		}
		if got[p] != want {
			t.Errorf("partition %d: offset %d after --offsets 0:1, want %d", p, got[p], want)
		}
	}
	if _, err := os.Stat(pebble); !os.IsNotExist(err) {
		t.Errorf("--state restore left %s (%v)", pebble, err)
	}
	if !strings.Contains(out, "start the processors") {
		t.Errorf("--no-run output:\n%s", out)
	}

	// --to a time after every record: every partition to its end.
	out, err = runReplay(t, pe, replayCmd{Stages: []string{"customer"}, To: time.Now().Add(time.Hour).Format(time.RFC3339), State: "keep",
		Output: "same", Force: true, Yes: true, NoRun: true, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cl, err := pe.env.Kafka.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), n.Memberships)
	if err != nil {
		t.Fatal(err)
	}
	got = committedOffsets(t, pe, group)[n.Memberships]
	ends.Each(func(o kadm.ListedOffset) {
		if got[o.Partition] != o.Offset {
			t.Errorf("--to an hour ahead: partition %d at %d, want its end %d", o.Partition, got[o.Partition], o.Offset)
		}
	})
}

// TestReplayAsksOnATerminal: on a terminal (a pseudo-terminal from
// script(1)), the replay shows its plan and asks; "n" changes nothing, "y"
// resets the group.
func TestReplayAsksOnATerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("script(1) (util-linux) is needed to test the prompt on a terminal")
		}
		t.Skip("script(1) (util-linux) not installed")
	}
	env := kafkatest.Start(t)
	res := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 20, Months: 3, Seed: 2})
	in, err := ingest.New(context.Background(), env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(context.Background(), res.Files); err != nil {
		t.Fatal(err)
	}
	pe := processedEnv{env: env}
	group := groupName(env.Kafka.TopicPrefix, "servicepoint")
	args := append([]string{binary, "replay", "servicepoint", "--state", "keep", "--no-run"}, connArgs(env.Kafka)...)
	answer := func(a string) (string, int) {
		cmd := exec.Command(scriptBin, "-qec", strings.Join(quoteAll(args), " "), "/dev/null")
		cmd.Stdin = strings.NewReader(a + "\n")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := answer("n")
	if code != 1 || !strings.Contains(out, "Proceed? [y/N]") || !strings.Contains(out, "cancelled") {
		t.Fatalf("answering n: exit %d\n%s", code, out)
	}
	if got := committedOffsets(t, pe, group); len(got) != 0 {
		t.Fatalf("a cancelled replay committed offsets: %v", got)
	}
	out, code = answer("y")
	if code != 0 || !strings.Contains(out, "Offsets and state reset") {
		t.Fatalf("answering y: exit %d\n%s", code, out)
	}
	if got := committedOffsets(t, pe, group)[env.Topics.Billing]; len(got) == 0 {
		t.Fatalf("after y, the group has no offsets on %s", env.Topics.Billing)
	}
}

// quoteAll quotes arguments for the shell script(1) runs.
func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return out
}
