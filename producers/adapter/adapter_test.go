package adapter

import (
	"context"
	"errors"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/interval"
)

func read(sp string, hhmm int16, v float64) interval.Read {
	return interval.Read{ServicePointID: sp, LocalDate: dates.MustParse("20240601"), LocalTime: hhmm, OffsetMinutes: -240,
		OffsetGiven: true, Minutes: 15, Value: v, Units: "kwh", Estimate: billing.EstimateActual}
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
	if err := c.Send(ctx, bad); !errors.As(err, &re) || re.Reasons[0].Field != "time" || re.Reasons[0].Code != interval.CodeOffGrid {
		t.Fatalf("off-grid read: %v", err)
	}
	for q := int16(1); q <= 20; q++ { // more than MaxBuffered: Send waits for room
		if err := c.Send(ctx, read("SP1", q*15, float64(q))); err != nil {
			t.Fatal(err)
		}
	}
	errs := c.SendBatch(ctx, []interval.Read{read("SP2", 15, 1), {ServicePointID: "SP2", Minutes: 7, Units: "BTU"}, read("SP2", 30, 2)})
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
