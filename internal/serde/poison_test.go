package serde

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/usagestream/usagestream/internal/quarantine"
)

// A record that cannot be decoded is poison (quarantined, processing goes
// on); a registry that does not answer is an outage (retried).
func TestDecodeErrorsTellPoisonFromOutage(t *testing.T) {
	ctx := context.Background()
	reg := srfake.New()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewRegistry(cl).Register(ctx, SubjectFor("t.v1"), testSchema)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStruct[testRec](testSchema)
	if err != nil {
		t.Fatal(err)
	}
	seven := int64(7)
	good, err := s.Append(nil, id, &testRec{Utility: "gec", N: &seven})
	if err != nil {
		t.Fatal(err)
	}
	poison := map[string][]byte{
		"plain text":        []byte("SP1,2024-01-01,12.5"),
		"null value":        nil,
		"short frame":       {0, 0, 0},
		"unknown schema id": {0, 0, 0, 0x7f, 0x7f, 2, 'a'},
		"truncated body":    good[:6],
		"trailing bytes":    append(append([]byte{}, good...), 0),
	}
	for name, v := range poison {
		var rec testRec
		if _, err := s.NewResolver(NewRegistry(cl)).Decode(ctx, v, &rec); !quarantine.IsPoison(err) {
			t.Errorf("%s: %v, want a poison error", name, err)
		}
	}
	reg.Close()
	down := NewRegistry(cl)
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var rec testRec
	_, err = s.NewResolver(down).Decode(dctx, good, &rec)
	if err == nil || quarantine.IsPoison(err) {
		t.Fatalf("registry down: %v, want a retriable (non-poison) error", err)
	}
	if _, err := down.SchemaText(dctx, id); err == nil || quarantine.IsPoison(err) {
		t.Fatalf("registry down, schema text: %v, want a retriable (non-poison) error", err)
	}
}
