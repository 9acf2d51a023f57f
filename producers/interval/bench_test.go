package interval_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
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

// BenchmarkAvro encodes a read as ingest does and decodes it as the
// interval stage does, through hamba/avro.
func BenchmarkAvro(b *testing.B) {
	r := records.IntervalRead{ServicePointID: "SP000123456", EndMillis: 1717215300000, LocalDate: 19875, LocalTime: 15, OffsetMinutes: -240,
		OffsetGiven: true, Minutes: 15, Value: 0.25, Units: "KWH", Estimate: 'A', Line: 1234567}
	o := interval.Origin{Utility: "gec", Kind: interval.OriginFile, Name: "opwr_gec_res_v1-19-0_interval15_20250301000000.gz",
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := interval.AppendAvro(make([]byte, 0, 96+len(o.Name)), 1, &r, o); err != nil {
				b.Fatal(err)
			}
		}
	})
	v, err := interval.AppendAvro(nil, 1, &r, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := interval.DecodeAvro(v[5:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
