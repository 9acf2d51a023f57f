package billing

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/records"
)

// FuzzReader feeds a body after a valid header (mode 0..2: full, customer,
// usage layout) or the whole input as the file (mode 3), with or without net
// metering. Whatever the bytes: no panic, every line one record, stats that
// reconcile, no accepted row that breaks the contract, and the same records
// through NextLine and a Parser as through Next.
func FuzzReader(f *testing.F) {
	good := rowLine(records.LayoutFull, nil)
	f.Add(uint8(0), []byte(good+"\n"+good))
	f.Add(uint8(0), []byte(rowLine(records.LayoutFull, map[string]string{"duration": "0", "date_to": "20240230"})+"\r\n\n"))
	f.Add(uint8(1), []byte(rowLine(records.LayoutCustomer, map[string]string{"inactive_date": "20200101"})))
	f.Add(uint8(2), []byte(rowLine(records.LayoutUsage, map[string]string{"usage_value": "-1,5", "is_estimate": "u"})))
	f.Add(uint8(2), []byte("SP1\t1\t20240101\t1\t\t\nSP1\tNA\t\\N\tnull\tx\t1e4\n\t\t\t\t\t"))
	f.Add(uint8(3), []byte(fileText(records.LayoutFull, good)))
	f.Add(uint8(3), gzipBytes(f, fileText(records.LayoutUsage, rowLine(records.LayoutUsage, nil))))
	f.Add(uint8(3), zipBytes(f, zipEntry{"a", fileText(records.LayoutFull, good)}))
	f.Add(uint8(7), []byte("\xEF\xBB\xBF"+records.HeaderLine(records.LayoutFull)+"\textra\n"+good+"\tx\n"))

	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		layouts := [...]records.Layout{records.LayoutFull, records.LayoutCustomer, records.LayoutUsage}
		opts := Options{NetMetering: mode&4 != 0, MaxLineBytes: 1024}
		var data []byte
		if m := mode & 3; m < 3 {
			opts.Layout = layouts[m]
			data = append([]byte(records.HeaderLine(opts.Layout)+"\n"), body...)
		} else {
			opts.Layout = records.LayoutFull
			data = body
		}
		r, err := NewReader("fuzz.tsv", bytes.NewReader(data), opts)
		if err != nil {
			var fe *filereader.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("NewReader: %T %v", err, err)
			}
			if mode&3 < 3 {
				t.Fatalf("a valid header was refused: %v", err)
			}
			return
		}
		defer r.Close()
		var n int64
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var fe *filereader.FileError
				if !errors.As(err, &fe) {
					t.Fatalf("Next: %T %v", err, err)
				}
				break
			}
			n++
			if (rec.Row == nil) == (rec.Rejected == nil) {
				t.Fatalf("record %+v", rec)
			}
			if rec.Row != nil {
				checkRow(t, rec.Row, r.Layout(), opts)
			} else {
				checkRejected(t, rec.Rejected)
			}
		}
		s := r.Stats()
		if s.Lines != s.Accepted+s.Rejected || s.Lines != n {
			t.Fatalf("stats %+v for %d records", s, n)
		}
		// Every line end past the header's ends a line, except that an empty
		// line ending the file is no line (DC-2.1).
		ends := int64(bytes.Count(body, []byte{'\n'}))
		if bytes.HasSuffix(data, []byte("\n\n")) || bytes.HasSuffix(data, []byte("\n\r\n")) {
			ends--
		}
		if mode&3 < 3 && s.Lines < ends {
			t.Fatalf("%d lines counted for %d line ends", s.Lines, ends)
		}
		// Ingest's path (NextLine, Parser in another goroutine) gives the same records.
		checkParserMatchesNext(t, "fuzz.tsv", data, opts)
	})
}

