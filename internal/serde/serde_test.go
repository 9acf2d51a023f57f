package serde

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

const testSchema = `{"type":"record","name":"T","fields":[{"name":"utility","type":"string"},{"name":"n","type":["null","long"],"default":null}]}`

func TestRoundTripWithConfluentFraming(t *testing.T) {
	ctx := context.Background()
	reg := srfake.New()
	defer reg.Close()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(cl)
	c, err := r.Register(ctx, SubjectFor("t.v1"), testSchema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Append(nil, map[string]any{"utility": "gec", "n": Union("long", int64(7))})
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != c.ID {
		t.Fatalf("framing: magic %d id %d, want 0 and %d", b[0], binary.BigEndian.Uint32(b[1:5]), c.ID)
	}
	// A second registry view (a separate consumer) decodes through the registry.
	r2 := NewRegistry(cl)
	m, id, err := r2.Decode(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if id != c.ID || m["utility"] != "gec" || m["n"].(map[string]any)["long"] != int64(7) {
		t.Fatalf("decoded %v (id %d)", m, id)
	}
	js, _, err := r2.DecodeJSON(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatalf("not JSON: %s", js)
	}
	if !reflect.DeepEqual(got, map[string]any{"utility": "gec", "n": map[string]any{"long": 7.0}}) {
		t.Fatalf("json %s", js)
	}
	// Registering again is idempotent: same id.
	again, err := NewRegistry(cl).Register(ctx, SubjectFor("t.v1"), testSchema)
	if err != nil || again.ID != c.ID {
		t.Fatalf("re-register: id %d err %v, want %d", again.ID, err, c.ID)
	}
}

func TestDecodeRejectsUnframed(t *testing.T) {
	r := NewRegistry(nil)
	if _, _, err := r.Decode(context.Background(), []byte("plain")); err == nil {
		t.Fatal("unframed bytes must not decode")
	}
}
