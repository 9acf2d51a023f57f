package replay

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/quarantine"
)

func TestCheckConsumer(t *testing.T) {
	for _, ok := range []string{"servicepoint", "interval", "premise", "customer", "sink-jsonl", "sink-my_hook"} {
		if err := CheckConsumer(ok); err != nil {
			t.Errorf("CheckConsumer(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "stage1", "sink-", "sink-a/b", "Customer"} {
		err := CheckConsumer(bad)
		if err == nil || !strings.Contains(err.Error(), "servicepoint, interval, premise, customer") {
			t.Errorf("CheckConsumer(%q) = %v; want an error listing the stages", bad, err)
		}
	}
}

// TestDropDuplicates: a record a sink quarantined twice is re-fed once;
// records without origin are neither duplicates nor re-fed.
func TestDropDuplicates(t *testing.T) {
	src := func(topic string, p int32, off int64) quarantine.Quarantined {
		var q quarantine.Quarantined
		q.Source.Topic, q.Source.Partition, q.Source.Offset = topic, p, off
		return q
	}
	to := &kgo.Record{Topic: "b"}
	items := []refeedItem{
		{to: to, q: src("b", 0, 5)},
		{to: to, q: src("b", 0, 6)},
		{to: to, q: src("b", 0, 5)},
		{to: to, q: src("b", 1, 5)},
		{err: errTest},
		{err: errTest},
	}
	if n := dropDuplicates(items); n != 1 {
		t.Fatalf("dropDuplicates = %d, want 1", n)
	}
	for i, it := range items {
		if it.dup != (i == 2) {
			t.Errorf("item %d: dup = %v", i, it.dup)
		}
	}
}

var errTest = errors.New("no origin headers")

func TestRefeedResultText(t *testing.T) {
	if got := (RefeedResult{}).String(); got != "Nothing to re-feed.\n" {
		t.Errorf("empty result: %q", got)
	}
	got := RefeedResult{Consumer: "premise", Quarantine: "q.v1", PerTopic: map[string]int{"z.v1": 1, "a.v1": 2}, Stuck: 3}.String()
	want := "re-fed 2 records to a.v1, addressed to premise\nre-fed 1 records to z.v1, addressed to premise\n3 records could not be re-fed (listed above; they stay on q.v1)\n"
	if got != want {
		t.Errorf("result text:\n%s\nwant\n%s", got, want)
	}
}
