package gen

import (
	"io"
	"testing"
	"time"
)

// countingWriter measures the text size without keeping it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)

// BenchmarkWriteFull measures plain-text generation on one goroutine; the
// rows/s metric is the one the brief asks for (at least about a million).
func BenchmarkWriteFull(b *testing.B) {
	cfg := Config{
		ServicePoints: 20000, Months: 24, Seed: 1,
		Now:       time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		Anomalies: map[Kind]int{U2Gap: 10, A7RateNotAllowed: 10, BadDate: 5},
	}
	var rows, bytes int64
	b.ReportAllocs()
	for b.Loop() {
		w := &countingWriter{}
		n, _, err := WriteFull(w, cfg)
		if err != nil {
			b.Fatal(err)
		}
		rows += n
		bytes += w.n
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/b.Elapsed().Seconds()/1e6, "MB/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkGenerateGzip measures the whole path to a .gz file; gzip at
// BestSpeed, not generation, sets its pace.
func BenchmarkGenerateGzip(b *testing.B) {
	cfg := Config{ServicePoints: 20000, Months: 24, Seed: 1, Now: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	dir := b.TempDir()
	var rows int64
	for b.Loop() {
		res, err := Generate(dir, cfg)
		if err != nil {
			b.Fatal(err)
		}
		rows += res.Rows
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op")
}
