package greenbutton_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/greenbutton"
)

// BenchmarkReader reads a generated 15-minute Green Button file (1,000
// service points, 10 days: 960,000 readings) from memory, uncompressed: the
// reader alone, to compare with producers/interval's BenchmarkReader on the
// same reads as an Opower file.
func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	cfg := gen.IntervalConfig{ServicePoints: 1000, Days: 10, Minutes: 15, Seed: 1, Now: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}
	rows, err := gen.WriteGreenButton(&buf, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r, err := greenbutton.NewReader(gen.GreenButtonFileName(cfg), bytes.NewReader(buf.Bytes()), greenbutton.Options{Minutes: 15, Location: cfg.Location})
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || rec.Read == nil {
				b.Fatalf("%v %+v", err, rec.Rejected)
			}
			n++
		}
		if n != rows {
			b.Fatalf("%d reads, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/time.Since(start).Seconds(), "reads/s")
}
