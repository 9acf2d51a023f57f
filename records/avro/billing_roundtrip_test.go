package avro

import (
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
	"github.com/usagestream/usagestream/schemas"
)

// TestBillingRoundTrip: what ingest encodes, the processors decode to the same row,
// for each layout, through real Avro bytes.
func TestBillingRoundTrip(t *testing.T) {
	codec, err := goavro.NewCodec(schemas.MustText(schemas.BillingRow))
	if err != nil {
		t.Fatal(err)
	}
	full := records.BillingRow{
		Layout: records.LayoutFull, Line: 7, CustomerID: "C1", PremiseID: "P1", SecondaryID: "S1", AccountID: "A1",
		ActiveDate: dates.MustParse("20240101"), InactiveDate: records.NullDate{Date: dates.MustParse("20241231"), Valid: true},
		IsAccountDeletion: true, RateCode: "R1", ServicePointID: "SP1", ServiceType: "E", ServiceStreetName: "Main",
		BldgSqFoot: records.NullFloat{Value: 1200, Valid: true}, UsageValue: 321.5, DateTo: dates.MustParse("20240131"),
		Duration: 31, IsEstimate: records.EstimateActual, UsageCharge: records.NullFloat{Value: 40.25, Valid: true},
		Extra: []records.Attribute{{Name: "mail_city", Value: "Macon"}},
	}
	customer := full
	customer.Layout, customer.UsageValue, customer.DateTo, customer.Duration, customer.IsEstimate, customer.UsageCharge = records.LayoutCustomer, 0, 0, 0, 0, records.NullFloat{}
	usage := records.BillingRow{Layout: records.LayoutUsage, Line: 3, ServicePointID: "SP1", UsageValue: -2, DateTo: dates.MustParse("20240229"), Duration: 29, IsEstimate: records.EstimateEstimated}
	src := BillingSource{Utility: "gec", File: "f.gz", SHA256: "abc"}
	b := newBillingBuilder()
	for _, row := range []records.BillingRow{full, customer, usage} {
		bin, err := codec.BinaryFromNative(nil, b.Row(&row, src))
		if err != nil {
			t.Fatal(err)
		}
		native, _, err := codec.NativeFromBinary(bin)
		if err != nil {
			t.Fatal(err)
		}
		got, err := goavroDecodeBilling(native.(map[string]any))
		if err != nil {
			t.Fatal(err)
		}
		if got.Source != src || got.Line != row.Line {
			t.Fatalf("source %+v line %d", got.Source, got.Line)
		}
		if row.Extra == nil {
			row.Extra = nil
		}
		if !reflect.DeepEqual(got.Row, row) {
			t.Fatalf("%s layout:\n got %+v\nwant %+v", row.Layout, got.Row, row)
		}
	}
}
