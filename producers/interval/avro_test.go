package interval

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
	"github.com/usagestream/usagestream/schemas"
)

// optString is a ["null","string"] value in goavro's native form.
func optString(s string) any {
	if s == "" {
		return nil
	}
	return goavro.Union("string", s)
}

// native is r in goavro's native form, the reference the codec's bytes are
// checked against.
func native(r *records.IntervalRead, o Origin) map[string]any {
	var line any
	if r.Line > 0 {
		line = goavro.Union("long", r.Line)
	}
	return map[string]any{
		"utility": o.Utility, "service_point_id": r.ServicePointID, "channel": r.Channel,
		"service_type": optString(r.ServiceType), "interval_end": time.UnixMilli(r.EndMillis).UTC(),
		"local_date": r.LocalDate.Time(), "local_time": int32(r.LocalTime), "utc_offset_minutes": int32(r.OffsetMinutes),
		"offset_given": r.OffsetGiven, "minutes": int32(r.Minutes), "value": r.Value, "units": r.Units,
		"is_estimate": string(rune(r.Estimate)),
		"origin":      map[string]any{"kind": o.Kind, "name": o.Name, "line": line, "file_sha256": optString(o.SHA256)},
	}
}

type sample struct {
	r records.IntervalRead
	o Origin
}

var samples = []sample{
	{records.IntervalRead{ServicePointID: "SP1", Channel: "GENERATED", ServiceType: "E", EndMillis: 1717215300000, LocalDate: dates.MustParse("20240601"),
		LocalTime: 15, OffsetMinutes: -240, OffsetGiven: true, Minutes: 15, Value: -0.25, Units: "KWH", Estimate: records.EstimateActual, Line: 12345678},
		Origin{Utility: "gec", Kind: OriginFile, Name: "opwr_gec_res_v1_interval15_20240601000000.gz", SHA256: "ab12"}},
	{records.IntervalRead{ServicePointID: "ÉP-2", EndMillis: -5, LocalDate: -3, LocalTime: 0, OffsetMinutes: 840, Minutes: 1440, Value: 1e9 - 1, Units: "THERM", Estimate: records.EstimateUser},
		Origin{Utility: "gec", Kind: OriginHTTP, Name: "mdms-1"}},
	{records.IntervalRead{ServicePointID: "SP3", ServiceType: "G", EndMillis: 1, LocalDate: 0, LocalTime: 1435, OffsetMinutes: -720, OffsetGiven: true, Minutes: 5, Units: "CCF", Estimate: records.EstimateEstimated, Line: 1},
		Origin{Utility: "x", Kind: OriginAdapter, Name: strings.Repeat("n", 300)}},
}

