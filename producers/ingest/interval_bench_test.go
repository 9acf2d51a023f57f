package ingest

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
)

// BenchmarkIngestInterval ingests a generated 15-minute gzip interval file
// into the embedded broker in the same process (broker work counted too).
// Reads per op: USAGESTREAM_BENCH_READS (default 960,000: 10,000 service
// points, one day). The recorded ten-million-read figure runs the broker in
// its own process: see docs/readme/intervals.md.
func BenchmarkIngestInterval(b *testing.B) {
	reads := 960_000
	if s := os.Getenv("USAGESTREAM_BENCH_READS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("USAGESTREAM_BENCH_READS=%q: %v", s, err)
		}
		reads = n
	}
	env := kafkatest.Start(b)
	path, rows, err := gen.GenerateIntervals(b.TempDir(), gen.IntervalConfig{ServicePoints: max(1, reads/96), Days: 1, Minutes: 15, Seed: 1,
		Start: 20000, Now: time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	in, err := New(context.Background(), env.Kafka, Config{Topics: env.Topics, Force: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		res, err := in.File(context.Background(), path)
		if err != nil || res.Published != rows {
			b.Fatalf("%+v %v", res, err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/time.Since(start).Seconds(), "reads/s")
}

// BenchmarkIngestGreenButton is BenchmarkIngestInterval with the same reads
// written as a Green Button file (gzip, indented XML): the two figures side
// by side are the cost of the format. USAGESTREAM_BENCH_READS as there.
func BenchmarkIngestGreenButton(b *testing.B) {
	reads := 960_000
	if s := os.Getenv("USAGESTREAM_BENCH_READS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("USAGESTREAM_BENCH_READS=%q: %v", s, err)
		}
		reads = n
	}
	env := kafkatest.Start(b)
	path, rows, err := gen.GenerateGreenButton(b.TempDir(), gen.IntervalConfig{ServicePoints: max(1, reads/96), Days: 1, Minutes: 15, Seed: 1,
		Start: 20000, Now: time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	in, err := New(context.Background(), env.Kafka, Config{Topics: env.Topics, Force: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		res, err := in.File(context.Background(), path)
		if err != nil || res.Published != rows {
			b.Fatalf("%+v %v", res, err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/time.Since(start).Seconds(), "reads/s")
}
