package topology

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/topics"
)

// TestTopicsAreCreatedWithTheirRetention: the inputs are created to be kept
// forever and the events for the documented 90 days, instead of the
// broker's default week, which a replay from the earliest offset would
// silently start from; --retention overrides one topic.
func TestTopicsAreCreatedWithTheirRetention(t *testing.T) {
	t.Parallel()
	topo := New("p.")
	specs := map[string]topics.Spec{}
	for _, s := range topo.Specs() {
		specs[s.Name] = s
	}
	for name, want := range map[string]string{
		topo.Names.Billing: "-1", topo.Names.Intervals: "-1",
		topo.Names.Premises: "-1", topo.Names.Memberships: "-1", topo.Names.IntervalHistory: "-1",
		topo.Names.Eligibility: "7776000000", topo.Names.Corrections: "7776000000",
	} {
		if got := specs[name].Config["retention.ms"]; got != want {
			t.Errorf("%s created with retention.ms %q, want %q", name, got, want)
		}
	}

	ms, err := ParseRetention([]string{"billing.v1=30d", "p.eligibility.v1=forever", "intervals.v1=720h"}, topo)
	if err != nil {
		t.Fatal(err)
	}
	over := topo.WithRetention(ms)
	for name, want := range map[string]string{topo.Names.Billing: "2592000000", topo.Names.Eligibility: "-1", topo.Names.Intervals: "2592000000"} {
		if x, _ := over.Topic(name); x.Config["retention.ms"] != want {
			t.Errorf("--retention: %s has retention.ms %q, want %q", name, x.Config["retention.ms"], want)
		}
	}
	if x, _ := topo.Topic(topo.Names.Billing); x.Config["retention.ms"] != "-1" {
		t.Error("WithRetention changed the topology it was called on")
	}
	for _, bad := range []string{"billing.v1", "nosuch.v1=1d", "billing.v1=soon", "billing.v1=0d", "changelog-customer.v1=1d"} {
		if _, err := ParseRetention([]string{bad}, topo); err == nil {
			t.Errorf("--retention %q accepted", bad)
		}
	}
}

// TestRetentionThatDefeatsReplayIsReported: existing topics made with the
// broker's 7-day default (or compacted, or a delete-policy changelog) are
// described and each named with what is lost and the setting to change.
func TestRetentionThatDefeatsReplayIsReported(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	adm := kadm.NewClient(cl)
	topo := New("p.")
	week := "604800000"
	for name, cfg := range map[string]map[string]*string{
		topo.Names.Billing:                     {"retention.ms": &week},
		topo.Names.Intervals:                   {"retention.ms": kadm.StringPtr("-1")},
		topo.Names.Memberships:                 {"cleanup.policy": kadm.StringPtr("compact"), "retention.ms": kadm.StringPtr("-1")},
		topo.MustStage(Customer).Changelog:     {"cleanup.policy": kadm.StringPtr("delete")},
		topo.MustStage(ServicePoint).Changelog: {"cleanup.policy": kadm.StringPtr("compact")},
		topo.Names.Eligibility:                 {"retention.ms": &week},
	} {
		if _, err := adm.CreateTopic(ctx, 1, 1, cfg, name); err != nil {
			t.Fatal(err)
		}
	}
	configs, err := topo.DescribeRetention(ctx, adm)
	if err != nil {
		t.Fatal(err)
	}
	warnings := strings.Join(topo.RetentionWarnings(configs), "\n")
	for _, want := range []string{
		"topic " + topo.Names.Billing + " keeps records 168h0m0s only (retention.ms=604800000): 'usagestream replay' from the earliest offset silently starts there; set retention.ms=-1",
		"topic " + topo.Names.Memberships + " is compacted",
		"changelog " + topo.MustStage(Customer).Changelog + " is not compacted",
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("no warning %q in:\n%s", want, warnings)
		}
	}
	for _, quiet := range []string{topo.Names.Intervals + " ", topo.MustStage(ServicePoint).Changelog, topo.Names.Eligibility} {
		if strings.Contains(warnings, quiet) {
			t.Errorf("a warning about %s, whose settings are fine for replay:\n%s", quiet, warnings)
		}
	}
}
