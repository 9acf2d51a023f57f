// Package topics names usagestream's Kafka topics (versioned, behind a
// configurable prefix) and creates them. It knows no domain: what each topic
// carries (schema, key, role, which stage writes and reads it) is declared by
// processors/topology, whose Specs feed Ensure. The names live here, below
// producers, so that producers, sinks and the test stack can name the topics
// they write and read without importing processors.
package topics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Names holds the full topic names for one prefix.
type Names struct {
	Billing string // accepted billing rows, keyed by service_point_id
	// Intervals holds interval reads, keyed by service_point_id with the
	// partition count of Billing: the interval stage joins the two.
	Intervals string
	Rejected  string // rejected rows with their reasons
	Files     string // file events, keyed by file SHA-256
	// IngestCheckpoints is internal: per file, the last line committed, written
	// in the same transaction as the rows, so an interrupted ingest resumes there.
	IngestCheckpoints string

	Eligibility   string // eligibility changes per (customer, premise, program), key customer_id
	Corrections   string // usage corrections (U4, U5), key service_point_id
	AccountEvents string // account events, key service_point_id
	Anomalies     string // anomalies, key service_point_id
	// Premises is internal: stage 1 -> premise stage repartition topic,
	// keyed by premise_id, so the premise stage sees every service point
	// of a premise whoever's account it is (S1).
	Premises string
	// Memberships is internal: premise stage -> stage 2 repartition topic,
	// keyed by customer_id, so stage 2 sees every premise of a customer.
	Memberships string
	// IntervalHistory is internal: interval stage -> stage 2, the months of
	// interval history of a service point for its customer (I5), key customer_id.
	IntervalHistory string
	// OperatorActions holds operator overrides on a service point (clearing
	// an anomaly), keyed by service_point_id with the partition count of
	// Billing: the service point stage reads both.
	OperatorActions string
	// OperatorHolds holds operator holds of a program (and their releases),
	// keyed by customer_id: the customer stage reads it beside the
	// repartition topics keyed by customer_id.
	OperatorHolds string

	prefix string
}

// NewNames applies prefix to the versioned base names.
func NewNames(prefix string) Names {
	return Names{
		Billing:           prefix + "billing.v1",
		Intervals:         prefix + "intervals.v1",
		Rejected:          prefix + "rejected.v1",
		Files:             prefix + "files.v1",
		IngestCheckpoints: prefix + "ingest-checkpoints.v1",
		Eligibility:       prefix + "eligibility.v1",
		Corrections:       prefix + "corrections.v1",
		AccountEvents:     prefix + "account-events.v1",
		Anomalies:         prefix + "anomalies.v1",
		Premises:          prefix + "repartition-premises.v1",
		Memberships:       prefix + "repartition-memberships.v1",
		IntervalHistory:   prefix + "repartition-interval-history.v1",
		OperatorActions:   prefix + "operator-actions.v1",
		OperatorHolds:     prefix + "operator-holds.v1",
		prefix:            prefix,
	}
}

// All lists every name, in declaration order.
func (n Names) All() []string {
	return []string{n.Billing, n.Intervals, n.Rejected, n.Files, n.IngestCheckpoints,
		n.Eligibility, n.Corrections, n.AccountEvents, n.Anomalies, n.Premises, n.Memberships, n.IntervalHistory, n.OperatorActions, n.OperatorHolds}
}

// QuarantineRetention is the retention of quarantine topics: forever
// (retention.ms -1). A quarantined record is the only copy of an input the
// stage never applied once its source topic's retention has passed; it must
// still be there whenever an operator gets to look at it and re-feed it.
// Quarantine topics stay small (bad records only); an operator deletes them
// once every record is re-fed or written off.
const QuarantineRetention = "-1"

// QuarantineSpec is the spec of the quarantine topic of consumer (a stage
// name, or "sink-" and a sink name).
func QuarantineSpec(name, consumer string) Spec {
	who := "stage " + consumer
	if sink, ok := strings.CutPrefix(consumer, "sink-"); ok {
		who = "sink " + sink
	}
	return Spec{Name: name, Config: map[string]string{"retention.ms": QuarantineRetention, "cleanup.policy": "delete"},
		Doc: "records " + who + " could not decode, with origin headers (internal/quarantine); kept forever, re-fed with 'usagestream replay --quarantine " + consumer + "'"}
}

// Spec describes one topic as Ensure creates it.
type Spec struct {
	Name      string
	Compacted bool
	// Config holds further topic configs set when the topic is created.
	Config map[string]string
	Doc    string
}

// Ensure creates the topics that do not exist yet. Existing topics are left
// as they are (their partition count is the operator's choice).
func Ensure(ctx context.Context, adm *kadm.Client, specs []Spec, partitions int32, replication int16) error {
	for _, s := range specs {
		cfg := map[string]*string{}
		for k, v := range s.Config {
			cfg[k] = kadm.StringPtr(v)
		}
		if s.Compacted {
			cfg["cleanup.policy"] = kadm.StringPtr("compact")
		}
		resp, err := adm.CreateTopic(ctx, partitions, replication, cfg, s.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s (%d partitions, replication %d): %w; check the broker's permissions or create it by hand", s.Name, partitions, replication, err)
		}
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return WaitVisible(ctx, adm, names...)
}

// WaitVisible waits until every partition of the topics has an offset to
// list. A real Kafka answers CreateTopics before its brokers' metadata holds
// the new topic, so a client that lists offsets (or produces) at once can be
// told it does not exist.
func WaitVisible(ctx context.Context, adm *kadm.Client, topics ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		l, err := adm.ListEndOffsets(ctx, topics...)
		if err == nil && l.Error() == nil {
			td, derr := adm.ListTopics(ctx, topics...)
			ok := derr == nil
			for _, t := range topics {
				d, found := td[t]
				if !found || d.Err != nil || len(d.Partitions) == 0 {
					ok = false
					break
				}
				for p := range d.Partitions {
					if _, have := l.Lookup(t, p); !have {
						ok = false
					}
				}
			}
			if ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v created but not visible in the brokers' metadata after 30 s: %w", topics, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// EnsureQuarantine creates the quarantine topic name of consumer (a stage
// name, or "sink-" and a sink name) when it is missing, with the partition
// count of like (one of the consumer's inputs; any count works, records go
// by key) and the quarantine retention. A consumer creates it when it
// starts, so the first bad record never finds it missing (a stage's
// transaction would fail; a sink would stop).
func EnsureQuarantine(ctx context.Context, adm *kadm.Client, name, consumer, like string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tds, err := adm.ListTopics(ctx, name, like)
	if err != nil {
		return fmt.Errorf("describing the quarantine topic %s: %w", name, err)
	}
	if td, ok := tds[name]; ok && td.Err == nil {
		return nil
	}
	parts := int32(1)
	if td, ok := tds[like]; ok && td.Err == nil && len(td.Partitions) > 0 {
		parts = int32(len(td.Partitions))
	}
	if err := Ensure(ctx, adm, []Spec{QuarantineSpec(name, consumer)}, parts, -1); err != nil {
		return fmt.Errorf("the quarantine topic of %s: %w", consumer, err)
	}
	return nil
}
