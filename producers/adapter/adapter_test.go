package adapter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/embedded"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

func read(sp string, hhmm int16, v float64) records.IntervalRead {
	return records.IntervalRead{ServicePointID: sp, LocalDate: dates.MustParse("20240601"), LocalTime: hhmm, OffsetMinutes: -240,
		OffsetGiven: true, Minutes: 15, Value: v, Units: "kwh", Estimate: records.EstimateActual}
}

// TestClient: Send and SendBatch validate each read (errors name the
// field), deliver the good ones as the same records a file gives, and Close
// flushes what is queued.
func TestClient(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	c, err := New(ctx, env.Kafka, Config{Utility: "gec", Name: "mdms-test", Topics: &env.Topics, MaxBuffered: 4})
	if err != nil {
		t.Fatal(err)
	}
	bad := read("SP1", 10, 1) // 00:10 is off the 15-minute grid
	var re *ReadError
	if err := c.Send(ctx, bad); !errors.As(err, &re) || re.Reasons[0].Field != "time" || re.Reasons[0].Code != records.CodeOffGrid {
		t.Fatalf("off-grid read: %v", err)
	}
	for q := int16(1); q <= 20; q++ { // more than MaxBuffered: Send waits for room
		if err := c.Send(ctx, read("SP1", q*15, float64(q))); err != nil {
			t.Fatal(err)
		}
	}
	errs := c.SendBatch(ctx, []records.IntervalRead{read("SP2", 15, 1), {ServicePointID: "SP2", LocalDate: dates.MustParse("20240601"), Minutes: 7, Units: "BTU"}, read("SP2", 30, 2)})
	if errs[0] != nil || errs[2] != nil || !errors.As(errs[1], &re) || len(re.Reasons) != 2 || re.Reasons[0].Field != "minutes" || re.Reasons[1].Field != "units" {
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
		if o != (interval.Origin{Utility: "gec", Kind: interval.OriginAdapter, Name: "mdms-test"}) || r.Units != "KWH" || r.EndMillis == 0 {
			t.Fatalf("read %+v from %+v", r, o)
		}
	}
}

func TestConfigRequired(t *testing.T) {
	if _, err := New(context.Background(), kafkaconf.Config{}, Config{Name: "x"}); err == nil {
		t.Fatal("a client without a utility was created")
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
	if err := topics.Ensure(ctx, kadm.NewClient(admin), names.Specs(), 1, 1); err != nil {
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
	c, err := New(ctx, kc, Config{Utility: "gec", Name: "bp", Topics: &names, MaxBuffered: max, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for q := int16(1); q <= max; q++ {
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
