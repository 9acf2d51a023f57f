package avro

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/records"
	"github.com/usagestream/usagestream/schemas"
)

// oddBillingRow widens randomBillingRow with the values at the ends of each
// type that ingest never writes but a body may hold: NaN, infinities and
// -0, the extreme dates, durations and lines, extra columns of unicode and
// empty names.
func oddBillingRow(rng *rand.Rand) records.BillingRow {
	r := randomBillingRow(rng)
	float := func() float64 {
		return []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.MaxFloat64}[rng.IntN(5)]
	}
	date := func() dates.Date { return []dates.Date{math.MinInt32, math.MaxInt32, -719162}[rng.IntN(3)] }
	switch rng.IntN(4) {
	case 0:
		r.BldgSqFoot.Value, r.UsageValue, r.UsageCharge.Value = float(), float(), float()
	case 1:
		r.ActiveDate, r.InactiveDate.Date, r.DateTo = date(), date(), date()
		r.Duration = []int32{math.MinInt32, -1, -64}[rng.IntN(3)]
	case 2:
		r.Line = []int64{math.MinInt64, -1, -64}[rng.IntN(3)]
	case 3:
		r.Extra = append(r.Extra, records.Attribute{Name: "Ünïcode ✓", Value: "Café"}, records.Attribute{Name: "", Value: "empty name"})
	}
	return r
}

// sameDecoded is reflect.DeepEqual of two decoded rows, except that a float
// equals another of the same bits (a NaN equals itself).
func sameDecoded(a, b *DecodedBillingRow) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	x, y := *a, *b
	for _, f := range [][2]*float64{
		{&x.Row.BldgSqFoot.Value, &y.Row.BldgSqFoot.Value},
		{&x.Row.UsageValue, &y.Row.UsageValue},
		{&x.Row.UsageCharge.Value, &y.Row.UsageCharge.Value},
	} {
		if math.Float64bits(*f[0]) != math.Float64bits(*f[1]) {
			return false
		}
		*f[0], *f[1] = 0, 0
	}
	return reflect.DeepEqual(x, y)
}

// checkFastDecode decodes body with readBillingBody (decodeFast) and with the
// struct codec of the embedded schema (decodeBody), and fails unless both
// refuse it, poison both, or both read the same row. The struct codec's
// errors and readBillingBody's word a broken body differently; a row
// without service point has one message.
func checkFastDecode(t *testing.T, c *BillingCodec, body []byte) *DecodedBillingRow {
	t.Helper()
	want, werr := c.decodeBody(c.s.Decoder(), body)
	got, gerr := c.decodeFast(0, body)
	switch {
	case (werr == nil) != (gerr == nil):
		t.Fatalf("body %x:\nstruct codec: %v\nfast:         %v", body, werr, gerr)
	case werr != nil:
		if !quarantine.IsPoison(werr) || !quarantine.IsPoison(gerr) {
			t.Fatalf("body %x: not both poison:\nstruct codec: %v\nfast:         %v", body, werr, gerr)
		}
		if (strings.Contains(werr.Error(), "without service_point_id") || strings.Contains(gerr.Error(), "without service_point_id")) && werr.Error() != gerr.Error() {
			t.Fatalf("body %x:\nstruct codec: %v\nfast:         %v", body, werr, gerr)
		}
		if !strings.HasPrefix(gerr.Error(), "decoding BillingRow") && !strings.Contains(gerr.Error(), "without service_point_id") {
			t.Fatalf("fast error says neither what it decoded nor what the row lacks: %v", gerr)
		}
	case !sameDecoded(got, want):
		t.Fatalf("body %x:\nstruct codec %+v\nfast         %+v", body, want, got)
	}
	return got
}

