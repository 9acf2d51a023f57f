package serde

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/schemas"
)

// fuzzRegistry is one in-memory registry for a fuzz run, holding every
// schema the project publishes, as sinks see them (a sink decodes whatever
// topic it is given).
var fuzzRegistry = sync.OnceValues(func() (*fuzzReg, error) {
	reg := srfake.New() // lives for the test binary: fuzz workers share it
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		return nil, err
	}
	r := NewRegistry(cl)
	out := &fuzzReg{r: r}
	for _, n := range schemas.All {
		c, err := r.Register(context.Background(), SubjectFor(string(n)), schemas.MustText(n))
		if err != nil {
			return nil, err
		}
		out.codecs = append(out.codecs, c)
	}
	return out, nil
})

type fuzzReg struct {
	r      *Registry
	codecs []*Codec
}

func frame(id int, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, body...)
}

// FuzzRegistryDecode: Confluent-framed values as sinks and tools read them
// (Registry.Decode and DecodeJSON, goavro, the writer schema fetched by id).
// raw: the input is the whole value (framing included); otherwise it is the
// body after the framing of one of the registered schemas.
//
// Properties: no panic; every error is poison (the registry is up, so no
// error is an outage), non-empty and names what is wrong (the framing or the
// schema id); a value that decodes names a registered id, renders as valid
// JSON, and re-encodes to bytes no longer than its body that decode to the
// same value again.
func FuzzRegistryDecode(f *testing.F) {
	fr, err := fuzzRegistry()
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	good, err := fr.codecs[0].Append(nil, map[string]any{
		"utility": "gec", "layout": "full",
		"source":           map[string]any{"file": "f.gz", "line": int64(2), "file_sha256": strings.Repeat("0", 64)},
		"service_point_id": "SP1", "is_account_deletion": false,
	})
	if err != nil {
		// The seed is only a convenience: fall back to a body the fuzzer grows.
		good = frame(fr.codecs[0].ID, []byte{6, 'g', 'e', 'c'})
	}
	f.Add(true, uint8(0), good)
	f.Add(false, uint8(0), good[5:])
	f.Add(true, uint8(0), []byte("SP1,2024-01-01,12.5"))
	f.Add(true, uint8(0), []byte{0, 0, 0})
	f.Add(true, uint8(0), []byte{})
	f.Add(true, uint8(0), []byte{0, 0, 0, 0x7f, 0x7f, 2, 'a'})
	f.Add(true, uint8(0), []byte{1, 0, 0, 0, 1, 2, 'a'})
	f.Add(false, uint8(0), good[5:len(good)-1])
	f.Add(false, uint8(3), []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}) // a huge string length
	f.Add(false, uint8(4), []byte{})
	f.Add(false, uint8(5), bytes.Repeat([]byte{0x80}, 20)) // a varint that never ends
	f.Fuzz(func(t *testing.T, raw bool, which uint8, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		v := in
		if !raw {
			v = frame(fr.codecs[int(which)%len(fr.codecs)].ID, in)
		}
		m, id, err := fr.r.Decode(ctx, v)
		js, jid, jerr := fr.r.DecodeJSON(ctx, v)
		if (err == nil) != (jerr == nil) || id != jid {
			t.Fatalf("Decode and DecodeJSON disagree: %v (id %d) / %v (id %d)", err, id, jerr, jid)
		}
		if err != nil {
			msg := err.Error()
			if !quarantine.IsPoison(err) || !quarantine.IsPoison(jerr) {
				t.Fatalf("not poison with the registry up: %v / %v", err, jerr)
			}
			if msg == "" || !(strings.Contains(msg, "Confluent-framed") || strings.Contains(msg, fmt.Sprintf("schema id %d", id))) {
				t.Fatalf("error names neither the framing nor the schema id %d: %q", id, msg)
			}
			return
		}
		var codec *Codec
		for _, c := range fr.codecs {
			if c.ID == id {
				codec = c
			}
		}
		if codec == nil {
			t.Fatalf("decoded with schema id %d, which was never registered", id)
		}
		if !json.Valid(js) {
			t.Fatalf("DecodeJSON gave invalid JSON: %q", js)
		}
		again, err := codec.Append(nil, m)
		if err != nil {
			t.Fatalf("a decoded value does not re-encode: %v (%v)", err, m)
		}
		if len(again)-5 > len(v)-5 {
			t.Fatalf("re-encoding %d body bytes gave %d: decoding made data up", len(v)-5, len(again)-5)
		}
		m2, id2, err := fr.r.Decode(ctx, again)
		if err != nil || id2 != id {
			t.Fatalf("re-encoded value does not decode: %v (id %d)", err, id2)
		}
		// fmt prints maps sorted and NaN as NaN, where reflect.DeepEqual
		// would fail on a NaN.
		if a, b := fmt.Sprintf("%#v", m), fmt.Sprintf("%#v", m2); a != b {
			t.Fatalf("round trip changed the value:\n%s\n%s", a, b)
		}
	})
}

// fuzzStructSchema has every kind of field the embedded record types use.
const fuzzStructSchema = `{"type":"record","name":"F","fields":[
 {"name":"id","type":"string"},
 {"name":"line","type":"long"},
 {"name":"d","type":["null",{"type":"int","logicalType":"date"}],"default":null},
 {"name":"v","type":["null","double"],"default":null},
 {"name":"ok","type":"boolean"},
 {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
 {"name":"tags","type":{"type":"map","values":"string"},"default":{}},
 {"name":"list","type":{"type":"array","items":"string"},"default":[]}]}`

type fuzzStruct struct {
	ID   string            `avro:"id"`
	Line int64             `avro:"line"`
	D    *int32            `avro:"d"`
	V    *float64          `avro:"v"`
	OK   bool              `avro:"ok"`
	E    string            `avro:"e"`
	Tags map[string]string `avro:"tags"`
	List []string          `avro:"list"`
}

