package avro

import (
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/schemas"
)

// BenchmarkBillingRow encodes a full-layout row as ingest does and decodes
// it as the stages do, with goavro's native maps (billingBuilder,
// goavroDecodeBilling: the way before struct codecs) and with BillingCodec
// (twmb/avro's struct codec, and the direct writer Append uses and reader
// Decode uses).
func BenchmarkBillingRow(b *testing.B) {
	row := billingRows()[0]
	g, err := goavro.NewCodec(schemas.MustText(schemas.BillingRow))
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewBillingCodec()
	if err != nil {
		b.Fatal(err)
	}
	framed, err := c.Append(nil, 1, &row, billingSrc)
	if err != nil {
		b.Fatal(err)
	}
	body := framed[5:]
	b.Run("encode/goavro", func(b *testing.B) {
		b.ReportAllocs()
		bld := newBillingBuilder()
		for i := 0; i < b.N; i++ {
			if _, err := g.BinaryFromNative(make([]byte, 0, 384), bld.Row(&row, billingSrc)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/twmb", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := c.appendStruct(make([]byte, 0, 384), 1, &row, billingSrc); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What Append does: appendBillingBody, field by field.
	b.Run("encode/direct", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 384)
		for i := 0; i < b.N; i++ {
			if _, err := c.Append(buf[:0], 1, &row, billingSrc); err != nil {
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
			if _, err := goavroDecodeBilling(native.(map[string]any)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/twmb", func(b *testing.B) {
		b.ReportAllocs()
		dec := c.s.Decoder()
		for i := 0; i < b.N; i++ {
			if _, err := c.decodeBody(dec, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What Decode does for the embedded schema's id: readBillingBody.
	b.Run("decode/fast", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := c.decodeFast(1, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
