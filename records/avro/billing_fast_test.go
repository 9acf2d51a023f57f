package avro

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// randomBillingRow is a row of any layout with every field present or
// absent at random, values at the edges of their types included.
func randomBillingRow(rng *rand.Rand) records.BillingRow {
	str := func() string {
		switch rng.IntN(6) {
		case 0:
			return ""
		case 1:
			return "Café Ünïcode"
		case 2:
			return strings.Repeat("x", 64+rng.IntN(200)) // a length of two varint bytes
		}
		return string(rune('A'+rng.IntN(26))) + "1"
	}
	date := func() dates.Date {
		return []dates.Date{0, -1, 1, dates.MustParse("19650301"), dates.MustParse("20240229"), dates.MustParse("99991231")}[rng.IntN(6)]
	}
	float := func() float64 {
		return []float64{0, 1, -2.75, 1200.5, 999999999, -999999999, math.SmallestNonzeroFloat64, 0.1}[rng.IntN(8)]
	}
	r := records.BillingRow{
		Layout:     []records.Layout{records.LayoutFull, records.LayoutCustomer, records.LayoutUsage}[rng.IntN(3)],
		Line:       []int64{0, 1, 2, 63, 64, 1 << 40, math.MaxInt64}[rng.IntN(7)],
		CustomerID: str(), PremiseID: str(), SecondaryID: str(), CCBAccountID: str(), CustomerType: str(),
		BusinessName: str(), AccountID: str(), ActiveDate: date(),
		InactiveDate:      records.NullDate{Date: date(), Valid: rng.IntN(2) == 0},
		IsAccountDeletion: rng.IntN(2) == 0, ReadCycle: str(), RateCode: str(), ServicePointID: str(),
		ServiceType: str(), ServiceHouseNumber: str(), ServiceStreetName: str(), ServiceUnit: str(),
		ServiceCity: str(), ServiceState: str(), ServiceZipCode: str(), MeterType: str(), MeterUnit: str(),
		BldgSqFoot: records.NullFloat{Value: float(), Valid: rng.IntN(2) == 0}, UsageValue: float(), DateTo: date(),
		Duration:    []int32{0, 1, 31, 63, 64, 10000, math.MaxInt32}[rng.IntN(7)],
		IsEstimate:  []records.Estimate{0, records.EstimateActual, records.EstimateEstimated, records.EstimateUser}[rng.IntN(4)],
		UsageCharge: records.NullFloat{Value: float(), Valid: rng.IntN(2) == 0},
	}
	for i := range rng.IntN(4) {
		r.Extra = append(r.Extra, records.Attribute{Name: "x" + string(rune('a'+i)), Value: str()})
	}
	return r
}

// TestBillingFastMatchesStruct: Append (appendBillingBody) writes the bytes
// of the struct codec for rows of every shape; with several extra columns,
// whose order a Go map does not keep, both decode to the same row.
func TestBillingFastMatchesStruct(t *testing.T) {
	c, err := NewBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rows := billingRows()
	for range 20000 {
		rows = append(rows, randomBillingRow(rng))
	}
	src := billingSrc
	for i, row := range rows {
		if i%2 == 1 {
			src = BillingSource{Utility: "x", File: strings.Repeat("f", 130)}
		}
		checkFastMatchesStruct(t, c, &row, src)
	}
}

func checkFastMatchesStruct(t *testing.T, c *BillingCodec, row *records.BillingRow, src BillingSource) {
	t.Helper()
	want, werr := c.appendStruct([]byte("p"), 77, row, src)
	got, gerr := c.Append([]byte("p"), 77, row, src)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("line %d: struct codec error %v, Append error %v", row.Line, werr, gerr)
	}
	if werr != nil {
		return
	}
	if len(row.Extra) <= 1 {
		if !bytes.Equal(got, want) {
			t.Fatalf("row %+v:\nAppend       %x\nstruct codec %x", row, got, want)
		}
		return
	}
	dw, err := c.decodeBody(c.s.Decoder(), want[6:])
	if err != nil && row.ServicePointID != "" {
		t.Fatal(err)
	}
	dg, err2 := c.decodeBody(c.s.Decoder(), got[6:])
	if (err == nil) != (err2 == nil) {
		t.Fatalf("decoding: %v / %v", err, err2)
	}
	if err == nil && !reflect.DeepEqual(dw, dg) {
		t.Fatalf("decoded differently:\nAppend       %+v\nstruct codec %+v", dg, dw)
	}
	if len(got) != len(want) {
		t.Fatalf("Append wrote %d bytes, the struct codec %d", len(got), len(want))
	}
}

// TestBillingFastLeavesOddRows: a layout outside the enum is the struct
// codec's error naming file and line; an extra column named twice is
// written as the struct codec writes it (one entry).
func TestBillingFastLeavesOddRows(t *testing.T) {
	c, err := NewBillingCodec()
	if err != nil {
		t.Fatal(err)
	}
	row := billingRows()[0]
	if _, ok := appendBillingBody(nil, &row, billingSrc); !ok {
		t.Fatal("a full row was left to the codec")
	}
	row.Extra = []records.Attribute{{Name: "a", Value: "1"}, {Name: "a", Value: "1"}}
	if _, ok := appendBillingBody(nil, &row, billingSrc); ok {
		t.Fatal("an extra column named twice was written by the direct writer")
	}
	checkFastMatchesStruct(t, c, &row, billingSrc)
	row.Layout = "monthly"
	if _, err := c.Append(nil, 1, &row, billingSrc); err == nil || !strings.Contains(err.Error(), billingSrc.File+" line 7") {
		t.Fatalf("layout monthly: %v", err)
	}
}

// FuzzBillingFast: for any field values, Append and the struct codec agree.
func FuzzBillingFast(f *testing.F) {
	f.Add(uint8(0), int64(7), "C1", "SP1", "Macon", int32(100), 1.5, int32(31), byte('A'), "mail_city", "x", true)
	f.Add(uint8(2), int64(-1), "", "", "", int32(-5), -0.0, int32(-1), byte(0), "", "", false)
	f.Fuzz(func(t *testing.T, layout uint8, line int64, id, sp, city string, day int32, v float64, dur int32, est byte, xName, xVal string, flags bool) {
		c, err := NewBillingCodec()
		if err != nil {
			t.Fatal(err)
		}
		row := records.BillingRow{
			Layout: []records.Layout{records.LayoutFull, records.LayoutCustomer, records.LayoutUsage, "other"}[layout%4],
			Line:   line, CustomerID: id, AccountID: id, ServicePointID: sp, ServiceCity: city,
			ActiveDate: dates.Date(day), InactiveDate: records.NullDate{Date: dates.Date(day / 2), Valid: flags},
			IsAccountDeletion: flags, BldgSqFoot: records.NullFloat{Value: v, Valid: !flags}, UsageValue: v,
			DateTo: dates.Date(-day), Duration: dur, IsEstimate: records.Estimate(est), UsageCharge: records.NullFloat{Value: -v, Valid: flags},
		}
		if xName != "" || xVal != "" {
			row.Extra = []records.Attribute{{Name: xName, Value: xVal}}
		}
		checkFastMatchesStruct(t, c, &row, BillingSource{Utility: city, File: id, SHA256: sp})
	})
}
