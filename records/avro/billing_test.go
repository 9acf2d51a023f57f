package avro

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/records"
	"github.com/usagestream/usagestream/schemas"
)

var billingSrc = BillingSource{Utility: "gec", File: "opwr_gec_res_v1-19-0_full_20250315120000.gz", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}

// billingRows cover every field type of BillingRow with and without a value:
// strings, long, boolean, doubles (negative, fractional), int, dates before
// and after the epoch, both enums (every estimate symbol), the map with
// zero, one and several entries, unicode, and each layout's nulls.
func billingRows() []records.BillingRow {
	full := records.BillingRow{
		Layout: records.LayoutFull, Line: 7, CustomerID: "C1", PremiseID: "P1", SecondaryID: "S1", CCBAccountID: "CCB1",
		CustomerType: "RES", BusinessName: "Café Ünïcode", AccountID: "A1",
		ActiveDate: dates.MustParse("20240101"), InactiveDate: records.NullDate{Date: dates.MustParse("20241231"), Valid: true},
		IsAccountDeletion: true, ReadCycle: "07", RateCode: "R1", ServicePointID: "SP1", ServiceType: "E",
		ServiceHouseNumber: "12", ServiceStreetName: "Main", ServiceUnit: "4B", ServiceCity: "Macon", ServiceState: "GA",
		ServiceZipCode: "31201", MeterType: "AMI", MeterUnit: "KWH",
		BldgSqFoot: records.NullFloat{Value: 1200.5, Valid: true}, UsageValue: 321.5, DateTo: dates.MustParse("20240131"),
		Duration: 31, IsEstimate: records.EstimateActual, UsageCharge: records.NullFloat{Value: 40.25, Valid: true},
		Extra: []records.Attribute{{Name: "mail_city", Value: "Macon"}},
	}
	sparse := records.BillingRow{ // every optional field null, dates before 1970
		Layout: records.LayoutFull, Line: 1 << 40, ServicePointID: "SP2", ActiveDate: dates.MustParse("19650301"),
		UsageValue: -2.75, DateTo: dates.MustParse("19691231"), Duration: 1, IsEstimate: records.EstimateUser,
	}
	customer := full
	customer.Layout, customer.UsageValue, customer.DateTo, customer.Duration, customer.IsEstimate, customer.UsageCharge = records.LayoutCustomer, 0, 0, 0, 0, records.NullFloat{}
	customer.Extra = []records.Attribute{{Name: "a", Value: "1"}, {Name: "b", Value: ""}, {Name: "c", Value: "x y"}}
	usage := records.BillingRow{Layout: records.LayoutUsage, Line: 3, ServicePointID: "SP1", UsageValue: 0, DateTo: dates.MustParse("20240229"), Duration: 29, IsEstimate: records.EstimateEstimated}
	return []records.BillingRow{full, sparse, customer, usage}
}

