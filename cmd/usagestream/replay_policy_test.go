package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/topology"
)

// TestReplayRefusesAnotherPolicyThanTheLiveOne: the processors publish the
// policy they run with; a replay into the live topics names its own policy
// (file and SHA-256) and refuses another one than theirs unless
// --force-policy; a dry run says the real run would be refused; the same
// settings in another file are the same policy; the plan's counts of
// records processed before do not exceed the records to process.
func TestReplayRefusesAnotherPolicyThanTheLiveOne(t *testing.T) {
	pe := newProcessedEnv(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "no-r2.yaml")
	os.WriteFile(other, []byte("rate_allowlist: [R1, TOU1]\n"), 0o644)
	same := filepath.Join(dir, "copy-of-default.yaml")
	os.WriteFile(same, []byte(rules.DefaultPolicyYAML()), 0o644)

	out, err := runReplay(t, pe, replayCmd{Policy: other, To: "earliest", State: "recompute", Output: "same", DryRun: true, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`policy: .*no-r2\.yaml \(sha256 [0-9a-f]{64}\)`).MatchString(out) || !strings.Contains(out, "NOT the replay's") ||
		!strings.Contains(out, "The real run would be refused: the replay's policy") || !strings.Contains(out, "is not the live processors'") || !strings.Contains(out, "the built-in policy") {
		t.Fatalf("dry run with another policy:\n%s", out)
	}
	for _, m := range regexp.MustCompile(`about (\d+) records to process, (\d+) of them processed before`).FindAllStringSubmatch(out, -1) {
		if len(m[1]) < len(m[2]) || (len(m[1]) == len(m[2]) && m[1] < m[2]) {
			t.Errorf("more records processed before than to process: %s", m[0])
		}
	}

	// Each stage's text names the repartition outputs it does not write
	// again: exactly its own (the customer stage writes none).
	topo := topology.New(pe.env.Kafka.TopicPrefix)
	for _, st := range topo.Stages {
		i := strings.Index(out, "  stage "+st.Name+" ")
		if i < 0 {
			t.Fatalf("no stage %s in the plan:\n%s", st.Name, out)
		}
		block := out[i+1:]
		if j := strings.Index(block, "\n  stage "); j >= 0 {
			block = block[:j+1]
		}
		var internal []string
		for _, o := range st.Outputs {
			if topo.Internal(o) {
				internal = append(internal, o)
			}
		}
		const say = "outputs to repartition topics are not written again"
		switch {
		case len(internal) == 0 && strings.Contains(block, say):
			t.Errorf("stage %s writes no repartition topic, yet the plan says:\n%s", st.Name, block)
		case len(internal) > 0 && !strings.Contains(block, say+" (the next stages read the records already there): "+strings.Join(internal, ", ")+"\n"):
			t.Errorf("stage %s: the plan does not name its repartition outputs %v:\n%s", st.Name, internal, block)
		}
	}

	_, err = runReplay(t, pe, replayCmd{Policy: other, To: "earliest", State: "recompute", Output: "same", Yes: true, NoRun: true, Timeout: time.Minute})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, "--force-policy") || !strings.Contains(ee.msg, "no-r2.yaml") {
		t.Fatalf("replay into the live topics with another policy: %v, want a refusal (exit 2) naming it and --force-policy", err)
	}

	out, err = runReplay(t, pe, replayCmd{Policy: same, To: "earliest", State: "recompute", Output: "same", DryRun: true, Timeout: time.Minute})
	if err != nil || strings.Contains(out, "is not the live processors'") || !strings.Contains(out, "the live processors' policy: the same") {
		t.Fatalf("the default settings in a file are the live policy (%v):\n%s", err, out)
	}

	// A shadow replay touches no live topic: any policy goes. (The stopped
	// processors' static members stay for their session timeout: --force
	// removes them below.)
	out, err = runReplay(t, pe, replayCmd{Policy: other, To: "earliest", State: "recompute", Output: "shadow", Shadow: "p", DryRun: true, Timeout: time.Minute})
	if err != nil || strings.Contains(out, "is not the live processors'") {
		t.Fatalf("shadow dry run (%v):\n%s", err, out)
	}

	out, err = runReplay(t, pe, replayCmd{Policy: other, To: "earliest", State: "recompute", Output: "same", Yes: true, NoRun: true, ForcePolicy: true, Force: true, Timeout: time.Minute})
	if err != nil || !strings.Contains(out, "Offsets and state reset") {
		t.Fatalf("--force-policy (%v):\n%s", err, out)
	}
}
