package serde

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/usagestream/usagestream/internal/quarantine"
)

func frame(id int, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, body...)
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
// (Struct/Resolver, twmb/avro, the writer schema resolved per id: 1 is the
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
	res := s.NewResolverFunc(func(_ context.Context, id int) (string, error) {
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
			if !(strings.Contains(msg, "Confluent-framed") || strings.Contains(msg, fmt.Sprintf("schema id %d", id)) ||
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
// few bytes is refused at once (decoders used to allocate for
// the claim first: goavro took 24 GB and 15 minutes, hamba/avro crashed out
// of memory; twmb/avro bounds the count by the bytes left). Found by fuzzing.
func TestHugeBlockCountsAreRefused(t *testing.T) {
	const schema = `{"type":"record","name":"R","fields":[{"name":"m","type":{"type":"map","values":"string"}},{"name":"a","type":{"type":"array","items":"string"}}]}`
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
		var v rec
		if err := s.Decoder().Decode(b, &v); err == nil {
			t.Errorf("twmb/avro %s: decoded %+v", name, v)
		}
	}
}