// TestBillingFastDecodeMatchesStruct: what Append writes, for the rows of
// billingRows and rows of every shape (each layout, nulls, extra columns,
// estimates, unicode, the ends of each type), readBillingBody reads as the
// struct codec does, and back to the row that was written.
func TestBillingFastDecodeMatchesStruct(t *testing.T) {
	c, err := NewBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rows := billingRows()
	for range 20000 {
		rows = append(rows, randomBillingRow(rng))
	}
	for range 2000 {
		rows = append(rows, oddBillingRow(rng))
	}
	srcs := []BillingSource{billingSrc, {Utility: "x", File: strings.Repeat("f", 130)}, {}}
	for i, row := range rows {
		src := srcs[i%len(srcs)]
		framed, err := c.Append(nil, 1, &row, src)
		if err != nil {
			t.Fatal(err)
		}
		got := checkFastDecode(t, c, framed[5:])
		if got == nil { // no service point: both refused it
			continue
		}
		// The row as written, in decode's terms: sorted extras, the
		// estimate a usage row is written with, nulls of the layout.
		want := row
		sortExtra(want.Extra)
		if want.Layout == records.LayoutUsage {
			want.ActiveDate, want.InactiveDate = 0, records.NullDate{}
		}
		if want.Layout == records.LayoutCustomer {
			want.UsageValue, want.DateTo, want.Duration, want.IsEstimate, want.UsageCharge = 0, 0, 0, 0, records.NullFloat{}
		} else if want.IsEstimate == 0 {
			want.IsEstimate = records.EstimateEstimated
		}
		if !want.InactiveDate.Valid {
			want.InactiveDate.Date = 0
		}
		if !want.BldgSqFoot.Valid {
			want.BldgSqFoot.Value = 0
		}
		if !want.UsageCharge.Valid {
			want.UsageCharge.Value = 0
		}
		if !sameDecoded(got, &DecodedBillingRow{Row: want, Source: src, Line: row.Line}) {
			t.Fatalf("wrote %+v\n read %+v", want, got.Row)
		}
	}
}