// fuzzStructOlder is an older writer schema of F: without d, v and list,
// with a field the reader no longer has.
const fuzzStructOlder = `{"type":"record","name":"F","fields":[
 {"name":"id","type":"string"},
 {"name":"gone","type":"string"},
 {"name":"line","type":"int"},
 {"name":"ok","type":"boolean"},
 {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
 {"name":"tags","type":{"type":"map","values":"string"},"default":{}}]}`

// FuzzResolverDecode: Confluent-framed records as the stages read them
// (Struct/Resolver, hamba/avro, the writer schema resolved per id: 1 is the
// reader's own, 2 an older version, 3 a schema that does not compile, any
// other id unknown to the registry).
//
// Properties: no panic; an error names the framing or the schema id, and
// the record's type; a record that decodes has no more string bytes than the
// input has bytes, and re-encodes (with the reader's schema) to a record that
// decodes to the same value.
func FuzzResolverDecode(f *testing.F) {
	s, err := NewStruct[fuzzStruct](fuzzStructSchema)
	if err != nil {
		f.Fatal(err)
	}
	res := s.newResolver(func(_ context.Context, id int) (string, error) {
		switch id {
		case 1:
			return fuzzStructSchema, nil
		case 2:
			return fuzzStructOlder, nil
		case 3:
			return `{"type":"record","name":"F","fields":[{"name":"id","type":"nope"}]}`, nil
		}
		return "", &sr.ResponseError{StatusCode: 404, ErrorCode: 40403, Message: "Schema not found"}
	})
	d := int32(19800)
	x := 1.5
	good, err := s.Append(nil, 1, &fuzzStruct{ID: "SP1", Line: 7, D: &d, V: &x, OK: true, E: "B",
		Tags: map[string]string{"k": "v"}, List: []string{"a", "b"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(append([]byte{}, good...), 0))
	f.Add(frame(2, []byte{6, 'S', 'P', '1', 2, 'x', 14, 1, 2, 0}))
	f.Add(frame(3, []byte{0}))
	f.Add(frame(9, []byte{0}))
	f.Add(frame(1, []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}))                      // a string claiming 2 GiB
	f.Add(frame(1, []byte{2, 'a', 2, 0, 0, 1, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0})) // a map claiming 2^31 entries
	f.Add([]byte("plain text"))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		var v fuzzStruct
		id, err := res.Decode(context.Background(), in, &v)
		if err != nil {
			msg := err.Error()
			if !quarantine.IsPoison(err) {
				t.Fatalf("not poison: %v", err)
			}
			if !(strings.Contains(msg, "Confluent framing") || strings.Contains(msg, fmt.Sprintf("schema id %d", id)) ||
				(id == 1 || id == 2) && strings.Contains(msg, "decoding F")) {
				t.Fatalf("error names neither the framing, the schema id %d nor the record: %q", id, msg)
			}
			return
		}
		if id != 1 && id != 2 {
			t.Fatalf("decoded with schema id %d", id)
		}
		n := len(v.ID) + len(v.E)
		for k, x := range v.Tags {
			n += len(k) + len(x)
		}
		for _, x := range v.List {
			n += len(x)
		}
		if n > len(in) || len(v.Tags) > len(in) || len(v.List) > len(in) {
			t.Fatalf("%d input bytes decoded to %d string bytes, %d map entries, %d list items", len(in), n, len(v.Tags), len(v.List))
		}
		again, err := s.Append(nil, 1, &v)
		if err != nil {
			t.Fatalf("a decoded record does not re-encode: %v (%+v)", err, v)
		}
		var back fuzzStruct
		if _, err := res.Decode(context.Background(), again, &back); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if a, b := fmt.Sprintf("%#v", norm(v)), fmt.Sprintf("%#v", norm(back)); a != b {
			t.Fatalf("round trip changed the record:\n%s\n%s", a, b)
		}
	})
}

// norm dereferences pointers (so that %#v compares values, not addresses)
// and treats a nil and an empty map or list alike.
func norm(v fuzzStruct) []any {
	out := []any{v.ID, v.Line, v.OK, v.E, fmt.Sprint(v.Tags), fmt.Sprint(v.List)}
	if v.D != nil {
		out = append(out, "d", *v.D)
	}
	if v.V != nil {
		out = append(out, "v", *v.V)
	}
	return out
}

// TestHugeBlockCountsAreRefused: a map or an array claiming 2^31 items in a
// few bytes is refused at once by both decoders (they used to allocate for
// the claim first: goavro took 24 GB and 15 minutes, hamba crashed out of
// memory). Found by fuzzing.
func TestHugeBlockCountsAreRefused(t *testing.T) {
	const schema = `{"type":"record","name":"R","fields":[{"name":"m","type":{"type":"map","values":"string"}},{"name":"a","type":{"type":"array","items":"string"}}]}`
	g, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		M map[string]string `avro:"m"`
		A []string          `avro:"a"`
	}
	s, err := NewStruct[rec](schema)
	if err != nil {
		t.Fatal(err)
	}
	huge := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f} // block count 2^31-1
	for name, b := range map[string][]byte{
		"map":   append(append([]byte{}, huge...), 2, 'a', 0, 0),
		"array": append(append([]byte{0}, huge...), 2, 'a', 0),
	} {
		if _, _, err := g.NativeFromBinary(b); err == nil {
			t.Errorf("goavro %s: decoded", name)
		}
		var v rec
		if err := s.Decoder().Decode(b, &v); err == nil {
			t.Errorf("hamba %s: decoded %+v", name, v)
		}
	}
}
