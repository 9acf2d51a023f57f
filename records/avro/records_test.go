package avro

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"
	twavro "github.com/twmb/avro"

	"github.com/usagestream/usagestream/schemas"
)

// encode is r through its embedded schema's codec (twmb/avro), unframed.
func encode(t testing.TB, r Record) []byte {
	t.Helper()
	m, err := codecs()
	if err != nil {
		t.Fatal(err)
	}
	b, err := m[r.Schema()].(interface {
		Schema() *twavro.Schema
	}).Schema().Encode(r)
	if err != nil {
		t.Fatalf("%s: %v", r.Schema(), err)
	}
	return b
}

// TestMatchesGoavro: for every record type, twmb/avro writes the bytes
// goavro writes for the same data (goavro's native form built from the
// schema and the struct tags), goavro reads twmb/avro's bytes to that same
// native value, and twmb/avro reads goavro's bytes back to the same struct.
func TestMatchesGoavro(t *testing.T) {
	seen := map[schemas.Name]bool{}
	for _, r := range samples() {
		name := r.Schema()
		seen[name] = true
		g, err := goavro.NewCodec(schemas.MustText(name))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := codecs()
		node := namedRoot(m[name]).ExpandReferences()
		native := toNative(node, reflect.ValueOf(r).Elem(), "")
		want, err := g.BinaryFromNative(nil, native)
		if err != nil {
			t.Fatalf("%s: goavro: %v", name, err)
		}
		got := encode(t, r)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s:\ntwmb/avro %x\ngoavro    %x", name, got, want)
		}
		back, rest, err := g.NativeFromBinary(got)
		if err != nil || len(rest) > 0 {
			t.Fatalf("%s: goavro does not read twmb/avro's bytes: %v (%d left)", name, err, len(rest))
		}
		if !reflect.DeepEqual(back, native) {
			t.Fatalf("%s: goavro read\n%v\nwant\n%v", name, back, native)
		}
		typed := reflect.New(reflect.TypeOf(r).Elem()).Interface().(Record)
		dec, err := decoderFor(name, schemas.MustText(name))
		if err != nil {
			t.Fatal(err)
		}
		if typed, err = dec(want); err != nil {
			t.Fatalf("%s: twmb/avro does not read goavro's bytes: %v", name, err)
		}
		if !reflect.DeepEqual(typed, r) {
			t.Fatalf("%s: twmb/avro read\n%+v\nwant\n%+v", name, typed, r)
		}
	}
	for _, n := range schemas.All() {
		if !seen[n] {
			t.Errorf("no sample of %s", n)
		}
	}
}
