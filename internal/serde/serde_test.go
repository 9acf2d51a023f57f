package serde

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/usagestream/usagestream/internal/quarantine"
)

const testSchema = `{"type":"record","name":"T","fields":[{"name":"utility","type":"string"},{"name":"n","type":["null","long"],"default":null}]}`

type testRec struct {
	Utility string `avro:"utility"`
	N       *int64 `avro:"n"`
}

func TestRoundTripWithConfluentFraming(t *testing.T) {
	ctx := context.Background()
	reg := srfake.New()
	defer reg.Close()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(cl)
	id, err := r.Register(ctx, SubjectFor("t.v1"), testSchema)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStruct[testRec](testSchema)
	if err != nil {
		t.Fatal(err)
	}
	seven := int64(7)
	b, err := s.Append(nil, id, &testRec{Utility: "gec", N: &seven})
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != id {
		t.Fatalf("framing: magic %d id %d, want 0 and %d", b[0], binary.BigEndian.Uint32(b[1:5]), id)
	}
	// A second registry view (a separate consumer) decodes through the registry.
	var got testRec
	gotID, err := s.NewResolver(NewRegistry(cl)).Decode(ctx, b, &got)
	if err != nil {
		t.Fatal(err)
	}
	if gotID != id || got.Utility != "gec" || got.N == nil || *got.N != 7 {
		t.Fatalf("decoded %+v (id %d)", got, gotID)
	}
	text, err := NewRegistry(cl).SchemaText(ctx, id)
	if err != nil || text != testSchema {
		t.Fatalf("schema text of id %d: %q %v", id, text, err)
	}
	// Registering again is idempotent: same id.
	again, err := NewRegistry(cl).Register(ctx, SubjectFor("t.v1"), testSchema)
	if err != nil || again != id {
		t.Fatalf("re-register: id %d err %v, want %d", again, err, id)
	}
	if _, err := r.Register(ctx, SubjectFor("bad.v1"), `{"type":"record","name":"B","fields":[{"name":"x","type":"nope"}]}`); err == nil || !strings.Contains(err.Error(), "does not compile") {
		t.Fatalf("a broken schema registered: %v", err)
	}
}

func TestSplitRejectsUnframed(t *testing.T) {
	for _, v := range [][]byte{[]byte("plain"), nil, {0, 0, 0}, {1, 0, 0, 0, 1, 2}} {
		if _, _, err := Split(v); !quarantine.IsPoison(err) || !strings.Contains(err.Error(), "Confluent-framed") {
			t.Errorf("%q: %v, want a poison error naming the framing", v, err)
		}
	}
	id, body, err := Split([]byte{0, 0, 0, 1, 2, 'x'})
	if err != nil || id != 258 || string(body) != "x" {
		t.Fatalf("id %d body %q %v", id, body, err)
	}
}
