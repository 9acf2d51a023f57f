package ingest

import (
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
)

// BenchmarkIngestFull ingests a generated full-layout gzip file into the
// embedded broker running in the same process (so broker work is counted
// too). Rows per op: 200k. The recorded 5-million-row figure comes from
// scripts/bench-ingest.sh, which runs the broker in its own process.
func BenchmarkIngestFull(b *testing.B) {
	env := kafkatest.Start(b)
	path := filepath.Join(b.TempDir(), "opwr_gec_res_v1-19-0_full_20250315120000.gz")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	rows, _, err := gen.WriteFull(zw, gen.Config{ServicePoints: 16700, Months: 12, Seed: 1, Now: time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	zw.Close()
	f.Close()
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
	b.ReportMetric(float64(rows)*float64(b.N)/time.Since(start).Seconds(), "rows/s")
}
