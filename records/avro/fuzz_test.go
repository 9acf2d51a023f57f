package avro

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/schemas"
)

// fuzzRegistry is one in-memory registry for a fuzz run holding every
// schema the project publishes, as sinks and tail see them.
var fuzzRegistry = sync.OnceValues(func() (*fuzzReg, error) {
	fake := srfake.New() // lives for the test binary: fuzz workers share it
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		return nil, err
	}
	out := &fuzzReg{reg: serde.NewRegistry(cl), ids: map[int]schemas.Name{}}
	for _, n := range schemas.All() {
		id, err := out.reg.Register(context.Background(), serde.SubjectFor(string(n)), schemas.MustText(n))
		if err != nil {
			return nil, err
		}
		out.ids[id] = n
		out.order = append(out.order, id)
	}
	return out, nil
})

type fuzzReg struct {
	reg   *serde.Registry
	ids   map[int]schemas.Name
	order []int
}

func frameID(id int, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, body...)
}

// FuzzRegistryDecode: Confluent-framed values as sinks and tail read them
// (Decoder.Decode into the typed records, Decoder.AppendJSON), the writer
// schema fetched by id. raw: the input is the whole value (framing
// included); otherwise it is the body after the framing of one of the
// registered schemas.
//
// Properties: no panic; Decode and AppendJSON agree on success and id;
// every error is poison (the registry is up, so no error is an outage),
// non-empty and names what is wrong (the framing or the schema id); a
// value that decodes names a registered id and has the struct of its
// schema, renders as valid JSON, and re-encodes to bytes no longer than its
// body that render the same JSON again. Decoding never allocates for what
// a record claims beyond its bytes (a map or array block count, a string
// length): the seeds claiming 2^31 items or bytes end at once.
func FuzzRegistryDecode(f *testing.F) {
	fr, err := fuzzRegistry()
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	for i, r := range samples() {
		for id, n := range fr.ids {
			if n == r.Schema() {
				good := frameID(id, encode(f, r))
				f.Add(true, uint8(0), good)
				if i < 2 {
					f.Add(false, uint8(i), good[5:len(good)-1])
				}
			}
		}
	}
	f.Add(true, uint8(0), []byte("SP1,2024-01-01,12.5"))
	f.Add(true, uint8(0), []byte{0, 0, 0})
	f.Add(true, uint8(0), []byte{})
	f.Add(true, uint8(0), []byte{0, 0, 0, 0x7f, 0x7f, 2, 'a'})
	f.Add(true, uint8(0), []byte{1, 0, 0, 0, 1, 2, 'a'})
	f.Add(false, uint8(3), []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 'a'})                                    // a huge string length
	f.Add(false, uint8(4), []byte{})                                                                     //
	f.Add(false, uint8(5), bytes.Repeat([]byte{0x80}, 20))                                               // a varint that never ends
	f.Add(false, uint8(0), []byte{6, 'g', 'e', 'c', 0, 2, 'f', 4, 6, 'x', 0xfe, 0xff, 0xff, 0xff, 0x0f}) // 2^31 map entries
	f.Fuzz(func(t *testing.T, raw bool, which uint8, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		v := in
		if !raw {
			v = frameID(fr.order[int(which)%len(fr.order)], in)
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		d := NewDecoder(fr.reg)
		rec, id, err := d.Decode(ctx, v)
		js, jid, jerr := d.AppendJSON(ctx, nil, v)
		if (err == nil) != (jerr == nil) || id != jid {
			t.Fatalf("Decode and AppendJSON disagree: %v (id %d) / %v (id %d)", err, id, jerr, jid)
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
		name, ok := fr.ids[id]
		if !ok {
			t.Fatalf("decoded with schema id %d, which was never registered", id)
		}
		if rec.Schema() != name {
			t.Fatalf("schema id %d is %s, decoded as %s", id, name, rec.Schema())
		}
		if !json.Valid(js) {
			t.Fatalf("AppendJSON gave invalid JSON: %q", js)
		}
		again := frameID(id, encode(t, rec))
		if len(again) > len(v) {
			t.Fatalf("re-encoding %d body bytes gave %d: decoding made data up", len(v)-5, len(again)-5)
		}
		js2, _, err := d.AppendJSON(ctx, nil, again)
		if err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if !bytes.Equal(js, js2) {
			t.Fatalf("round trip changed the value:\n%s\n%s", js, js2)
		}
	})
}
