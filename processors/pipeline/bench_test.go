package pipeline

import (
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	goruntime "runtime"
	"syscall"
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
		var m0, m1 goruntime.MemStats
		goruntime.ReadMemStats(&m0)
		cpu0 := processCPU(b)
		start := time.Now()
		st := startStages(b, env.Kafka, dir, p, stages...)
		st.wait(b, 10*time.Minute)
		elapsed := time.Since(start)
		rowsM := float64(res[0].Published) / 1e6
		b.ReportMetric(float64(res[0].Published)/elapsed.Seconds(), "rows/s")
		// What the stages cost per million rows, whatever else the machine
		// runs: the process's CPU seconds (the embedded broker's included),
		// and the bytes allocated and collections run (the garbage
		// collector's work), which do not depend on the load.
		goruntime.ReadMemStats(&m1)
		b.ReportMetric((processCPU(b)-cpu0).Seconds()/rowsM, "cpu-s/Mrows")
		b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/1e6/rowsM, "alloc-MB/Mrows")
		b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/1e6/rowsM, "allocs-M/Mrows")
		b.ReportMetric(float64(m1.NumGC-m0.NumGC), "GCs")

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

// processCPU is the CPU time (user and system) the process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
