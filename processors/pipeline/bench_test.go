package pipeline

import (
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

func writeGenerated(b *testing.B, dir string, cfg gen.Config) string {
	name := gen.FileName(cfg.WithDefaults(), "full")
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if _, _, err := gen.WriteFull(zw, cfg); err != nil {
		b.Fatal(err)
	}
	zw.Close()
	f.Close()
	return path
}

// BenchmarkPipeline: the stages, exactly once, on the embedded broker in the
// same process, over a generated full-layout billing file of 1,000,000 rows
// already ingested. Reports rows/s through the stages, and the end-to-end
// latency of a small incremental file once caught up (ingest committed ->
// every stage committed its effects). "domain" runs the billing stages
// (servicepoint, premise, customer: issue 4's figure); "all" adds the
// interval stage, which reads every billing row too, as `run` runs them.
func BenchmarkPipeline(b *testing.B) {
	b.Run("domain", func(b *testing.B) { benchPipeline(b, StageServicePoint, StagePremise, StageCustomer) })
	b.Run("all", func(b *testing.B) { benchPipeline(b) })
}

func benchPipeline(b *testing.B, stages ...string) {
	rows := 1_000_000
	now := time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
	for i := 0; i < b.N; i++ {
		env := kafkatest.Start(b)
		dir := b.TempDir()
		path := writeGenerated(b, dir, gen.Config{ServicePoints: rows / 12, Months: 12, Seed: 1, Now: now})
		ctx, cancel := context.WithCancel(context.Background())
		in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
		if err != nil {
			b.Fatal(err)
		}
		res, err := in.Run(ctx, []string{path})
		if err != nil {
			b.Fatal(err)
		}
		p, err := New(ctx, env.Kafka, rules.DefaultPolicy())
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		st := startStages(b, env.Kafka, dir, p, stages...)
		st.wait(b, 10*time.Minute)
		elapsed := time.Since(start)
		b.ReportMetric(float64(res[0].Published)/elapsed.Seconds(), "rows/s")

		// Latency: a small incremental file (next month for 500 service points).
		inc := writeGenerated(b, dir, gen.Config{ServicePoints: 500, Months: 1, Seed: 2, Now: now.Add(24 * time.Hour),
			Start: gen.Config{Now: now}.WithDefaults().Start.AddMonths(12)})
		if _, err := in.Run(ctx, []string{inc}); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		st.wait(b, time.Minute)
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "incremental-ms")
		st.stop(b)
		cancel()
	}
}
