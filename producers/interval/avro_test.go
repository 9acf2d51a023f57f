package interval

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/schemas"
)

// TestAvroMatchesGoavro: the hand-written encoding is byte for byte what
// goavro writes for the embedded schema, and both decoders agree.
func TestAvroMatchesGoavro(t *testing.T) {
	codec, err := goavro.NewCodec(schemas.MustText(schemas.IntervalRead))
	if err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		r Read
		o Origin
	}{
		{Read{ServicePointID: "SP1", Channel: "GENERATED", ServiceType: "E", EndMillis: 1717215300000, LocalDate: dates.MustParse("20240601"),
			LocalTime: 15, OffsetMinutes: -240, OffsetGiven: true, Minutes: 15, Value: -0.25, Units: "KWH", Estimate: billing.EstimateActual, Line: 12345678},
			Origin{Utility: "gec", Kind: OriginFile, Name: "opwr_gec_res_v1_interval15_20240601000000.gz", SHA256: "ab12"}},
		{Read{ServicePointID: "ÉP-2", EndMillis: -5, LocalDate: -3, LocalTime: 0, OffsetMinutes: 840, Minutes: 1440, Value: 1e9 - 1, Units: "THERM", Estimate: billing.EstimateUser},
			Origin{Utility: "gec", Kind: OriginHTTP, Name: "mdms-1"}},
	}
	for _, c := range reads {
		framed := AppendAvro(nil, 7, &c.r, c.o)
		if !bytes.Equal(framed[:5], []byte{0, 0, 0, 0, 7}) {
			t.Fatalf("framing %x", framed[:5])
		}
		want, err := codec.BinaryFromNative(nil, Native(&c.r, c.o))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(framed[5:], want) {
			t.Fatalf("hand-written\n%x\ngoavro\n%x", framed[5:], want)
		}
		got, o, err := DecodeAvro(framed[5:])
		if err != nil || !reflect.DeepEqual(got, c.r) || o != c.o {
			t.Fatalf("DecodeAvro: %v\n%+v %+v\nwant %+v %+v", err, got, o, c.r, c.o)
		}
		native, _, err := codec.NativeFromBinary(want)
		if err != nil {
			t.Fatal(err)
		}
		got, o, err = FromNative(native.(map[string]any))
		if err != nil || !reflect.DeepEqual(got, c.r) || o != c.o {
			t.Fatalf("FromNative: %v\n%+v %+v\nwant %+v %+v", err, got, o, c.r, c.o)
		}
		for cut := 0; cut < len(want); cut++ {
			if _, _, err := DecodeAvro(want[:cut]); err == nil {
				t.Fatalf("a record cut at %d of %d bytes decoded", cut, len(want))
			}
		}
	}
}
