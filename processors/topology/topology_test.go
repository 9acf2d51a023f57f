package topology_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/topology"
)

var update = flag.Bool("update", false, "rewrite README.md's topology block from the rendering")

func TestNewIsValid(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"", "usagestream.", "t0.shadow-x."} {
		if err := topology.New(prefix).Validate(); err != nil {
			t.Errorf("prefix %q: %v", prefix, err)
		}
	}
}

// TestValidateRejects breaks the topology one way per case and checks that
// Validate names the problem.
func TestValidateRejects(t *testing.T) {
	t.Parallel()
	n := topics.NewNames("")
	stage := func(tp *topology.Topology, name string) *topology.Stage {
		i := slices.IndexFunc(tp.Stages, func(s topology.Stage) bool { return s.Name == name })
		return &tp.Stages[i]
	}
	topic := func(tp *topology.Topology, name string) *topology.Topic {
		i := slices.IndexFunc(tp.Topics, func(x topology.Topic) bool { return x.Name == name })
		return &tp.Topics[i]
	}
	for _, tc := range []struct {
		name    string
		breakIt func(*topology.Topology)
		want    string
	}{
		{"repartition topic without consumer", func(tp *topology.Topology) {
			s := stage(tp, topology.Customer)
			s.Inputs = []string{n.Memberships}
		}, "repartition topic repartition-interval-history.v1 must have one producing and one consuming stage"},
		{"repartition topic with two producers", func(tp *topology.Topology) {
			s := stage(tp, topology.ServicePoint)
			s.Outputs = append(s.Outputs, n.Memberships)
		}, "repartition topic repartition-memberships.v1 must have one producing and one consuming stage; it has producers [servicepoint premise]"},
		{"repartition topic with two consumers", func(tp *topology.Topology) {
			tp.Stages = append(tp.Stages, topology.Stage{Name: "extra", Key: "premise_id", Inputs: []string{n.Premises},
				Changelog: "changelog-extra.v1", Quarantine: "quarantine-extra.v1"})
			tp.Topics = append(tp.Topics, topology.Topic{Name: "changelog-extra.v1", Kind: topology.Changelog},
				topology.Topic{Name: "quarantine-extra.v1", Kind: topology.Quarantine})
		}, "consumers [premise extra]"},
		{"stage before the stage it reads from", func(tp *topology.Topology) {
			i := slices.IndexFunc(tp.Stages, func(s topology.Stage) bool { return s.Name == topology.Premise })
			tp.Stages[0], tp.Stages[i] = tp.Stages[i], tp.Stages[0]
		}, "stage premise reads repartition-premises.v1 from stage servicepoint, which comes after it"},
		{"co-partitioned topics disagree", func(tp *topology.Topology) {
			topic(tp, n.Billing).Partitions = 6
			topic(tp, n.Intervals).Partitions = 3
		}, "intervals.v1 declares 3 partitions and billing.v1 6"},
		{"stage writes an undeclared topic", func(tp *topology.Topology) {
			s := stage(tp, topology.Customer)
			s.Outputs = append(s.Outputs, "somewhere.v1")
		}, "stage customer writes undeclared topic somewhere.v1"},
		{"stage writes an input topic", func(tp *topology.Topology) {
			s := stage(tp, topology.Interval)
			s.Outputs = append(s.Outputs, n.Billing)
		}, "stage interval writes billing.v1, a input topic"},
		{"stage writes another stage's changelog", func(tp *topology.Topology) {
			s := stage(tp, topology.Premise)
			s.Outputs = append(s.Outputs, "changelog-customer.v1")
		}, "stage premise writes changelog-customer.v1, a changelog topic"},
		{"stage reads an undeclared topic", func(tp *topology.Topology) {
			s := stage(tp, topology.ServicePoint)
			s.Inputs = append(s.Inputs, "elsewhere.v1")
		}, "stage servicepoint reads undeclared topic elsewhere.v1"},
		{"stage reads an event topic", func(tp *topology.Topology) {
			s := stage(tp, topology.Customer)
			s.Inputs = append(s.Inputs, n.Eligibility)
		}, "stage customer reads eligibility.v1, a event topic"},
		{"input keyed otherwise", func(tp *topology.Topology) {
			topic(tp, n.Intervals).Key = "meter_id"
		}, "stage interval is keyed by service_point_id but reads intervals.v1, keyed by meter_id"},
		{"shared changelog", func(tp *topology.Topology) {
			stage(tp, topology.Premise).Changelog = "changelog-customer.v1"
		}, "stages premise and customer share the changelog topic changelog-customer.v1"},
		{"undeclared quarantine", func(tp *topology.Topology) {
			stage(tp, topology.Premise).Quarantine = "q.v1"
		}, `stage premise: its quarantine topic "q.v1" is not declared`},
		{"duplicate topic", func(tp *topology.Topology) {
			tp.Topics = append(tp.Topics, topology.Topic{Name: n.Files, Kind: topology.Record})
		}, "topic files.v1 is declared twice"},
		{"duplicate stage", func(tp *topology.Topology) {
			tp.Stages = append(tp.Stages, tp.Stages[0])
		}, "stage servicepoint is declared twice"},
		{"topic without a kind", func(tp *topology.Topology) {
			topic(tp, n.Files).Kind = 0
		}, "topic files.v1 has no kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := topology.New("")
			tc.breakIt(&tp)
			err := tp.Validate()
			if err == nil {
				t.Fatalf("Validate accepted it; want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestCoPartitioned(t *testing.T) {
	t.Parallel()
	tp := topology.New("p.")
	want := [][]string{
		{"p.billing.v1", "p.intervals.v1", "p.operator-actions.v1", "p.changelog-servicepoint.v1", "p.changelog-interval.v1"},
		{"p.operator-holds.v1", "p.repartition-memberships.v1", "p.repartition-interval-history.v1", "p.changelog-customer.v1"},
		{"p.repartition-premises.v1", "p.changelog-premise.v1"},
	}
	got := tp.CoPartitioned()
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("CoPartitioned:\n got %v\nwant %v", got, want)
	}
}

func TestCheckPartitions(t *testing.T) {
	t.Parallel()
	tp := topology.New("")
	ok := map[string]int32{"billing.v1": 3, "intervals.v1": 3, "repartition-premises.v1": 6, "eligibility.v1": 1}
	if err := tp.CheckPartitions(ok); err != nil {
		t.Fatalf("co-partitioned counts refused: %v", err)
	}
	bad := map[string]int32{"billing.v1": 3, "intervals.v1": 4, "repartition-memberships.v1": 2, "repartition-interval-history.v1": 2}
	err := tp.CheckPartitions(bad)
	if err == nil || !strings.Contains(err.Error(), "intervals.v1 has 4 partitions and billing.v1 3") {
		t.Fatalf("CheckPartitions(%v) = %v; want intervals.v1 named", bad, err)
	}
	if strings.Contains(err.Error(), "memberships") {
		t.Fatalf("a group whose counts agree is reported: %v", err)
	}
}

// TestInternalSplit pins which topics are usagestream's own: replay
// rebuilds those and only reads the others.
func TestInternalSplit(t *testing.T) {
	t.Parallel()
	tp := topology.New("u.")
	var internal []string
	for _, x := range tp.Topics {
		if tp.Internal(x.Name) {
			internal = append(internal, strings.TrimPrefix(x.Name, "u."))
		}
	}
	want := []string{"ingest-checkpoints.v1", "repartition-premises.v1", "repartition-memberships.v1", "repartition-interval-history.v1",
		"changelog-servicepoint.v1", "changelog-interval.v1", "changelog-premise.v1", "changelog-customer.v1"}
	if !slices.Equal(internal, want) {
		t.Fatalf("internal topics:\n got %v\nwant %v", internal, want)
	}
	if tp.Internal("u.billing.v1") || tp.Internal("u.unknown.v1") {
		t.Fatal("billing or an undeclared topic counted as internal")
	}
}

// TestEveryNamedTopicIsDeclared: internal/topics names the topics for the
// layers below processors; each name must have its role declared here.
func TestEveryNamedTopicIsDeclared(t *testing.T) {
	t.Parallel()
	tp := topology.New("x.")
	for _, name := range tp.Names.All() {
		if _, ok := tp.Topic(name); !ok {
			t.Errorf("topics.Names has %s, which the topology does not declare", name)
		}
	}
	for _, s := range tp.Specs() {
		if strings.Contains(s.Name, "changelog-") {
			t.Errorf("Specs has %s: changelogs are the runtime's to create", s.Name)
		}
	}
	if len(tp.Specs()) != len(tp.Names.All())+len(tp.Stages) {
		t.Errorf("Specs has %d topics; want every named topic and one quarantine per stage", len(tp.Specs()))
	}
}

// TestDiagramNamesEveryStageAndTopic: the rendering draws every stage and
// names every topic a stage reads or writes, so a topic added to the
// topology cannot be left out of the README's picture.
func TestDiagramNamesEveryStageAndTopic(t *testing.T) {
	topo := topology.New("")
	d := topo.Diagram()
	for _, s := range topo.Stages {
		if !strings.Contains(d, fmt.Sprintf("stage %q", s.Name)) {
			t.Errorf("the diagram does not draw stage %s", s.Name)
		}
		for _, name := range append(append(slices.Clone(s.Inputs), s.Outputs...), s.Changelog, s.Quarantine) {
			if !strings.Contains(d, name) {
				t.Errorf("the diagram does not name %s (of stage %s)", name, s.Name)
			}
		}
	}
}

// TestREADMEDiagram fails when README.md's diagram is not the rendering of
// the topology; -update rewrites it.
func TestREADMEDiagram(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	const begin, end = "<!-- topology:begin", "<!-- topology:end -->"
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %s ... %s block", begin, end)
	}
	i += strings.Index(readme[i:], "\n") + 1
	want := "```\n" + topology.New("").Diagram() + "```\n"
	if readme[i:j] == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:i]+want+readme[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("README.md's topology diagram differs from topology.New(\"\").Diagram(); run go test ./processors/topology -run README -update\n--- README\n%s--- rendering\n%s", readme[i:j], want)
}
