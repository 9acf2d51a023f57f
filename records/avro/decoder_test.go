package avro

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	twavro "github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden JSON files of testdata/json")

func newRegistry(t testing.TB) (*serde.Registry, *sr.Client, *srfake.Registry) {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return serde.NewRegistry(cl), cl, fake
}

func frame(t testing.TB, id int, body []byte) []byte {
	t.Helper()
	b, err := serde.AppendHeader(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, body...)
}

// TestDecoderReadsHistory: records written by goavro with every released
// version of a schema (schemas/history) decode, through the registry, into
// today's struct: fields the older version lacks take their defaults.
func TestDecoderReadsHistory(t *testing.T) {
	reg, _, _ := newRegistry(t)
	ctx := context.Background()
	versions := 0
	err := fs.WalkDir(os.DirFS("../../schemas/history"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		text, err := os.ReadFile(filepath.Join("../../schemas/history", p))
		if err != nil {
			return err
		}
		name := schemas.Name(path.Dir(p))
		id, err := reg.Register(ctx, serde.SubjectFor(string(name)+"-"+path.Base(p)), string(text))
		if err != nil {
			return err
		}
		old := twavro.MustParse(string(text)).Root().ExpandReferences()
		g, err := goavro.NewCodec(string(text))
		if err != nil {
			return err
		}
		versions++
		n := 0
		for _, r := range samples() {
			if r.Schema() != name {
				continue
			}
			n++
			body, err := g.BinaryFromNative(nil, toNative(old, reflect.ValueOf(r).Elem(), ""))
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			got, gotID, err := NewDecoder(reg).Decode(ctx, frame(t, id, body))
			if err != nil || gotID != id {
				return fmt.Errorf("%s: id %d: %w", p, gotID, err)
			}
			want := reflect.New(reflect.TypeOf(r).Elem())
			want.Elem().Set(reflect.ValueOf(r).Elem())
			for i := 0; i < want.Elem().NumField(); i++ {
				tag := want.Elem().Type().Field(i).Tag.Get("avro")
				if !slices.ContainsFunc(old.Fields, func(f twavro.SchemaField) bool { return f.Name == tag }) {
					want.Elem().Field(i).SetZero() // every field added since has a zero default
				}
			}
			if !reflect.DeepEqual(got, want.Interface()) {
				return fmt.Errorf("%s: decoded\n%+v\nwant\n%+v", p, got, want.Interface())
			}
		}
		if n == 0 {
			return fmt.Errorf("%s: no sample", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if versions < len(schemas.All())+1 {
		t.Fatalf("%d released versions read, want every one of schemas/history", versions)
	}
}

// TestDecoderErrors: a record of a schema that is not ours renders as JSON
// but has no typed record; an id the registry never issued and bytes the
// schema does not read are poison; a registry that cannot be reached is not.
func TestDecoderErrors(t *testing.T) {
	reg, cl, fake := newRegistry(t)
	ctx := context.Background()
	foreign := `{"type":"record","name":"Other","namespace":"x","fields":[{"name":"a","type":"string"}]}`
	id, err := reg.Register(ctx, "other-value", foreign)
	if err != nil {
		t.Fatal(err)
	}
	v := frame(t, id, []byte{2, 'z'})
	d := NewDecoder(reg)
	if _, _, err := d.Decode(ctx, v); !quarantine.IsPoison(err) || !strings.Contains(err.Error(), "x.Other") {
		t.Fatalf("foreign record: %v", err)
	}
	js, _, err := d.AppendJSON(ctx, nil, v)
	if err != nil || string(js) != `{"a":"z"}` {
		t.Fatalf("foreign record as JSON: %s %v", js, err)
	}
	aid, err := reg.Register(ctx, "a-value", schemas.MustText(schemas.Anomaly))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"unframed":       []byte("plain"),
		"unknown id":     frame(t, 9999, []byte{0}),
		"truncated":      frame(t, aid, []byte{2}),
		"trailing bytes": frame(t, aid, append(encode(t, samples()[6]), 0)),
	} {
		if _, _, err := NewDecoder(reg).Decode(ctx, b); !quarantine.IsPoison(err) {
			t.Errorf("%s: %v, want poison", name, err)
		}
		if _, _, err := NewDecoder(reg).AppendJSON(ctx, nil, b); !quarantine.IsPoison(err) {
			t.Errorf("%s (JSON): %v, want poison", name, err)
		}
	}
	fake.Close()
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, _, err := NewDecoder(serde.NewRegistry(cl)).Decode(dctx, frame(t, aid, encode(t, samples()[6]))); err == nil || quarantine.IsPoison(err) {
		t.Fatalf("registry down: %v, want a retriable error", err)
	}
}

// TestJSONGolden: every record type renders as its golden file says
// (testdata/json/<schema>.jsonl, one line per sample; -update rewrites
// them), with fields in the schema's order at every level, ISO dates,
// RFC 3339 timestamps, bare union values, enum symbols, and the same JSON
// from the typed record as from its framed bytes through the registry.
func TestJSONGolden(t *testing.T) {
	reg, _, _ := newRegistry(t)
	ctx := context.Background()
	dec := NewDecoder(reg)
	lines := map[schemas.Name][]string{}
	for _, r := range samples() {
		js, err := appendAny(r)
		if err != nil {
			t.Fatalf("%s: %v", r.Schema(), err)
		}
		id, err := reg.Register(ctx, serde.SubjectFor(string(r.Schema())), schemas.MustText(r.Schema()))
		if err != nil {
			t.Fatal(err)
		}
		viaReg, _, err := dec.AppendJSON(ctx, nil, frame(t, id, encode(t, r)))
		if err != nil || string(viaReg) != string(js) {
			t.Fatalf("%s: through the registry %s (%v), from the struct %s", r.Schema(), viaReg, err, js)
		}
		m, _ := codecs()
		checkOrder(t, namedRoot(m[r.Schema()]).ExpandReferences(), js)
		lines[r.Schema()] = append(lines[r.Schema()], string(js))
	}
	for name, ls := range lines {
		file := filepath.Join("testdata", "json", string(name)+".jsonl")
		got := strings.Join(ls, "\n") + "\n"
		if *update {
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (run the test with -update to write it)", err)
		}
		if got != string(want) {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", file, got, want)
		}
	}
}

func appendAny(r Record) ([]byte, error) {
	switch v := r.(type) {
	case *EligibilityChanged:
		return AppendJSON(nil, v)
	case *UsageCorrected:
		return AppendJSON(nil, v)
	case *AccountEvent:
		return AppendJSON(nil, v)
	case *Anomaly:
		return AppendJSON(nil, v)
	case *RejectedRow:
		return AppendJSON(nil, v)
	case *FileEvent:
		return AppendJSON(nil, v)
	case *IntervalRead:
		return AppendJSON(nil, v)
	case *BillingRow:
		return AppendJSON(nil, v)
	case *OperatorAction:
		return AppendJSON(nil, v)
	}
	return nil, fmt.Errorf("%T", r)
}

// checkOrder fails unless the keys of every JSON object in js that renders
// a record come in the order of the record's fields.
func checkOrder(t *testing.T, n *twavro.SchemaNode, js []byte) {
	t.Helper()
	var v any
	dec := json.NewDecoder(strings.NewReader(string(js)))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %s", js)
	}
	var walk func(n *twavro.SchemaNode, raw json.RawMessage)
	walk = func(n *twavro.SchemaNode, raw json.RawMessage) {
		switch n.Type {
		case "record":
			d := json.NewDecoder(strings.NewReader(string(raw)))
			if _, err := d.Token(); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for d.More() {
				k, _ := d.Token()
				var val json.RawMessage
				if err := d.Decode(&val); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k.(string))
				for i := range n.Fields {
					if n.Fields[i].Name == k {
						walk(&n.Fields[i].Type, val)
					}
				}
			}
			var want []string
			for _, f := range n.Fields {
				want = append(want, f.Name)
			}
			if !slices.Equal(keys, want) {
				t.Errorf("%s: keys %v, want the schema's order %v", n.Name, keys, want)
			}
		case "array":
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				walk(n.Items, it)
			}
		case "union":
			if string(raw) != "null" {
				for i := range n.Branches {
					if n.Branches[i].Type != "null" {
						walk(&n.Branches[i], raw)
					}
				}
			}
		}
	}
	walk(n, js)
}