func checkRow(t *testing.T, row *records.BillingRow, l records.Layout, opts Options) {
	t.Helper()
	strs := []string{row.CustomerID, row.PremiseID, row.SecondaryID, row.CCBAccountID, row.CustomerType, row.BusinessName,
		row.AccountID, row.ReadCycle, row.RateCode, row.ServicePointID, row.ServiceType, row.ServiceHouseNumber,
		row.ServiceStreetName, row.ServiceUnit, row.ServiceCity, row.ServiceState, row.ServiceZipCode, row.MeterType, row.MeterUnit}
	for _, s := range strs {
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\t\n") {
			t.Fatalf("bad string %q in %+v", s, row)
		}
	}
	if strings.TrimSpace(row.ServicePointID) == "" {
		t.Fatalf("accepted row without a service point: %+v", row)
	}
	if l != records.LayoutUsage {
		if strings.TrimSpace(row.CustomerID) == "" || strings.TrimSpace(row.PremiseID) == "" || strings.TrimSpace(row.AccountID) == "" {
			t.Fatalf("accepted row without ids: %+v", row)
		}
		if row.ServiceType != "E" && row.ServiceType != "G" && row.ServiceType != "W" {
			t.Fatalf("service type %q", row.ServiceType)
		}
		if row.InactiveDate.Valid && row.InactiveDate.Date < row.ActiveDate {
			t.Fatalf("inactive before active: %+v", row)
		}
		if len(row.ServiceState) != 0 && (len(row.ServiceState) != 2 || strings.ToUpper(row.ServiceState) != row.ServiceState) {
			t.Fatalf("state %q", row.ServiceState)
		}
		if z := row.ServiceZipCode; z != "" && len(z) != 5 && len(z) != 10 {
			t.Fatalf("zip %q", z)
		}
		if row.BldgSqFoot.Valid && (row.BldgSqFoot.Value < 0 || math.IsInf(row.BldgSqFoot.Value, 0) || math.IsNaN(row.BldgSqFoot.Value)) {
			t.Fatalf("floor area %v", row.BldgSqFoot)
		}
	}
	if l == records.LayoutCustomer {
		if row.Duration != 0 || row.UsageValue != 0 || row.DateTo != 0 || row.IsEstimate != 0 || row.UsageCharge.Valid {
			t.Fatalf("customer row with usage: %+v", row)
		}
		return
	}
	if row.Duration <= 0 || row.Duration > maxDuration {
		t.Fatalf("duration %d", row.Duration)
	}
	if math.Abs(row.UsageValue) > maxUsageValue || math.IsNaN(row.UsageValue) {
		t.Fatalf("usage %v", row.UsageValue)
	}
	if !opts.NetMetering && row.UsageValue < 0 {
		t.Fatalf("negative usage without net metering: %+v", row)
	}
	if row.IsEstimate != records.EstimateActual && row.IsEstimate != records.EstimateEstimated && row.IsEstimate != records.EstimateUser {
		t.Fatalf("estimate %q", row.IsEstimate)
	}
	if row.DateTo.String() == "" || row.UsageCharge.Valid && (math.IsInf(row.UsageCharge.Value, 0) || math.IsNaN(row.UsageCharge.Value)) {
		t.Fatalf("row %+v", row)
	}
}

func checkRejected(t *testing.T, rej *records.Rejected) {
	t.Helper()
	if len(rej.Reasons) == 0 || rej.Line < 2 || !utf8.ValidString(rej.Raw) || !utf8.ValidString(rej.ServicePointID) {
		t.Fatalf("rejected %+v", rej)
	}
	for _, rs := range rej.Reasons {
		if rs.Code == "" || rs.Rule == "" || rs.Message == "" || !utf8.ValidString(rs.Message) {
			t.Fatalf("reason %+v", rs)
		}
	}
}

// FuzzFastDecimal holds the fast path to strconv's result, bit for bit.
func FuzzFastDecimal(f *testing.F) {
	for _, s := range []string{"0", "-0", "612.5", "73.19", "0.1", "999999999999999", "1.23456789012345", "-0.000000000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isDecimal(s) {
			return
		}
		got, ok := fastDecimal(s)
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if want == 0 {
			want = 0
		}
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: fast %v, strconv %v (%v)", s, got, want, err)
		}
	})
}
