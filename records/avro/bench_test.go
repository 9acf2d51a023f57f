package avro

import (
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/schemas"
)

// BenchmarkEvent encodes and decodes an eligibility event (two reasons) as
// the processors and the PostgreSQL sink do, and renders it as JSON as the
// JSON Lines sink and tail do; goavro (native maps, Avro JSON) is the
// before.
func BenchmarkEvent(b *testing.B) {
	r := samples()[0].(*EligibilityChanged)
	body := encode(b, r)
	g, err := goavro.NewCodec(schemas.MustText(schemas.EligibilityChanged))
	if err != nil {
		b.Fatal(err)
	}
	s, err := Codec[EligibilityChanged]()
	if err != nil {
		b.Fatal(err)
	}
	m, _ := codecs()
	native := toNative(namedRoot(m[schemas.EligibilityChanged]).ExpandReferences(), reflect.ValueOf(r).Elem(), "")
	js := NewJSONSchema(s.Schema())
	b.Run("encode/goavro", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.BinaryFromNative(nil, native); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/twmb", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Append(nil, 1, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/goavro", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := g.NativeFromBinary(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/twmb", func(b *testing.B) {
		b.ReportAllocs()
		dec := s.Decoder()
		for b.Loop() {
			var v EligibilityChanged
			if err := dec.Decode(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json/goavro", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, _, err := g.NativeFromBinary(body)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := g.TextualFromNative(nil, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json/twmb", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := js.AppendBody(nil, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
