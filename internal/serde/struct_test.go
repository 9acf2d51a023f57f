package serde

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
)

const structSchema = `{"type":"record","name":"S","fields":[
 {"name":"name","type":"string"},
 {"name":"n","type":["null","long"],"default":null},
 {"name":"tags","type":{"type":"map","values":"string"},"default":{}}]}`

type structRec struct {
	Name string            `avro:"name"`
	N    *int64            `avro:"n"`
	Tags map[string]string `avro:"tags"`
}

// goavroAppend is the reference encoding: goavro's bytes for native, framed.
func goavroAppend(t testing.TB, g *goavro.Codec, id int, native map[string]any) []byte {
	t.Helper()
	b, err := AppendHeader(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = g.BinaryFromNative(b, native); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStructMatchesGoavro: Struct (twmb/avro) frames and encodes as goavro does,
// maps included (no block byte size), and reads goavro's bytes back.
func TestStructMatchesGoavro(t *testing.T) {
	s, err := NewStruct[structRec](structSchema)
	if err != nil {
		t.Fatal(err)
	}
	g, err := goavro.NewCodec(structSchema)
	if err != nil {
		t.Fatal(err)
	}
	seven := int64(7)
	for _, tc := range []struct {
		rec    structRec
		native map[string]any
	}{
		{structRec{Name: "a", N: &seven, Tags: map[string]string{"k": "v"}}, map[string]any{"name": "a", "n": goavro.Union("long", int64(7)), "tags": map[string]any{"k": "v"}}},
		{structRec{Name: "", Tags: map[string]string{}}, map[string]any{"name": "", "n": nil, "tags": map[string]any{}}},
	} {
		got, err := s.Append(nil, 77, &tc.rec)
		if err != nil {
			t.Fatal(err)
		}
		want := goavroAppend(t, g, 77, tc.native)
		if !bytes.Equal(got, want) {
			t.Fatalf("twmb/avro %x\ngoavro %x", got, want)
		}
		native, _, err := g.NativeFromBinary(got[5:])
		if err != nil {
			t.Fatalf("goavro does not read twmb/avro's bytes: %v", err)
		}
		if m := native.(map[string]any); m["name"] != tc.rec.Name || (m["n"] == nil) != (tc.rec.N == nil) {
			t.Fatalf("goavro read %v, want %+v", m, tc.rec)
		}
		var back structRec
		if err := s.Decoder().Decode(want[5:], &back); err != nil {
			t.Fatal(err)
		}
		if back.Name != tc.rec.Name || (back.N == nil) != (tc.rec.N == nil) || len(back.Tags) != len(tc.rec.Tags) {
			t.Fatalf("decoded %+v, want %+v", back, tc.rec)
		}
	}
	var back structRec
	if err := s.Decoder().Decode([]byte{2, 'a', 0, 0, 0}, &back); err == nil || !strings.Contains(err.Error(), "bytes left") {
		t.Fatalf("trailing bytes: %v", err)
	}
}

// TestResolverFetchesOncePerID: the writer schema of an id is fetched once;
// another version is resolved; a failing fetch and an incompatible schema
// are errors naming the id, and are retried on the next record.
func TestResolverFetchesOncePerID(t *testing.T) {
	s, err := NewStruct[structRec](structSchema)
	if err != nil {
		t.Fatal(err)
	}
	older := `{"type":"record","name":"S","fields":[{"name":"name","type":"string"},{"name":"gone","type":"int"}]}`
	broken := `{"type":"record","name":"S","fields":[{"name":"other","type":"string"}]}`
	fetches := map[int]int{}
	res := s.NewResolverFunc(func(_ context.Context, id int) (string, error) {
		fetches[id]++
		switch id {
		case 1:
			return structSchema, nil
		case 2:
			return older, nil
		case 3:
			return broken, nil
		}
		return "", errors.New("40403 schema not found")
	})
	ctx := context.Background()
	cur, err := s.Append(nil, 1, &structRec{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		var v structRec
		if id, err := res.Decode(ctx, cur, &v); err != nil || id != 1 || v.Name != "x" {
			t.Fatalf("id %d %+v %v", id, v, err)
		}
	}
	og, err := goavro.NewCodec(older)
	if err != nil {
		t.Fatal(err)
	}
	old := goavroAppend(t, og, 2, map[string]any{"name": "y", "gone": int32(5)})
	var v structRec
	if _, err := res.Decode(ctx, old, &v); err != nil || v.Name != "y" || v.N != nil {
		t.Fatalf("older version: %+v %v", v, err)
	}
	if fetches[1] != 1 || fetches[2] != 1 {
		t.Fatalf("fetches %v, want one per id", fetches)
	}
	for _, id := range []byte{3, 9} {
		b := append([]byte{}, cur...)
		b[4] = id
		for i := 0; i < 2; i++ {
			if _, err := res.Decode(ctx, b, &v); err == nil || !strings.Contains(err.Error(), "schema id "+string('0'+rune(id))) {
				t.Fatalf("id %d: %v", id, err)
			}
		}
		if fetches[int(id)] != 2 {
			t.Fatalf("id %d fetched %d times: a failure is not to be remembered", id, fetches[int(id)])
		}
	}
	if _, err := res.Decode(ctx, []byte("x"), &v); err == nil || !strings.Contains(err.Error(), "Confluent-framed") {
		t.Fatalf("unframed: %v", err)
	}
}

// TestResolverLookupEmbedded: a writer schema with the embedded schema's
// canonical form (docs and field defaults aside) reads with the embedded
// schema itself; another version is resolved, and says so.
func TestResolverLookupEmbedded(t *testing.T) {
	s, err := NewStruct[structRec](structSchema)
	if err != nil {
		t.Fatal(err)
	}
	documented := strings.Replace(structSchema, `"name":"S",`, `"name":"S","doc":"the same record",`, 1)
	older := `{"type":"record","name":"S","fields":[{"name":"name","type":"string"}]}`
	res := s.NewResolverFunc(func(_ context.Context, id int) (string, error) {
		return map[int]string{1: structSchema, 2: documented, 3: older}[id], nil
	})
	if !s.Decoder().Embedded() {
		t.Fatal("the embedded schema's own decoder is not Embedded")
	}
	for id, want := range map[int]bool{1: true, 2: true, 3: false} {
		framed, err := AppendHeader(nil, id)
		if err != nil {
			t.Fatal(err)
		}
		framed = append(framed, 2, 'x')
		gotID, body, d, err := res.Lookup(context.Background(), framed)
		if err != nil || gotID != id || string(body) != "\x02x" {
			t.Fatalf("id %d: %d %x %v", id, gotID, body, err)
		}
		if d.Embedded() != want {
			t.Fatalf("id %d: Embedded %v, want %v", id, d.Embedded(), want)
		}
	}
	if _, _, _, err := res.Lookup(context.Background(), []byte("plain")); err == nil || !strings.Contains(err.Error(), "Confluent-framed") {
		t.Fatalf("unframed: %v", err)
	}
}
