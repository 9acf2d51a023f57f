package validate

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/gen"
)

// BenchmarkValidate: a generated full-layout gzip file of 300,000 rows
// (25,000 service points, 12 months), read and run through every stage, in
// memory and through the Pebble store with its default cache. The 5-million
// row figure of the README is measured on the binary (docs/readme/validate.md).
func BenchmarkValidate(b *testing.B) {
	res, err := gen.Generate(b.TempDir(), gen.Config{ServicePoints: 25000, Months: 12, Seed: 1, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	for _, store := range []string{StoreMemory, StorePebble} {
		b.Run(store, func(b *testing.B) {
			tmp := b.TempDir()
			var rows int64
			for b.Loop() {
				rep, err := Run(context.Background(), res.Files, Options{Policy: rules.DefaultPolicy(), Store: store, TempDir: tmp, Examples: 200})
				if err != nil {
					b.Fatal(err)
				}
				rows += rep.Lines
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkValidateFiles validates the files named by the glob in
// USAGESTREAM_BENCH_VALIDATE_FILES through the Pebble store, as the command
// does for a large input: the way to profile the 5-million-row figure
// (-cpuprofile) without the report writers. Skipped when unset.
func BenchmarkValidateFiles(b *testing.B) {
	glob := os.Getenv("USAGESTREAM_BENCH_VALIDATE_FILES")
	if glob == "" {
		b.Skip("set USAGESTREAM_BENCH_VALIDATE_FILES to a glob of billing files")
	}
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		b.Fatalf("USAGESTREAM_BENCH_VALIDATE_FILES=%q matches no file (%v)", glob, err)
	}
	tmp := b.TempDir()
	var rows int64
	for b.Loop() {
		rep, err := Run(context.Background(), files, Options{Policy: rules.DefaultPolicy(), Store: StorePebble, TempDir: tmp, Examples: 200})
		if err != nil {
			b.Fatal(err)
		}
		rows += rep.Lines
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
