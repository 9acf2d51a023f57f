package adapter

import (
	"context"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
)

// BenchmarkSend: reads through Send into the embedded broker (in this
// process, 3 partitions), flushed at the end; reads/s is the figure of
// docs/intervals.md (target: 200,000 reads/s on a 2-core machine).
//
//	go test -run X -bench Send -benchtime 400000x ./producers/adapter/
func BenchmarkSend(b *testing.B) {
	env := kafkatest.Start(b)
	ctx := context.Background()
	c := newClient(b, env.Kafka, Config{Utility: "gec", Name: "bench"})
	defer c.Close(ctx)
	start := time.Date(2024, 6, 1, 4, 0, 0, 0, time.UTC)
	r := Read{Minutes: 15, Value: 0.25, Units: "KWH", Estimate: "A"}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = "SP-E-" + itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.ServicePointID = ids[i%len(ids)]
		r.End = start.Add(time.Duration(i/len(ids)) * 15 * time.Minute)
		if err := c.Send(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

func itoa(i int) string {
	var buf [20]byte
	n := len(buf)
	for {
		n--
		buf[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(buf[n:])
		}
	}
}