// oddBillingBodies are bodies no encoder of ours writes that the struct codec
// still reads or refuses: the non-canonical spellings Avro allows (a union
// index or length of several varint bytes, a boolean byte other than 0 and
// 1, map blocks with a byte size, several blocks, a key twice) and the
// malformed ones (an enum or union index out of range, negative or too long
// lengths, varints too long, a map block larger than the body, trailing
// bytes, every truncation).
func oddBillingBodies(t testing.TB, c *BillingCodec) [][]byte {
	row := billingRows()[0]
	row.Extra = nil
	framed, err := c.Append(nil, 1, &row, billingSrc)
	if err != nil {
		t.Fatal(err)
	}
	full := framed[5:]
	head := full[:len(full)-1] // the body up to its empty map
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	str := func(s string) []byte { return avroString(nil, s) }
	// where the boolean is_account_deletion sits in full: after the
	// strings and the two dates of the first fields.
	boolAt := bytes.Index(full, []byte{2, 4, 'A', '1'}) + 4
	boolAt += 1 + len(avroLong(nil, int64(row.ActiveDate))) + 1 + len(avroLong(nil, int64(row.InactiveDate.Date)))
	if full[boolAt] != 1 {
		t.Fatalf("is_account_deletion is not at byte %d of %x", boolAt, full)
	}
	withByte := func(at int, b ...byte) []byte { return cat(full[:at], b, full[at+1:]) }
	replace := func(old, new []byte) []byte {
		if !bytes.Contains(full, old) {
			t.Fatalf("%x is not in %x", old, full)
		}
		return bytes.Replace(full, old, new, 1)
	}
	utilityEnd := len(str(billingSrc.Utility))
	bodies := [][]byte{
		cat(head, []byte{4}, str("b"), str("1"), str("a"), str("2"), []byte{0}),                     // one block
		cat(head, []byte{2}, str("b"), str("1"), []byte{2}, str("a"), str("2"), []byte{0}),          // two blocks
		cat(head, []byte{1, 8}, str("b"), str("1"), []byte{0}),                                      // a block with its byte size
		cat(head, []byte{3, 0x7f}, str("b"), str("1"), []byte{0}),                                   // a byte size past the end
		cat(head, []byte{6}, str("k"), str("1"), str("j"), str("2"), str("k"), str("3"), []byte{0}), // a key twice
		cat(head, []byte{4}, str("k"), str("1"), []byte{0}),                                         // a block short of entries
		cat(head, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, str("k"), str("1"), []byte{0}),              // 2^31 entries
		cat(head, []byte{1}), // a negative count without its size
		cat(head, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}), // count MinInt64
		cat(head, []byte{2}, []byte{3}, str("1"), []byte{0}),                             // a negative key length
		cat(head, []byte{2}, str("k"), []byte{0x7f}, []byte{0}),                          // a value past the end
		cat(full, []byte{0}),    // trailing byte
		withByte(boolAt, 7),     // a boolean of 7: false
		withByte(boolAt, 0x81),  // a boolean of 0x81: false
		withByte(utilityEnd, 6), // layout 3
		withByte(utilityEnd, 1), // layout -1
		cat(full[:utilityEnd], []byte{0x82, 0x00}, full[utilityEnd+1:]),                         // layout 1 in two bytes
		cat(full[:utilityEnd], []byte{0x80, 0x80, 0x80, 0x80, 0x10}, full[utilityEnd+1:]),       // an int of 5 bytes past 32 bits
		cat(full[:utilityEnd], []byte{0x80, 0x80, 0x80, 0x80, 0x0f}, full[utilityEnd+1:]),       // the largest 5-byte int
		cat([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, full[1:]),       // a long past 64 bits
		cat([]byte{0x86, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, full[1:]),       // utility length 3 in ten bytes
		cat([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, full[1:]), // a varint of eleven bytes
		cat([]byte{0x01}, full[1:]), // utility length -1
		cat([]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, full[1:]), // utility length MaxInt64
		replace([]byte{2, 4, 'C', '1'}, []byte{0x82, 0x00, 4, 'C', '1'}),                  // customer_id's branch in two bytes
		replace([]byte{2, 4, 'C', '1'}, []byte{0x80, 0x00, 4, 'C', '1'}),                  // ... null in two bytes, then junk
		replace([]byte{2, 4, 'C', '1'}, []byte{4, 4, 'C', '1'}),                           // union index 2
		replace([]byte{2, 4, 'C', '1'}, []byte{1, 4, 'C', '1'}),                           // union index -1
		replace([]byte{2, 4, 'C', '1'}, []byte{0x84, 0x00, 4, 'C', '1'}),                  // union index 2 in two bytes
		replace([]byte{6, 'S', 'P', '1'}, []byte{0}),                                      // no service point
		replace([]byte{6, 'S', 'P', '1'}, []byte{0x80, 0x00}),                             // ... as a two-byte length
		{},
	}
	for n := range full {
		bodies = append(bodies, full[:n])
	}
	return bodies
}

// TestBillingFastDecodeOddBodies: on non-canonical and malformed bodies
// readBillingBody reads or refuses what the struct codec does, and never
// panics.
func TestBillingFastDecodeOddBodies(t *testing.T) {
	c, err := NewBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for _, body := range oddBillingBodies(t, c) {
		if checkFastDecode(t, c, body) != nil {
			read++
		}
	}
	if read < 8 { // the readable spellings above: the test tests something
		t.Fatalf("only %d of the odd bodies decoded", read)
	}
}

// FuzzBillingFastDecode: for any body, readBillingBody (decodeFast) and the
// struct codec both refuse it as poison, or both read the same row; neither
// panics.
func FuzzBillingFastDecode(f *testing.F) {
	c, err := NewBillingCodec()
	if err != nil {
		f.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	rows := billingRows()
	for range 20 {
		rows = append(rows, randomBillingRow(rng), oddBillingRow(rng))
	}
	for _, row := range rows {
		framed, err := c.Append(nil, 1, &row, billingSrc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(framed[5:])
	}
	for _, body := range oddBillingBodies(f, c) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFastDecode(t, c, body)
	})
}

// extendedBillingSchema is BillingRow with a field this build does not know
// in the middle of the record: a body of it is not laid out as the embedded
// schema says, and must be resolved.
func extendedBillingSchema(t *testing.T) string {
	return editedBillingSchema(t, func(fields []any) []any {
		var out []any
		for _, f := range fields {
			out = append(out, f)
			if f.(map[string]any)["name"] == "service_point_id" {
				out = append(out, map[string]any{"name": "region", "type": []any{"null", "string"}, "default": nil})
			}
		}
		return out
	})
}

// TestBillingDecoderFastOnlyForEmbedded: through a (fake) registry, records
// of the embedded schema and of a copy of it that differs only in docs are
// read directly; records of an extended and of an older version are
// resolved by the struct codec to the right row, where a direct read of
// their bodies would be wrong.
func TestBillingDecoderFastOnlyForEmbedded(t *testing.T) {
	ctx := context.Background()
	reg, _, _ := newRegistry(t)
	text := schemas.MustText(schemas.BillingRow)
	cur, err := reg.Register(ctx, serde.SubjectFor("billing.v1"), text)
	if err != nil {
		t.Fatal(err)
	}
	undocumented := strings.Replace(text, `"doc": "One accepted row`, `"doc": "Another doc: one accepted row`, 1)
	docID, err := reg.Register(ctx, "undocumented-value", undocumented)
	if err != nil {
		t.Fatal(err)
	}
	extended := extendedBillingSchema(t)
	extID, err := reg.Register(ctx, "extended-billing-value", extended)
	if err != nil {
		t.Fatal(err)
	}
	oldID, err := reg.Register(ctx, "old-billing-value", olderBillingSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(map[int]bool{cur: true, docID: true, extID: true, oldID: true}) != 4 {
		t.Fatalf("ids %d %d %d %d are not four schemas", cur, docID, extID, oldID)
	}
	dec := NewBillingDecoder(reg)
	row := billingRows()[0]

	for id, embedded := range map[int]bool{cur: true, docID: true, extID: false, oldID: false} {
		framed, err := serde.AppendHeader(nil, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, d, err := dec.res.Lookup(ctx, framed); err != nil || d.Embedded() != embedded {
			t.Fatalf("schema id %d: Embedded %v, want %v (%v)", id, d != nil && d.Embedded(), embedded, err)
		}
	}

	for _, id := range []int{cur, docID} {
		b, err := AppendBillingRow(nil, id, &row, billingSrc)
		if err != nil {
			t.Fatal(err)
		}
		d, err := dec.Decode(ctx, b)
		if err != nil || !reflect.DeepEqual(d.Row, row) || d.Source != billingSrc {
			t.Fatalf("schema id %d: %v\n%+v", id, err, d)
		}
	}

	// The extended version: region after service_point_id.
	m := newBillingBuilder().Row(&row, billingSrc)
	m["region"] = goavro.Union("string", "south")
	g, err := goavro.NewCodec(extended)
	if err != nil {
		t.Fatal(err)
	}
	b, err := serde.AppendHeader(nil, extID)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = g.BinaryFromNative(b, m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second time from the decoder kept for the id
		d, err := dec.Decode(ctx, b)
		if err != nil || !reflect.DeepEqual(d.Row, row) || d.Source != billingSrc {
			t.Fatalf("extended version: %v\n got %+v\nwant %+v", err, d, row)
		}
	}
	var direct DecodedBillingRow
	if err := readBillingBody(b[5:], &direct); err == nil && reflect.DeepEqual(direct.Row, row) {
		t.Fatal("a direct read of the extended body gave the row: the test does not tell the paths apart")
	}

	// The older version, as TestBillingDecoderResolvesRegisteredVersions writes it.
	m = newBillingBuilder().Row(&row, billingSrc)
	delete(m, "extra")
	delete(m, "customer_type")
	m["bldg_sq_foot"] = goavro.Union("float", float32(row.BldgSqFoot.Value))
	m["region"] = "south"
	og, err := goavro.NewCodec(olderBillingSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = serde.AppendHeader(nil, oldID); err != nil {
		t.Fatal(err)
	}
	if b, err = og.BinaryFromNative(b, m); err != nil {
		t.Fatal(err)
	}
	want := row
	want.Extra, want.CustomerType = nil, ""
	if d, err := dec.Decode(ctx, b); err != nil || !reflect.DeepEqual(d.Row, want) {
		t.Fatalf("older version: %v\n got %+v\nwant %+v", err, d, want)
	}

	// Errors keep their poison-ness through the direct path: a broken body,
	// a row without service point.
	b, err = AppendBillingRow(nil, cur, &row, billingSrc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode(ctx, b[:len(b)-2]); !quarantine.IsPoison(err) || !strings.Contains(err.Error(), "decoding BillingRow") {
		t.Fatalf("truncated: %v", err)
	}
	noSP := row
	noSP.ServicePointID = ""
	if b, err = AppendBillingRow(nil, cur, &noSP, billingSrc); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode(ctx, b); !quarantine.IsPoison(err) || !strings.Contains(err.Error(), fmt.Sprintf("(schema id %d)", cur)) || !strings.Contains(err.Error(), "line 7 without service_point_id") {
		t.Fatalf("no service point: %v", err)
	}
	binary.BigEndian.PutUint32(b[1:5], 999)
	if _, err := dec.Decode(ctx, b); err == nil || !strings.Contains(err.Error(), "schema id 999") {
		t.Fatalf("unknown id: %v", err)
	}
}

// TestDecodeIntoARecycledRow: a row Recycle gave back is filled again with
// nothing of the row it held before: every generated row decoded into one
// that held each other row is the row decoded afresh.
func TestDecodeIntoARecycledRow(t *testing.T) {
	c, err := defaultBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	rows := billingRows()
	bodies := make([][]byte, len(rows))
	for i := range rows {
		b, err := AppendBillingRow(nil, 1, &rows[i], billingSrc)
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = b[5:] // past the Confluent header
	}
	for i := range rows {
		want, err := c.decodeFast(1, bodies[i])
		if err != nil {
			t.Fatal(err)
		}
		for j := range rows {
			used, err := c.decodeFast(1, bodies[j])
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.decodeFastInto(1, bodies[i], used)
			if err != nil || got != used || !reflect.DeepEqual(got, want) {
				t.Fatalf("row %d decoded into the row of %d: %v\n got %+v\nwant %+v", i, j, err, got, want)
			}
		}
	}
}
