// Package topology declares usagestream's data flow once, as a value (as
// goka declares a group graph): the stages with their key, input topics,
// outputs and state store, and every topic with its role, key, schema and
// configuration. Topic creation, processors/pipeline's stage list and
// catch-up wait, the replay's plan, the CLI help, the offline chain's stage
// list and the README's diagram all read it, so they cannot drift apart.
//
// Layering: topic names (the naming scheme behind a prefix) and the
// plumbing that creates topics stay in internal/topics, which imports no
// domain package, so producers (ingest, adapter), sinks and the test stack
// name topics without importing processors. What a topic means (schema,
// key, who writes and reads it, internal or not) is declared here, above
// producers and beside the runtime: this package imports internal/topics,
// internal/quarantine, schemas and processors/runtime (for the names the
// runtime derives from a stage), and nothing of the domain rules, so
// processors/rules can test its offline Chain against it without a cycle.
package topology

import (
	"fmt"
	"slices"
	"strings"

	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/schemas"
)

// Stage names: they name the stores, changelogs, quarantine topics and
// consumer groups, so changing one abandons the deployed state.
const (
	ServicePoint = "servicepoint"
	Interval     = "interval"
	Premise      = "premise"
	Customer     = "customer"
)

// Kind is a topic's role in the data flow.
type Kind uint8

const (
	// Input is external input: producers write it, stages read it.
	Input Kind = iota + 1
	// Record is producer-side output for operators and sinks (rejected rows,
	// file events); no stage reads it.
	Record
	// Checkpoint is producer-side progress only usagestream reads back.
	Checkpoint
	// Event is a stage's output for downstream consumers.
	Event
	// Repartition carries records from one stage to another under a new key.
	Repartition
	// Changelog is a stage's store, compacted; the runtime writes it and
	// creates it with its input's partition count.
	Changelog
	// Quarantine holds the input records a stage could not decode; the
	// runtime writes it.
	Quarantine
)

var kindNames = map[Kind]string{Input: "input", Record: "record", Checkpoint: "checkpoint", Event: "event",
	Repartition: "repartition", Changelog: "changelog", Quarantine: "quarantine"}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Internal reports whether topics of kind k are usagestream's own business:
// nothing outside it reads them, and their format may change between
// versions (JSON, binary state). A replay rebuilds or rewrites them;
// external topics it only reads.
func (k Kind) Internal() bool { return k == Checkpoint || k == Repartition || k == Changelog }

// Topic is one topic of the topology.
type Topic struct {
	Name string
	Kind Kind
	// Key is the field the records are keyed by, as the data contract names
	// it ("service_point_id"), or a description ("file SHA-256").
	Key string
	// Schema is the Avro schema of the values; "" for internal JSON or
	// binary values.
	Schema    schemas.Name
	Compacted bool
	// Config holds further topic configs set when the topic is created.
	Config map[string]string
	// Partitions, when not 0, is the partition count the topic must have;
	// 0 leaves it to the deployment (run --partitions).
	Partitions int32
	Doc        string
}

// Internal reports whether the topic is usagestream's own (Kind.Internal).
func (t Topic) Internal() bool { return t.Kind.Internal() }

// Spec is the topic as internal/topics creates it.
func (t Topic) Spec() topics.Spec {
	return topics.Spec{Name: t.Name, Compacted: t.Compacted, Config: t.Config, Doc: t.Doc}
}

// Stage is one stateful stage: the runtime keeps a store per key, reads the
// inputs, and lets Process write the outputs.
type Stage struct {
	Name string
	// Key is the field every input is keyed by, and so the key of the store.
	Key string
	// State names the Go type of the per-key state (documentation).
	State string
	// Doc says what the stage decides, with the rule ids it applies.
	Doc    string
	Inputs []string
	// Outputs are the event and repartition topics Process may write; the
	// runtime adds Changelog and Quarantine.
	Outputs    []string
	Changelog  string
	Quarantine string
}

// Group is the stage's consumer group under prefix (runtime.GroupName).
func (s Stage) Group(prefix string) string { return runtime.GroupName(prefix, s.Name) }

// Topology is the whole data flow for one topic prefix.
type Topology struct {
	Prefix string
	Names  topics.Names
	// Topics lists every topic: producers' first, then the stages'.
	Topics []Topic
	// Stages lists the stages in data-flow order: a stage comes after every
	// stage whose output it reads.
	Stages []Stage
}

