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
	r := NewRegistry(cl)
	c, err := r.Register(ctx, SubjectFor("t.v1"), testSchema)
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.Append(nil, map[string]any{"utility": "gec", "n": Union("long", int64(7))})
	if err != nil {
		t.Fatal(err)
	}
	poison := map[string][]byte{
		"plain text":        []byte("SP1,2024-01-01,12.5"),
		"null value":        nil,
		"short frame":       {0, 0, 0},
		"unknown schema id": {0, 0, 0, 0x7f, 0x7f, 2, 'a'},
		"truncated body":    good[:6],
	}
	for name, v := range poison {
		if _, _, err := NewRegistry(cl).Decode(ctx, v); !quarantine.IsPoison(err) {
			t.Errorf("%s: %v, want a poison error", name, err)
		}
		if _, _, err := NewRegistry(cl).DecodeJSON(ctx, v); !quarantine.IsPoison(err) {
			t.Errorf("%s (JSON): %v, want a poison error", name, err)
		}
	}
	reg.Close()
	down := NewRegistry(cl)
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, _, err = down.Decode(dctx, good)
	if err == nil || quarantine.IsPoison(err) {
		t.Fatalf("registry down: %v, want a retriable (non-poison) error", err)
	}
}
