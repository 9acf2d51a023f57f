package adapter

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/usagestream/usagestream/internal/embedded"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

var june1 = time.Date(2024, 6, 1, 0, 0, 0, 0, time.FixedZone("EDT", -4*3600))

// read is a 15-minute read of sp ending at minute m of 2024-06-01 EDT,
// given by its meter's local clock.
func read(sp string, m int, v float64) Read {
	return Read{ServicePointID: sp, LocalEnd: june1.Add(time.Duration(m) * time.Minute), Minutes: 15, Value: v, Units: "kwh", Estimate: "A"}
}

// newClient connects a Client to the test broker and registry, as cmd
// does from its flags.
func newClient(t testing.TB, kc kafkaconf.Config, cfg Config) *Client {
	t.Helper()
	rc, err := kc.NewRegistryClient()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := kc.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cfg.TopicPrefix = kc.TopicPrefix
	c, err := New(context.Background(), rc, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClient: Send and SendBatch check each read (errors name the field),
// deliver the good ones as the same records a file gives, write the refused
// ones to rejected.v1 with the client's origin, and Close flushes what is
// queued.
func TestClient(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	c := newClient(t, env.Kafka, Config{Utility: "gec", Name: "mdms-test", MaxBuffered: 4})
	bad := read("SP1", 10, 1) // 00:10 is off the 15-minute grid
	bad.Line = 7
	var re *ReadError
	if err := c.Send(ctx, bad); !errors.As(err, &re) || re.Reasons[0].Field != "time" || re.Reasons[0].Code != records.CodeOffGrid || re.Err != nil {
		t.Fatalf("off-grid read: %v", err)
	}
	for q := 1; q <= 20; q++ { // more than MaxBuffered: Send waits for room
		if err := c.Send(ctx, read("SP1", q*15, float64(q))); err != nil {
			t.Fatal(err)
		}
	}
	errs := c.SendBatch(ctx, []Read{read("SP2", 15, 1), {ServicePointID: "SP2", LocalEnd: june1.Add(15 * time.Minute), Minutes: 7, Units: "BTU"}, read("SP2", 30, 2)})
	if errs[0] != nil || errs[2] != nil || !errors.As(errs[1], &re) || strings.Join(re.Codes(), ",") != "BAD_LENGTH,BAD_UNITS" || re.Reasons[0].Field != "minutes" || re.Reasons[1].Field != "units" {
		t.Fatalf("batch errors: %v", errs)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals)
	if len(recs) != 22 {
		t.Fatalf("%d records, want 22", len(recs))
	}
	for _, m := range kafkatest.Decode(t, env.Kafka, recs) {
		r, o, err := interval.FromNative(m)
		if err != nil {
			t.Fatal(err)
		}
		if o != (interval.Origin{Utility: "gec", Kind: interval.OriginAdapter, Name: "mdms-test"}) || r.Units != "KWH" || r.EndMillis == 0 || !r.OffsetGiven || r.OffsetMinutes != -240 {
			t.Fatalf("read %+v from %+v", r, o)
		}
	}
	rejected := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Rejected))
	if len(rejected) != 2 {
		t.Fatalf("%d rejected records, want 2", len(rejected))
	}
	// The rejected topic's partitions are read one after another, so the
	// two records come in either order: find SP1's by its key field.
	off := rejected[0]
	if sp, _ := off["service_point_id"].(map[string]any); sp["string"] != "SP1" {
		off = rejected[1]
	}
	src := off["source"].(map[string]any)
	reasons := off["reasons"].([]any)
	if src["file"] != "adapter:mdms-test" || src["line"] != int64(7) || off["layout"] != "interval" ||
		reasons[0].(map[string]any)["code"] != records.CodeOffGrid || !strings.Contains(off["raw"].(string), `service_point_id="SP1"`) {
		t.Fatalf("rejected record %v", off)
	}
}