// TestAvroMatchesGoavro: hamba/avro's encoding is byte for byte what goavro
// (the library of internal/serde and the registry's schema text) writes for
// the embedded schema, and each side reads what the other wrote.
func TestAvroMatchesGoavro(t *testing.T) {
	t.Parallel()
	codec, err := goavro.NewCodec(schemas.MustText(schemas.IntervalRead))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range samples {
		framed, err := AppendAvro([]byte("keep"), 7, &c.r, c.o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(framed[:9], []byte{'k', 'e', 'e', 'p', 0, 0, 0, 0, 7}) {
			t.Fatalf("prefix and framing %x", framed[:9])
		}
		want, err := codec.BinaryFromNative(nil, native(&c.r, c.o))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(framed[9:], want) {
			t.Fatalf("hamba/avro\n%x\ngoavro\n%x", framed[9:], want)
		}
		got, o, err := DecodeAvro(want)
		if err != nil || !reflect.DeepEqual(got, c.r) || o != c.o {
			t.Fatalf("DecodeAvro: %v\n%+v %+v\nwant %+v %+v", err, got, o, c.r, c.o)
		}
		nat, _, err := codec.NativeFromBinary(framed[9:])
		if err != nil {
			t.Fatal(err)
		}
		got, o, err = FromNative(nat.(map[string]any))
		if err != nil || !reflect.DeepEqual(got, c.r) || o != c.o {
			t.Fatalf("FromNative: %v\n%+v %+v\nwant %+v %+v", err, got, o, c.r, c.o)
		}
	}
}

// TestDecodeMalformed: a cut record, bytes after a record, a bad union
// branch or enum index are errors, never a half-filled read.
func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	c := samples[0]
	framed, err := AppendAvro(nil, 1, &c.r, c.o)
	if err != nil {
		t.Fatal(err)
	}
	body := framed[5:]
	for cut := 0; cut < len(body); cut++ {
		if r, _, err := DecodeAvro(body[:cut]); err == nil {
			t.Fatalf("a record cut at %d of %d bytes decoded: %+v", cut, len(body), r)
		}
	}
	if _, _, err := DecodeAvro(append(bytes.Clone(body), 0)); err == nil || !strings.Contains(err.Error(), "bytes left") {
		t.Fatalf("trailing byte: %v", err)
	}
	// service_type's union index sits after three strings.
	at := 1 + len(c.o.Utility) + 1 + len(c.r.ServicePointID) + 1 + len(c.r.Channel)
	if body[at] != 2 { // zig-zag 1: the string branch
		t.Fatalf("layout changed: byte %d is %d", at, body[at])
	}
	bad := bytes.Clone(body)
	bad[at] = 4 // branch 2 of a two-branch union
	if _, _, err := DecodeAvro(bad); err == nil {
		t.Fatal("a union branch out of range decoded")
	}
	short := samples[1] // estimate is the byte before the origin's kind
	framed, _ = AppendAvro(nil, 1, &short.r, short.o)
	bad = bytes.Clone(framed[5:])
	at = len(bad) - (1 + len(short.o.Kind) + 1 + len(short.o.Name) + 1 + 1) - 1
	if bad[at] != 4 { // U, index 2
		t.Fatalf("layout changed: byte %d is %d", at, bad[at])
	}
	bad[at] = 6
	if _, _, err := DecodeAvro(bad); err == nil {
		t.Fatal("an enum index out of range decoded")
	}
	if _, err := AppendAvro(nil, 1, &records.IntervalRead{ServicePointID: "SP", Estimate: 'X'}, Origin{}); err == nil || !strings.Contains(err.Error(), "is_estimate") {
		t.Fatalf("estimate X encoded: %v", err)
	}
}

// TestDecoderResolvesOtherVersions: records written by another version of
// the schema (fields this build added later missing, a field it does not
// know present, float promoted to double) are read by Avro resolution; an
// incompatible writer schema is refused with a reason.
func TestDecoderResolvesOtherVersions(t *testing.T) {
	t.Parallel()
	var s map[string]any
	if err := json.Unmarshal([]byte(schemas.MustText(schemas.IntervalRead)), &s); err != nil {
		t.Fatal(err)
	}
	var fields []any
	for _, f := range s["fields"].([]any) {
		switch f.(map[string]any)["name"] {
		case "channel", "offset_given": // both have defaults in the embedded schema
			continue
		case "value":
			f.(map[string]any)["type"] = "float" // promoted to double
		}
		fields = append(fields, f)
	}
	fields = append(fields, map[string]any{"name": "quality", "type": "string"})
	s["fields"] = fields
	older, _ := json.Marshal(s)
	writer, err := goavro.NewCodec(string(older))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.NewDecoder(string(older))
	if err != nil {
		t.Fatal(err)
	}
	in := samples[0]
	m := native(&in.r, in.o)
	delete(m, "channel")
	delete(m, "offset_given")
	m["quality"] = "VEE-passed"
	m["value"] = float32(in.r.Value)
	b, err := writer.BinaryFromNative(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	got, o, err := d.Decode(b)
	want := in.r
	want.Channel, want.OffsetGiven = "", true // the reader's defaults
	if err != nil || !reflect.DeepEqual(got, want) || o != in.o {
		t.Fatalf("resolved: %v\n%+v %+v\nwant %+v %+v", err, got, o, want, in.o)
	}

	same, err := c.NewDecoder(schemas.MustText(schemas.IntervalRead))
	if err != nil || same.schema != c.schema {
		t.Fatalf("the embedded schema is not decoded directly: %v", err)
	}
	s["fields"] = append(fields[:1:1], fields[2:]...) // drop service_point_id: no default
	broken, _ := json.Marshal(s)
	if _, err := c.NewDecoder(string(broken)); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("a writer without service_point_id: %v", err)
	}
}
