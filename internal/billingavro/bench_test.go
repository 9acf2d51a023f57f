package billingavro

import (
	"testing"

	"github.com/linkedin/goavro/v2"

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