// New returns usagestream's topology with topic names behind prefix.
func New(prefix string) Topology {
	n := topics.NewNames(prefix)
	t := Topology{Prefix: prefix, Names: n}
	t.Topics = []Topic{
		{Name: n.Billing, Kind: Input, Key: "service_point_id", Schema: schemas.BillingRow,
			Doc: "accepted billing rows (Avro BillingRow), key service_point_id"},
		{Name: n.Intervals, Kind: Input, Key: "service_point_id", Schema: schemas.IntervalRead,
			Doc: "interval reads from files, adapters and the NDJSON endpoint (Avro IntervalRead), key service_point_id, co-partitioned with billing"},
		{Name: n.OperatorActions, Kind: Input, Key: "service_point_id", Schema: schemas.OperatorAction,
			Doc: "operator overrides on a service point: clear an anomaly (Avro OperatorAction), key service_point_id, co-partitioned with billing; kept forever, the audit trail"},
		{Name: n.OperatorHolds, Kind: Input, Key: "customer_id", Schema: schemas.OperatorAction,
			Doc: "operator holds of a program for a customer at a premise, and their releases (Avro OperatorAction), key customer_id; kept forever, the audit trail"},
		{Name: n.Rejected, Kind: Record, Key: "service_point_id, or the file SHA-256", Schema: schemas.RejectedRow,
			Doc: "rejected rows with file, line, redacted raw text and reasons (Avro RejectedRow)"},
		{Name: n.Files, Kind: Record, Key: "file SHA-256", Schema: schemas.FileEvent,
			Doc: "file events RECEIVED/COMPLETED/FAILED with counts (Avro FileEvent), key file SHA-256"},
		{Name: n.IngestCheckpoints, Kind: Checkpoint, Key: "file SHA-256", Compacted: true,
			Doc: "internal: ingest progress per file (JSON), compacted"},
		{Name: n.Eligibility, Kind: Event, Key: "customer_id", Schema: schemas.EligibilityChanged,
			Doc: "eligibility changes per (customer, premise, program) with every reason (Avro EligibilityChanged), key customer_id"},
		{Name: n.Corrections, Kind: Event, Key: "service_point_id", Schema: schemas.UsageCorrected,
			Doc: "usage corrections U4/U5 with old and new value and charge (Avro UsageCorrected), key service_point_id"},
		{Name: n.AccountEvents, Kind: Event, Key: "service_point_id", Schema: schemas.AccountEvent,
			Doc: "account events (Avro AccountEvent), key service_point_id"},
		{Name: n.Anomalies, Kind: Event, Key: "service_point_id", Schema: schemas.Anomaly,
			Doc: "anomalies, raised and cleared (Avro Anomaly), key service_point_id"},
		{Name: n.Premises, Kind: Repartition, Key: "premise_id",
			Doc: "internal: repartition stage 1 -> premise stage (binary memberships, see processors/pipeline/repartition.go), key premise_id"},
		{Name: n.Memberships, Kind: Repartition, Key: "customer_id",
			Doc: "internal: repartition premise stage -> stage 2 (binary), key customer_id"},
		{Name: n.IntervalHistory, Kind: Repartition, Key: "customer_id",
			Doc: "internal: repartition interval stage -> stage 2, months of interval history for I5 (binary), key customer_id"},
	}
	t.Stages = []Stage{
		{Name: ServicePoint, Key: "service_point_id", State: "rules.ServicePoint",
			Doc:     "usage timeline and accounts per service point (U1-U12, A1-A10, S3), operator clears (OV1)",
			Inputs:  []string{n.Billing, n.OperatorActions},
			Outputs: []string{n.Corrections, n.Anomalies, n.AccountEvents, n.Premises}},
		{Name: Interval, Key: "service_point_id", State: "rules.IntervalPoint",
			Doc:     "interval coverage per day and channel, sum check against bills (I1-I4, I6, I7)",
			Inputs:  []string{n.Billing, n.Intervals},
			Outputs: []string{n.Corrections, n.Anomalies, n.IntervalHistory}},
		{Name: Premise, Key: "premise_id", State: "rules.Site",
			Doc:     "service point replacement (S1) and two customers active at once (C4) across every customer at a premise",
			Inputs:  []string{n.Premises},
			Outputs: []string{n.Anomalies, n.Memberships}},
		{Name: Customer, Key: "customer_id", State: "rules.Customer",
			Doc:     "eligibility per (customer, premise) and program (C1-C3, S2, I5), operator holds (OV2)",
			Inputs:  []string{n.Memberships, n.IntervalHistory, n.OperatorHolds},
			Outputs: []string{n.Eligibility}},
	}
	for i := range t.Stages {
		s := &t.Stages[i]
		s.Changelog = runtime.ChangelogTopic(prefix, s.Name)
		s.Quarantine = quarantine.StageTopic(prefix, s.Name)
		t.Topics = append(t.Topics, Topic{Name: s.Changelog, Kind: Changelog, Key: s.Key + " (the runtime's changelog layout)", Compacted: true,
			Doc: "internal: the state of stage " + s.Name + " (" + s.State + "), compacted; created by the runtime"})
	}
	for _, s := range t.Stages {
		q := topics.QuarantineSpec(s.Quarantine, s.Name)
		t.Topics = append(t.Topics, Topic{Name: q.Name, Kind: Quarantine, Key: "as the original", Config: q.Config, Doc: q.Doc})
	}
	t.setRetention()
	return t
}

