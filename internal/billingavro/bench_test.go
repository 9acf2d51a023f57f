package billingavro

import (
	"bytes"
	"testing"

	"github.com/linkedin/goavro/v2"
	twavro "github.com/twmb/avro"

	"github.com/usagestream/usagestream/schemas"
)

// BenchmarkCodec encodes a full-layout row as ingest does and decodes it as
// the stages do, with goavro's native maps (Builder, Decode: the way before
// hamba/avro) and with the hamba/avro struct codec (Codec), for the figures
// that justify the change.
func BenchmarkCodec(b *testing.B) {
	row := sampleRows()[0]
	g, err := goavro.NewCodec(schemas.MustText(schemas.BillingRow))
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewCodec()
	if err != nil {
		b.Fatal(err)
	}
	framed, err := c.Append(nil, 1, &row, testSrc)
	if err != nil {
		b.Fatal(err)
	}
	body := framed[5:]
	b.Run("encode/goavro", func(b *testing.B) {
		b.ReportAllocs()
		bld := NewBuilder()
		for i := 0; i < b.N; i++ {
			if _, err := g.BinaryFromNative(make([]byte, 0, 384), bld.Row(&row, testSrc)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/hamba", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := c.Append(make([]byte, 0, 384), 1, &row, testSrc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/goavro", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			native, _, err := g.NativeFromBinary(body)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Decode(native.(map[string]any)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/hamba", func(b *testing.B) {
		b.ReportAllocs()
		dec := c.s.Decoder()
		for i := 0; i < b.N; i++ {
			if _, err := c.decodeBody(dec, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWire encodes and decodes the same wireRow (the struct the hamba
// codec fills) with hamba/avro and with github.com/twmb/avro, both from the
// embedded schema: the figures for moving off hamba (archived in January
// 2026) to a maintained codec.
func BenchmarkWire(b *testing.B) {
	row := sampleRows()[0]
	c, err := NewCodec()
	if err != nil {
		b.Fatal(err)
	}
	tw, err := twavro.Parse(schemas.MustText(schemas.BillingRow))
	if err != nil {
		b.Fatal(err)
	}
	framed, err := c.Append(nil, 1, &row, testSrc)
	if err != nil {
		b.Fatal(err)
	}
	body := framed[5:]
	var w wireRow
	if err := c.s.Decoder().Decode(body, &w); err != nil {
		b.Fatal(err)
	}
	if got, err := tw.AppendEncode(nil, &w); err != nil || !bytes.Equal(got, body) {
		b.Fatalf("twmb/avro writes %x (%v), hamba %x", got, err, body)
	}
	b.Run("encode/hamba", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 384)
		for b.Loop() {
			if _, err := c.s.Append(buf[:0], 1, &w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/twmb", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 384)
		for b.Loop() {
			if _, err := tw.AppendEncode(buf[:0], &w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/hamba", func(b *testing.B) {
		b.ReportAllocs()
		dec := c.s.Decoder()
		for b.Loop() {
			var out wireRow
			if err := dec.Decode(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/twmb", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out wireRow
			if _, err := tw.Decode(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
