package interval_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/gen"
	"github.com/usagestream/usagestream/producers/interval"
)

// BenchmarkReader reads a generated 15-minute file (1,000 service points,
// 10 days: 960,000 reads) from memory, uncompressed: the reader alone.
func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	cfg := gen.IntervalConfig{ServicePoints: 1000, Days: 10, Minutes: 15, Seed: 1, Now: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}
	rows, err := gen.WriteIntervals(&buf, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r, err := interval.NewReader(gen.IntervalFileName(cfg), bytes.NewReader(buf.Bytes()), interval.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || rec.Read == nil {
				b.Fatalf("%v %+v", err, rec.Rejected)
			}
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/time.Since(start).Seconds(), "reads/s")
}