// Topic returns the topic named name.
func (t Topology) Topic(name string) (Topic, bool) {
	i := slices.IndexFunc(t.Topics, func(x Topic) bool { return x.Name == name })
	if i < 0 {
		return Topic{}, false
	}
	return t.Topics[i], true
}

// Stage returns the stage named name.
func (t Topology) Stage(name string) (Stage, bool) {
	i := slices.IndexFunc(t.Stages, func(s Stage) bool { return s.Name == name })
	if i < 0 {
		return Stage{}, false
	}
	return t.Stages[i], true
}

// MustStage returns the stage named name and panics when there is none: for
// the stage constants of this package, which New always declares.
func (t Topology) MustStage(name string) Stage {
	s, ok := t.Stage(name)
	if !ok {
		panic("topology: no stage " + name)
	}
	return s
}

// StageNames lists the stage names in data-flow order.
func (t Topology) StageNames() []string {
	out := make([]string, len(t.Stages))
	for i, s := range t.Stages {
		out[i] = s.Name
	}
	return out
}

// Internal reports whether topic is a declared internal topic.
func (t Topology) Internal(topic string) bool {
	x, ok := t.Topic(topic)
	return ok && x.Internal()
}

// OfKind lists the names of the topics of the given kinds, in declaration
// order.
func (t Topology) OfKind(kinds ...Kind) []string {
	var out []string
	for _, x := range t.Topics {
		if slices.Contains(kinds, x.Kind) {
			out = append(out, x.Name)
		}
	}
	return out
}

// Specs lists the topics to create before anything runs: every topic but
// the changelogs, which the runtime creates with its input's partition
// count when a stage starts.
func (t Topology) Specs() []topics.Spec {
	var out []topics.Spec
	for _, x := range t.Topics {
		if x.Kind != Changelog {
			out = append(out, x.Spec())
		}
	}
	return out
}

// Producers lists the stages that write topic (as a declared output).
func (t Topology) Producers(topic string) []string {
	var out []string
	for _, s := range t.Stages {
		if slices.Contains(s.Outputs, topic) {
			out = append(out, s.Name)
		}
	}
	return out
}

// Consumers lists the stages that read topic.
func (t Topology) Consumers(topic string) []string {
	var out []string
	for _, s := range t.Stages {
		if slices.Contains(s.Inputs, topic) {
			out = append(out, s.Name)
		}
	}
	return out
}

// CoPartitioned lists the groups of topics that must have the same
// partition count: a stage's inputs and its changelog share partition
// numbers (partition p of the store holds the keys of partition p of every
// input), and a topic read by two stages joins their groups. Groups and
// their topics come in declaration order.
func (t Topology) CoPartitioned() [][]string {
	var groups [][]string
	for _, s := range t.Stages {
		g := append(slices.Clone(s.Inputs), s.Changelog)
		// Merge every existing group that shares a topic with g.
		var merged []string
		rest := groups[:0:0]
		for _, h := range groups {
			if slices.ContainsFunc(h, func(x string) bool { return slices.Contains(g, x) }) {
				merged = append(merged, h...)
			} else {
				rest = append(rest, h)
			}
		}
		for _, x := range g {
			if !slices.Contains(merged, x) {
				merged = append(merged, x)
			}
		}
		groups = append(rest, merged)
	}
	order := func(name string) int {
		return slices.IndexFunc(t.Topics, func(x Topic) bool { return x.Name == name })
	}
	for _, g := range groups {
		slices.SortStableFunc(g, func(a, b string) int { return order(a) - order(b) })
	}
	slices.SortStableFunc(groups, func(a, b []string) int { return order(a[0]) - order(b[0]) })
	return groups
}

// CheckPartitions checks partition counts found on a cluster (topic ->
// count; topics missing from counts are not checked) against the
// co-partitioning the stages need. An existing topic keeps the count it was
// created with, so a topic made by hand can break a join without this.
func (t Topology) CheckPartitions(counts map[string]int32) error {
	var errs []string
	for _, g := range t.CoPartitioned() {
		first, n := "", int32(0)
		for _, x := range g {
			c, ok := counts[x]
			if !ok || c <= 0 {
				continue
			}
			if first == "" {
				first, n = x, c
				continue
			}
			if c != n {
				errs = append(errs, fmt.Sprintf("%s has %d partitions and %s %d: they are co-partitioned (%s)", x, c, first, n, strings.Join(g, ", ")))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("topology: %s; recreate the topic with the group's partition count (or repartition it)", strings.Join(errs, "; "))
	}
	return nil
}