// TestEndInstantAlone is the SDK's regression test of the 1970 bug: a read
// with only its UTC end instant was stored as 1970-01-01. It is stored with
// that instant and the local date, time and offset of the utility's zone.
func TestEndInstantAlone(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, env.Kafka, Config{Utility: "gec", Name: "mdms-utc", Location: ny})
	end := time.Date(2024, 6, 1, 4, 15, 0, 0, time.UTC)
	errs := c.SendBatch(ctx, []Read{
		{ServicePointID: "SP1", End: end, Minutes: 15, Value: 1, Units: "KWH"},
		{ServicePointID: "SP1", Minutes: 15, Value: 1, Units: "KWH"},                                                               // no time at all
		{ServicePointID: "SP1", End: end, LocalEnd: end.In(ny).Add(time.Hour), Minutes: 15, Value: 1, Units: "KWH"},                // two instants
		{ServicePointID: "SP1", End: end.Add(time.Hour), LocalEnd: end.Add(time.Hour).In(ny), Minutes: 15, Value: 2, Units: "KWH"}, // both, agreeing
	})
	var re *ReadError
	if errs[0] != nil || errs[3] != nil {
		t.Fatalf("good reads refused: %v", errs)
	}
	if !errors.As(errs[1], &re) || re.Reasons[0].Field != "interval_end" || re.Reasons[0].Code != records.CodeRequired {
		t.Fatalf("a read without a time: %v", errs[1])
	}
	if !errors.As(errs[2], &re) || re.Reasons[0].Code != records.CodeInconsistentTime {
		t.Fatalf("a read with two instants: %v", errs[2])
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals))
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	r, _, err := interval.FromNative(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.EndMillis != end.UnixMilli() || r.LocalDate.ISO() != "2024-06-01" || r.LocalTime != 15 || r.OffsetMinutes != -240 || r.OffsetGiven {
		t.Fatalf("stored %+v: want the instant %s, local 2024-06-01 00:15 -0400 from the zone", r, end)
	}
}

func TestConfigRequired(t *testing.T) {
	if KindAdapter != interval.OriginAdapter || KindHTTP != interval.OriginHTTP {
		t.Fatal("the SDK's origin kinds differ from the record's")
	}
	if _, err := New(context.Background(), nil, Config{Name: "x"}); err == nil || !strings.Contains(err.Error(), "Utility") {
		t.Fatalf("a client without a utility: %v", err)
	}
	if _, err := New(context.Background(), nil, Config{Utility: "gec", Name: "x"}); err == nil || !strings.Contains(err.Error(), "registry") {
		t.Fatalf("a client without a registry: %v", err)
	}
}

// TestSendBlocksWhenFull: with the broker holding every produce request,
// MaxBuffered reads fill the client; the next Send waits inside the Kafka
// client (counted there as blocked) and returns only once the broker lets
// the batches through; then every read is delivered, once. The broker is
// the embedded one, whose requests a test can hold.
func TestSendBlocksWhenFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := embedded.Start(ctx, embedded.Config{DataDir: t.TempDir(), Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kc := kafkaconf.Config{Brokers: st.BrokerAddrs(), Registry: st.RegistryURL(), TopicPrefix: "bp."}
	names := topics.NewNames(kc.TopicPrefix)
	admin, err := kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var specs []topics.Spec
	for _, name := range names.All() {
		specs = append(specs, topics.Spec{Name: name})
	}
	if err := topics.Ensure(ctx, kadm.NewClient(admin), specs, 1, 1); err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	held := make(chan struct{}, 1)
	cluster := st.Cluster()
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		select {
		case held <- struct{}{}:
		default:
		}
		cluster.SleepControl(func() { <-release }) // other requests go on meanwhile
		return nil, nil, false                     // then the broker handles it as usual
	})

	const max = 8
	c := newClient(t, kc, Config{Utility: "gec", Name: "bp", MaxBuffered: max, Linger: time.Millisecond})
	for q := 1; q <= max; q++ {
		if err := c.Send(ctx, read("SP1", q*15, float64(q))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("no produce request reached the broker")
	}

	returned := make(chan error, 1)
	go func() { returned <- c.Send(ctx, read("SP1", (max+1)*15, max+1)) }()
	// The client counts a Produce call waiting for room as buffered: max+1
	// means the extra Send is inside it, waiting.
	for c.cl.BufferedProduceRecords() != max+1 {
		select {
		case err := <-returned:
			t.Fatalf("Send returned while %d reads were waiting for Kafka (MaxBuffered %d): %v", c.cl.BufferedProduceRecords(), max, err)
		case <-ctx.Done():
			t.Fatalf("the extra Send never waited: %d buffered", c.cl.BufferedProduceRecords())
		case <-time.After(time.Millisecond): // polling the client's counter, not timing the test
		}
	}
	select {
	case err := <-returned:
		t.Fatalf("Send returned while the buffer was full: %v", err)
	default:
	}

	close(release)
	if err := <-returned; err != nil {
		t.Fatalf("Send after the broker drained: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadAll(t, kc, names.Intervals)
	seen := map[float64]int{}
	for _, m := range kafkatest.Decode(t, kc, recs) {
		r, _, err := interval.FromNative(m)
		if err != nil {
			t.Fatal(err)
		}
		seen[r.Value]++
	}
	if len(recs) != max+1 || len(seen) != max+1 {
		t.Fatalf("%d records, %d distinct reads, want %d of each: %v", len(recs), len(seen), max+1, seen)
	}
}
