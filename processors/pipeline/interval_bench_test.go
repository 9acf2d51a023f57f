package pipeline

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

// BenchmarkIntervalStage: the interval stage alone, exactly once, on the
// embedded broker in the same process, over a generated 15-minute file of
// USAGESTREAM_BENCH_READS reads (default 960,000: 1,000 service points, 10
// days) already ingested. Reports reads/s through the stage. The recorded
// ten-million-read figure runs the broker in its own process: see
// docs/readme/intervals.md.
func BenchmarkIntervalStage(b *testing.B) {
	reads := 960_000
	if s := os.Getenv("USAGESTREAM_BENCH_READS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("USAGESTREAM_BENCH_READS=%q: %v", s, err)
		}
		reads = n
	}
	for i := 0; i < b.N; i++ {
		env := kafkatest.Start(b)
		dir := b.TempDir()
		path, rows, err := gen.GenerateIntervals(dir, gen.IntervalConfig{ServicePoints: max(1, reads/960), Days: 10, Minutes: 15, Seed: 1,
			Now: time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)})
		if err != nil {
			b.Fatal(err)
		}
		in, err := ingest.New(context.Background(), env.Kafka, ingest.Config{Topics: env.Topics})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := in.Run(context.Background(), []string{path}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		runIntervalStage(b, env.Kafka, dir, time.Now, nil)
		b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "reads/s")
	}
}
