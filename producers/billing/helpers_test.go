package billing

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/records"
)

const (
	fullName     = "opwr_gec_res_v1-19-0_full_20240201120000.gz"
	customerName = "opwr_gec_res_v1-19-0_customer_20240201120000.gz"
	usageName    = "opwr_gec_res_v1-19-0_usage_20240201120000.gz"
)

// personalValues are distinctive so a redaction test can search for them anywhere.
var personalValues = map[string]string{
	"business_name":        "Zebulon Quixote Holdings",
	"service_house_number": "74219",
	"service_street_name":  "Evergreen Terrace",
	"service_unit":         "Apt 2Q",
	"service_city":         "Springfieldia",
	"service_zip_code":     "97403",
}

// validValues is one good full-layout row by column name.
func validValues() map[string]string {
	v := map[string]string{
		"customer_id":         "C1001",
		"premise_id":          "P2001",
		"secondary_id":        "S77",
		"ccb_account_id":      "CCB9",
		"customer_type":       "RES",
		"account_id":          "A3001",
		"active_date":         "20230115",
		"inactive_date":       "",
		"is_account_deletion": "",
		"read_cycle":          "07",
		"rate_code":           "R1",
		"service_point_id":    "SP4001",
		"service_type":        "E",
		"service_state":       "OR",
		"meter_type":          "AMI",
		"meter_unit":          "KWH",
		"bldg_sq_foot":        "1850",
		"usage_value":         "612.5",
		"date_to":             "20240131",
		"duration":            "31",
		"is_estimate":         "A",
		"usage_charge":        "73.19",
	}
	for k, x := range personalValues {
		v[k] = x
	}
	return v
}

// rowLine builds a data line of layout l from the valid row with overrides.
func rowLine(l records.Layout, over map[string]string) string {
	v := validValues()
	for k, x := range over {
		v[k] = x
	}
	cols := records.LayoutColumns(l)
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = v[c.Name]
	}
	return strings.Join(parts, "\t")
}

// fileText is a header and the given lines, each ended by LF.
func fileText(l records.Layout, lines ...string) string {
	var b strings.Builder
	b.WriteString(records.HeaderLine(l))
	b.WriteByte('\n')
	for _, ln := range lines {
		b.WriteString(ln)
		b.WriteByte('\n')
	}
	return b.String()
}

// readAll drains a reader, checking on the way the invariants every test relies on.
func readAll(t testing.TB, r *Reader) ([]Record, error) {
	t.Helper()
	var recs []Record
	for {
		rec, err := r.Next()
		if err != nil {
			if err != io.EOF {
				var fe *filereader.FileError
				if !errors.As(err, &fe) {
					t.Fatalf("Next returned %T %v, want io.EOF or *filereader.FileError", err, err)
				}
			}
			checkStats(t, r, int64(len(recs)))
			return recs, err
		}
		if (rec.Row == nil) == (rec.Rejected == nil) {
			t.Fatalf("record must hold exactly one of records.BillingRow and Rejected: %+v", rec)
		}
		if rec.Rejected != nil && len(rec.Rejected.Reasons) == 0 {
			t.Fatalf("rejected line %d has no reason", rec.Rejected.Line)
		}
		recs = append(recs, rec)
	}
}

func checkStats(t testing.TB, r *Reader, records int64) {
	t.Helper()
	s := r.Stats()
	if s.Lines != s.Accepted+s.Rejected {
		t.Fatalf("stats do not reconcile: %+v", s)
	}
	if s.Lines != records {
		t.Fatalf("stats count %d lines, the reader returned %d records", s.Lines, records)
	}
}

func readString(t testing.TB, name, data string, opts Options) (*Reader, []Record, error) {
	t.Helper()
	r, err := NewReader(name, strings.NewReader(data), opts)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	recs, err := readAll(t, r)
	return r, recs, err
}

func gzipBytes(t testing.TB, data string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type zipEntry struct{ name, data string }

func zipBytes(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// codes lists the Code of each reason, in order.
func codes(rs []records.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Code
	}
	return out
}
