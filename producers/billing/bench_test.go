package billing

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/usagestream/usagestream/records"
)

// benchFile is a full-layout file of n distinct, valid rows, like a utility's
// monthly extract: ids, dates and values vary from row to row.
func benchFile(n int) []byte {
	var b bytes.Buffer
	b.WriteString(records.HeaderLine(records.LayoutFull))
	b.WriteByte('\n')
	for i := range n {
		fmt.Fprintf(&b, "C%08d\tP%08d\t\tCCB%07d\tRES\t\tA%08d\t2022%02d%02d\t\t\t%02d\tR%d\tSP%09d\t%s\t%d\tMain Street\t\tEugene\tOR\t974%02d\tAMI\tKWH\t%d\t%d.%02d\t2023%02d%02d\t%d\t%s\t%d.%02d\n",
			i, i, i, i, 1+i%12, 1+i%28, i%20, i%5, i, [...]string{"E", "G", "W"}[i%3], i%9000,
			i%100, 800+i%2000, i%3000, i%100, 1+i%12, 1+i%28, 28+i%5, [...]string{"A", "E", "U", ""}[i%4], i%400, i%100)
	}
	return b.Bytes()
}

// BenchmarkReaderFull measures parsing and validation only: the file is in
// memory and uncompressed, so the figure is the reader's own CPU cost per row.
func BenchmarkReaderFull(b *testing.B) {
	benchRead(b, benchFile(100_000))
}

// BenchmarkReaderFullGzip adds decompression, the usual case for real files.
func BenchmarkReaderFullGzip(b *testing.B) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(benchFile(100_000))
	zw.Close()
	benchRead(b, gz.Bytes())
}

// benchRead reads data (a full-layout file, compressed or not) per iteration
// and reports allocations, ns and rows per second per row.
func benchRead(b *testing.B, data []byte) {
	m0 := benchStart(b, len(data))
	var total int64
	for b.Loop() {
		r, err := NewReader(fullName, bytes.NewReader(data), Options{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil || rec.Row == nil {
				b.Fatalf("%v %+v", err, rec.Rejected)
			}
		}
		total += r.Stats().Accepted
	}
	b.StopTimer()
	reportPerRow(b, m0, total)
}

// benchStart sets a benchmark over size bytes going and returns the memory
// statistics reportPerRow compares with.
func benchStart(b *testing.B, size int) *runtime.MemStats {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	return &m0
}

// BenchmarkParserFull is ingest's path: NextLine, then a Parser into one
// reused row, so that the only allocation per row is the line's copy.
func BenchmarkParserFull(b *testing.B) {
	data := benchFile(100_000)
	m0 := benchStart(b, len(data))
	var total int64
	var row records.BillingRow
	for b.Loop() {
		r, err := NewReader(fullName, bytes.NewReader(data), Options{})
		if err != nil {
			b.Fatal(err)
		}
		p := r.NewParser()
		for {
			line, n, rej, err := r.NextLine()
			if err == io.EOF {
				break
			}
			if err != nil || rej != nil {
				b.Fatalf("%v %+v", err, rej)
			}
			if rej := p.Parse(&row, string(line), n); rej != nil {
				b.Fatalf("%+v", rej)
			}
			total++
		}
	}
	b.StopTimer()
	reportPerRow(b, m0, total)
}

// reportPerRow reports allocations (since m0), ns and rows per second per
// row of a benchmark that read total rows.
func reportPerRow(b *testing.B, m0 *runtime.MemStats, total int64) {
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(total), "allocs/row")
	perRow := b.Elapsed().Seconds() / float64(total)
	b.ReportMetric(perRow*1e9, "ns/row")
	b.ReportMetric(1/perRow, "rows/s")
}
