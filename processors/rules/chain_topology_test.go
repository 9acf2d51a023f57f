package rules_test

import (
	"slices"
	"testing"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/topology"
)

// TestChainFollowsTheTopology: the offline Chain runs the topology's stages,
// in data-flow order, and leaves out only the stages it cannot run with
// billing rows alone (named here with the reason).
func TestChainFollowsTheTopology(t *testing.T) {
	t.Parallel()
	notInChain := map[string]string{
		topology.Interval: "needs interval reads; Chain takes billing rows",
	}
	topo := topology.New("")
	chain := rules.NewChain(rules.DefaultPolicy()).Stages()
	var want []string
	for _, s := range topo.StageNames() {
		if _, skip := notInChain[s]; !skip {
			want = append(want, s)
		}
	}
	if !slices.Equal(chain, want) {
		t.Fatalf("Chain runs %v; the topology's stages in data-flow order, less %v, are %v", chain, notInChain, want)
	}
	for s := range notInChain {
		if _, ok := topo.Stage(s); !ok {
			t.Errorf("stage %s is excused from Chain but the topology has no such stage", s)
		}
	}
}