// TestBillingMatchesGoavro: twmb/avro writes the bytes goavro (billingBuilder) writes,
// and each library reads what the other wrote back to the same row.
func TestBillingMatchesGoavro(t *testing.T) {
	g, err := goavro.NewCodec(schemas.MustText(schemas.BillingRow))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	b := newBillingBuilder()
	for _, row := range billingRows() {
		want, err := g.BinaryFromNative(nil, b.Row(&row, billingSrc))
		if err != nil {
			t.Fatal(err)
		}
		framed, err := c.Append([]byte("prefix"), 258, &row, billingSrc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(framed, []byte("prefix")) || framed[6] != 0 || binary.BigEndian.Uint32(framed[7:11]) != 258 {
			t.Fatalf("framing %x", framed[:11])
		}
		got := framed[11:]
		// goavro writes a map in Go's random order: bytes compare only when
		// there is at most one entry.
		if len(row.Extra) <= 1 && !bytes.Equal(got, want) {
			t.Fatalf("line %d: twmb/avro\n%x\ngoavro\n%x", row.Line, got, want)
		}
		// twmb/avro's bytes through goavro and the native decoder.
		native, rest, err := g.NativeFromBinary(got)
		if err != nil || len(rest) != 0 {
			t.Fatalf("goavro reads twmb/avro's bytes: %v (%d left)", err, len(rest))
		}
		viaGoavro, err := goavroDecodeBilling(native.(map[string]any))
		if err != nil {
			t.Fatal(err)
		}
		// goavro's bytes through twmb/avro.
		viaTwmb, err := c.decodeBody(c.s.Decoder(), want)
		if err != nil {
			t.Fatal(err)
		}
		for name, d := range map[string]*DecodedBillingRow{"goavro": viaGoavro, "twmb/avro": viaTwmb} {
			if d.Source != billingSrc || d.Line != row.Line {
				t.Fatalf("%s: source %+v line %d", name, d.Source, d.Line)
			}
			sortExtra(d.Row.Extra)
			if !reflect.DeepEqual(d.Row, row) {
				t.Fatalf("%s, line %d:\n got %+v\nwant %+v", name, row.Line, d.Row, row)
			}
		}
	}
}

func sortExtra(a []records.Attribute) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].Name < a[j-1].Name; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// TestBillingEncodeDefaultsAndErrors: a usage row without an estimate flag is
// written as E (docs/data-contract.md §2.4); a layout outside the enum is an error
// naming the file and line, not a panic or a corrupt record.
func TestBillingEncodeDefaultsAndErrors(t *testing.T) {
	c, err := NewBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	row := records.BillingRow{Layout: records.LayoutUsage, Line: 9, ServicePointID: "SP9", DateTo: dates.MustParse("20240229"), Duration: 29}
	b, err := c.Append(nil, 1, &row, billingSrc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.decodeBody(c.s.Decoder(), b[5:])
	if err != nil || d.Row.IsEstimate != records.EstimateEstimated {
		t.Fatalf("estimate %q, err %v", d.Row.IsEstimate, err)
	}
	row.Layout = "monthly"
	if _, err := c.Append(nil, 1, &row, billingSrc); err == nil || !strings.Contains(err.Error(), billingSrc.File+" line 9") {
		t.Fatalf("layout monthly: %v", err)
	}
}

// TestBillingDecodeRejectsBadRecords: truncated bytes, bytes after the record, an
// enum index out of range and a record without service point are errors.
func TestBillingDecodeRejectsBadRecords(t *testing.T) {
	c, err := NewBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	row := billingRows()[0]
	b, err := c.Append(nil, 1, &row, billingSrc)
	if err != nil {
		t.Fatal(err)
	}
	body := b[5:]
	dec := c.s.Decoder()
	for name, bad := range map[string][]byte{
		"truncated":   body[:len(body)-3],
		"trailing":    append(append([]byte{}, body...), 0),
		"enum 7":      append([]byte{body[0]}, append(append([]byte{}, body[1:1+len("gec")]...), append([]byte{14}, body[1+len("gec")+1:]...)...)...),
		"empty input": nil,
	} {
		if _, err := c.decodeBody(dec, bad); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	row.ServicePointID = ""
	b, err = c.Append(nil, 1, &row, billingSrc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.decodeBody(dec, b[5:]); err == nil || !strings.Contains(err.Error(), "service_point_id") || !strings.Contains(err.Error(), "line 7") {
		t.Fatalf("no service point: %v", err)
	}
}

// olderBillingSchema is BillingRow as an earlier or later writer might have it:
// without extra and customer_type (both with defaults here), with a field
// this build does not know, and bldg_sq_foot as a float (promoted).
func olderBillingSchema(t *testing.T) string {
	return editedBillingSchema(t, func(fields []any) []any {
		var out []any
		for _, f := range fields {
			switch f.(map[string]any)["name"] {
			case "extra", "customer_type":
				continue
			case "bldg_sq_foot":
				f.(map[string]any)["type"] = []any{"null", "float"}
			}
			out = append(out, f)
		}
		return append(out, map[string]any{"name": "region", "type": "string"})
	})
}

// editedBillingSchema is the embedded BillingRow schema with its fields
// replaced by what edit makes of them.
func editedBillingSchema(t *testing.T, edit func(fields []any) []any) string {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal([]byte(schemas.MustText(schemas.BillingRow)), &s); err != nil {
		t.Fatal(err)
	}
	s["fields"] = edit(s["fields"].([]any))
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBillingDecoderResolvesRegisteredVersions goes through a real (fake) schema
// registry as the stages do: records of the embedded schema and of another
// registered version decode to the row; an unknown schema id and unframed
// bytes are errors that say so.
func TestBillingDecoderResolvesRegisteredVersions(t *testing.T) {
	ctx := context.Background()
	reg, cl, _ := newRegistry(t)
	older := olderBillingSchema(t)
	oldID, err := reg.Register(ctx, "old-billing-value", older)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := reg.Register(ctx, serde.SubjectFor("billing.v1"), schemas.MustText(schemas.BillingRow))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	dec := c.NewDecoder(serde.NewRegistry(cl))
	row := billingRows()[0]

	b, err := AppendBillingRow(nil, cur, &row, billingSrc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dec.Decode(ctx, b)
	if err != nil || !reflect.DeepEqual(d.Row, row) || d.Source != billingSrc {
		t.Fatalf("current version: %v\n%+v", err, d)
	}

	m := newBillingBuilder().Row(&row, billingSrc)
	delete(m, "extra")
	delete(m, "customer_type")
	m["bldg_sq_foot"] = goavro.Union("float", float32(row.BldgSqFoot.Value))
	m["region"] = "south"
	og, err := goavro.NewCodec(older)
	if err != nil {
		t.Fatal(err)
	}
	old, err := serde.AppendHeader(nil, oldID)
	if err != nil {
		t.Fatal(err)
	}
	if old, err = og.BinaryFromNative(old, m); err != nil {
		t.Fatal(err)
	}
	want := row
	want.Extra, want.CustomerType = nil, "" // the reader's defaults: {} and null
	for i := 0; i < 2; i++ {                // the second time from the decoder kept for the id
		d, err = dec.Decode(ctx, old)
		if err != nil || !reflect.DeepEqual(d.Row, want) {
			t.Fatalf("older version: %v\n got %+v\nwant %+v", err, d, want)
		}
	}

	binary.BigEndian.PutUint32(b[1:5], 999)
	if _, err := dec.Decode(ctx, b); err == nil || !strings.Contains(err.Error(), "schema id 999") {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := dec.Decode(ctx, []byte("plain")); err == nil || !strings.Contains(err.Error(), "Confluent-framed") {
		t.Fatalf("unframed: %v", err)
	}
}

// TestBillingDecoderRefusesIncompatible: a writer schema without a field this
// build needs and that has no default cannot be resolved.
func TestBillingDecoderRefusesIncompatible(t *testing.T) {
	c, err := NewBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(schemas.MustText(schemas.BillingRow), `"name": "service_point_id"`, `"name": "spid"`, 1)
	if _, err := c.s.NewDecoder(s); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("writer without service_point_id: %v", err)
	}
}

// TestBillingDecoderConcurrent: the stages share one Decoder between partitions;
// rows decoded at the same time (first sight of the schema id included) do
// not mix (run with -race).
func TestBillingDecoderConcurrent(t *testing.T) {
	ctx := context.Background()
	reg, _, _ := newRegistry(t)
	cur, err := reg.Register(ctx, serde.SubjectFor("billing.v1"), schemas.MustText(schemas.BillingRow))
	if err != nil {
		t.Fatal(err)
	}
	rows := billingRows()
	framed := make([][]byte, len(rows))
	for i := range rows {
		if framed[i], err = AppendBillingRow(nil, cur, &rows[i], billingSrc); err != nil {
			t.Fatal(err)
		}
		sortExtra(rows[i].Extra)
	}
	dec := NewBillingDecoder(reg)
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for n := 0; n < 200; n++ {
				i := (g + n) % len(rows)
				d, err := dec.Decode(ctx, framed[i])
				if err == nil && !reflect.DeepEqual(d.Row, rows[i]) {
					err = fmt.Errorf("row %d decoded as %+v", i, d.Row)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
