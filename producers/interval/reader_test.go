package interval

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/records"
)

const header = "service_point_id\tusage_value\tdate\ttime\tunits\tis_estimate\tUTC_offset\tservice_type\tservice_quantity_identifier\n"

func name(minutes int) string {
	return fmt.Sprintf("opwr_gec_res_v1-19-0_interval%d_20241104120000.tsv", minutes)
}

// readAll reads every record; it fails the test on a file error.
func readAll(t *testing.T, file, body string, opts Options) ([]Record, *Reader) {
	t.Helper()
	r, err := NewReader(file, strings.NewReader(body), opts)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, rec)
	}
	st := r.Stats()
	if st.Lines != st.Accepted+st.Rejected || st.Lines != int64(len(out)) {
		t.Fatalf("counts do not reconcile: %+v for %d records", st, len(out))
	}
	return out, r
}

func utc(s string) int64 {
	t, err := time.Parse("2006-01-02T15:04Z07:00", s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func TestReadAccepted(t *testing.T) {
	t.Parallel()
	body := header +
		"SP1\t0.25\t20240601\t0015\tkwh\tA\t-0400\tE\t\n" +
		"SP1\t1\t20240601\t0000\tKWH\t\t-0400\t\tGENERATED\n"
	recs, _ := readAll(t, name(15), body, Options{})
	r := recs[0].Read
	if r == nil {
		t.Fatalf("rejected: %+v", recs[0].Rejected)
	}
	want := records.IntervalRead{ServicePointID: "SP1", ServiceType: "E", EndMillis: utc("2024-06-01T00:15-04:00"),
		LocalDate: dates.MustParse("20240601"), LocalTime: 15, OffsetMinutes: -240, OffsetGiven: true,
		Minutes: 15, Value: 0.25, Units: "KWH", Estimate: records.EstimateActual, Line: 2}
	if *r != want {
		t.Fatalf("got %+v\nwant %+v", *r, want)
	}
	r2 := recs[1].Read
	if r2.Estimate != records.EstimateEstimated || r2.Channel != "GENERATED" || r2.StartDate() != dates.MustParse("20240531") || r2.StartLocalMinute() != 1425 {
		t.Fatalf("midnight read: %+v start %s %d", r2, r2.StartDate(), r2.StartLocalMinute())
	}
}

// TestDaylightSaving: through UTC_offset, the spring day has 23 hourly
// intervals and the autumn day 25, each a distinct instant one hour apart.
func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	day := func(date string, hours []string, offsets []string) string {
		var b strings.Builder
		b.WriteString(header)
		for i, h := range hours {
			fmt.Fprintf(&b, "SP1\t1\t%s\t%s\tKWH\tA\t%s\tE\t\n", date, h, offsets[i])
		}
		return b.String()
	}
	// 2024-03-10, America/New_York: 02:00 EST becomes 03:00 EDT; the interval
	// ending 0300 local starts at 01:00 EST, so 0200 never appears.
	var hours, offs []string
	for h := 1; h <= 23; h++ {
		if h == 2 {
			continue
		}
		hours = append(hours, fmt.Sprintf("%02d00", h))
		if h < 2 {
			offs = append(offs, "-0500")
		} else {
			offs = append(offs, "-0400")
		}
	}
	hours = append(hours, "0000")
	offs = append(offs, "-0400")
	spring := day("20240310", hours, offs)
	// the last row (0000) belongs to the next date
	spring = strings.Replace(spring, "20240310\t0000", "20240311\t0000", 1)
	checkHourly(t, "spring", spring, 23, utc("2024-03-10T00:00-05:00"))

	// 2024-11-03: 02:00 EDT becomes 01:00 EST; the hour ending 0200 local
	// after 0100 EDT is the repeated one: 0100 -0500 follows 0100 -0400.
	hours, offs = nil, nil
	hours = append(hours, "0100", "0100")
	offs = append(offs, "-0400", "-0500")
	for h := 2; h <= 23; h++ {
		hours = append(hours, fmt.Sprintf("%02d00", h))
		offs = append(offs, "-0500")
	}
	hours = append(hours, "0000")
	offs = append(offs, "-0500")
	autumn := strings.Replace(day("20241103", hours, offs), "20241103\t0000", "20241104\t0000", 1)
	checkHourly(t, "autumn", autumn, 25, utc("2024-11-03T00:00-04:00"))
}

func checkHourly(t *testing.T, what, body string, n int, start int64) {
	t.Helper()
	recs, _ := readAll(t, name(60), body, Options{})
	if len(recs) != n {
		t.Fatalf("%s: %d records, want %d", what, len(recs), n)
	}
	for i, rec := range recs {
		if rec.Read == nil {
			t.Fatalf("%s line %d rejected: %+v", what, i+2, rec.Rejected.Reasons)
		}
		if want := start + int64(i+1)*3_600_000; rec.Read.EndMillis != want {
			t.Fatalf("%s line %d ends %s, want %s", what, i+2, time.UnixMilli(rec.Read.EndMillis).UTC(), time.UnixMilli(want).UTC())
		}
	}
}

// TestMissingOffsetUsesZone: without UTC_offset the configured zone gives the
// offset, except on a change day, where the row is rejected.
func TestMissingOffsetUsesZone(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	body := header +
		"SP1\t1\t20240601\t1300\tKWH\tA\t\tE\t\n" +
		"SP1\t1\t20241103\t0100\tKWH\tA\t\tE\t\n" +
		"SP1\t1\t20241103\t0100\tKWH\tA\t-0500\tE\t\n" +
		"SP1\t1\t20240115\t1300\tKWH\tA\t\tE\t\n"
	recs, _ := readAll(t, name(60), body, Options{Check: Check{Location: ny}})
	if r := recs[0].Read; r == nil || r.OffsetMinutes != -240 || r.OffsetGiven || r.EndMillis != utc("2024-06-01T13:00-04:00") {
		t.Fatalf("summer row: %+v %+v", recs[0].Read, recs[0].Rejected)
	}
	rj := recs[1].Rejected
	if rj == nil || rj.Reasons[0].Code != records.CodeMissingUTCOffset || rj.Reasons[0].Field != "UTC_offset" || rj.Line != 3 {
		t.Fatalf("change day without offset: %+v", recs[1])
	}
	if recs[2].Read == nil || recs[3].Read == nil || recs[3].Read.OffsetMinutes != -300 {
		t.Fatalf("rows with an offset, and winter: %+v %+v", recs[2], recs[3])
	}
}

// TestRejectedRows: every bad input named in the issue, with its field and
// code, and the counts reconcile.
func TestRejectedRows(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, minutes, row string
		field, code        string
	}{
		{"off grid", "15", "SP1\t1\t20240601\t0010\tKWH\tA\t-0400\tE\t", "time", records.CodeOffGrid},
		{"mixed lengths: a 15-minute read in an hourly file", "60", "SP1\t1\t20240601\t0015\tKWH\tA\t-0400\tE\t", "time", records.CodeOffGrid},
		{"daily file not at midnight", "1440", "SP1\t1\t20240601\t0100\tKWH\tA\t-0400\tE\t", "time", records.CodeOffGrid},
		{"time 2460", "60", "SP1\t1\t20240601\t2460\tKWH\tA\t-0400\tE\t", "time", records.CodeBadTime},
		{"time 2400", "60", "SP1\t1\t20240601\t2400\tKWH\tA\t-0400\tE\t", "time", records.CodeBadTime},
		{"time with colon", "60", "SP1\t1\t20240601\t13:00\tKWH\tA\t-0400\tE\t", "time", records.CodeBadTime},
		{"unknown units", "60", "SP1\t1\t20240601\t1300\tBTU\tA\t-0400\tE\t", "units", records.CodeBadUnits},
		{"value not a number", "60", "SP1\tabc\t20240601\t1300\tKWH\tA\t-0400\tE\t", "usage_value", records.CodeBadNumber},
		{"value 1e3", "60", "SP1\t1e3\t20240601\t1300\tKWH\tA\t-0400\tE\t", "usage_value", records.CodeBadNumber},
		{"thousands separator", "60", "SP1\t1,000.5\t20240601\t1300\tKWH\tA\t-0400\tE\t", "usage_value", records.CodeThousandsSeparator},
		{"NA value", "60", "SP1\tNA\t20240601\t1300\tKWH\tA\t-0400\tE\t", "usage_value", records.CodeNullToken},
		{"bad date", "60", "SP1\t1\t20240230\t1300\tKWH\tA\t-0400\tE\t", "date", records.CodeBadDate},
		{"bad offset", "60", "SP1\t1\t20240601\t1300\tKWH\tA\t-05\tE\t", "UTC_offset", records.CodeBadOffset},
		{"offset beyond +14", "60", "SP1\t1\t20240601\t1300\tKWH\tA\t+1500\tE\t", "UTC_offset", records.CodeBadOffset},
		{"bad estimate", "60", "SP1\t1\t20240601\t1300\tKWH\tX\t-0400\tE\t", "is_estimate", records.CodeBadEstimate},
		{"bad service type", "60", "SP1\t1\t20240601\t1300\tKWH\tA\t-0400\tQ\t", "service_type", records.CodeBadServiceType},
		{"missing service point", "60", "\t1\t20240601\t1300\tKWH\tA\t-0400\tE\t", "service_point_id", records.CodeRequired},
		{"missing units", "60", "SP1\t1\t20240601\t1300\t\tA\t-0400\tE\t", "units", records.CodeRequired},
		{"field count", "60", "SP1\t1\t20240601\t1300\tKWH", "", records.CodeFieldCount},
		{"blank line", "60", "", "", records.CodeBlankLine},
		{"invalid UTF-8", "60", "SP\xff\t1\t20240601\t1300\tKWH\tA\t-0400\tE\t", "service_point_id", records.CodeInvalidUTF8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var mm int
			fmt.Sscan(c.minutes, &mm)
			// A good read after the bad one: an empty line that ends the file is no row.
			body := header + "SP0\t1\t20240601\t0000\tKWH\tA\t-0400\tE\t\n" + c.row + "\n" + "SP0\t1\t20240602\t0000\tKWH\tA\t-0400\tE\t\n"
			recs, r := readAll(t, name(mm), body, Options{})
			if recs[0].Read == nil {
				t.Fatalf("the good row was rejected: %+v", recs[0].Rejected)
			}
			rj := recs[1].Rejected
			if rj == nil {
				t.Fatalf("accepted: %+v", recs[1].Read)
			}
			if rj.Line != 3 || rj.Reasons[0].Field != c.field || rj.Reasons[0].Code != c.code {
				t.Fatalf("got line %d %+v, want field %q code %s", rj.Line, rj.Reasons, c.field, c.code)
			}
			if rj.Reasons[0].Message == "" || !strings.Contains(rj.Raw, strings.ToValidUTF8(c.row, "\uFFFD")) {
				t.Fatalf("no message or raw text: %+v", rj)
			}
			if st := r.Stats(); st.Accepted != 2 || st.Rejected != 1 || st.RejectedByCode[c.code] != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestSeveralReasonsInOneRow(t *testing.T) {
	t.Parallel()
	recs, _ := readAll(t, name(60), header+"SP1\tabc\t20240601\t2460\tBTU\tA\t-0400\tE\t\n", Options{})
	var codes []string
	for _, r := range recs[0].Rejected.Reasons {
		codes = append(codes, r.Code)
	}
	if got := strings.Join(codes, ","); got != "BAD_NUMBER,BAD_TIME,BAD_UNITS" {
		t.Fatalf("codes %s", got)
	}
}

func TestFileErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, file, body, want string
		opts                   Options
	}{
		{"billing name", "opwr_gec_res_v1-19-0_full_20240101000000.tsv", header, "billing file", Options{}},
		{"no length", "reads.tsv", header, "interval length cannot be taken", Options{}},
		{"length disagrees", name(15), header, "interval15 but 60", Options{Minutes: 60}},
		{"empty", name(15), "", "no header", Options{}},
		{"reordered header", name(15), strings.Replace(header, "date\ttime", "time\tdate", 1), "header position 3", Options{}},
		{"missing column", name(15), "service_point_id\tusage_value\tdate\ttime\tunits\n", "missing", Options{}},
		{"data instead of header", name(15), "SP1\t1\t20240601\t0015\tKWH\tA\t-0400\tE\t\n", "not a header", Options{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewReader(c.file, strings.NewReader(c.body), c.opts)
			var fe *filereader.FileError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) || fe.File != c.file {
				t.Fatalf("got %v, want a FileError about %q", err, c.want)
			}
		})
	}
}

func TestCompressedAndTruncated(t *testing.T) {
	t.Parallel()
	body := header + strings.Repeat("SP1\t1\t20240601\t0100\tKWH\tA\t-0400\tE\t\n", 1000)
	dir := t.TempDir()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(body))
	w.Close()
	gzPath := filepath.Join(dir, strings.Replace(name(60), ".tsv", ".gz", 1))
	os.WriteFile(gzPath, gz.Bytes(), 0o644)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	f, _ := zw.Create(name(60))
	f.Write([]byte(body))
	zw.Close()
	zipPath := filepath.Join(dir, strings.Replace(name(60), ".tsv", ".zip", 1))
	os.WriteFile(zipPath, zb.Bytes(), 0o644)
	// By path, and from memory: a zip in an io.ReaderAt needs no path.
	for i, p := range []string{gzPath, zipPath, zipPath + " from memory"} {
		var r *Reader
		var err error
		if i < 2 {
			r, err = Open(p, Options{})
		} else {
			r, err = NewReader(filepath.Base(zipPath), bytes.NewReader(zb.Bytes()), Options{})
		}
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			rec, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
			if rec.Read == nil {
				t.Fatalf("rejected %+v", rec.Rejected)
			}
			n++
		}
		r.Close()
		if n != 1000 || r.CompressedBytesRead() == 0 {
			t.Fatalf("%s: %d reads", p, n)
		}
	}
	// A truncated gzip ends the file with a FileError after the rows read.
	trunc := filepath.Join(dir, "t_"+filepath.Base(gzPath))
	os.WriteFile(trunc, gz.Bytes()[:gz.Len()/2], 0o644)
	r, err := Open(trunc, Options{Minutes: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		_, err := r.Next()
		if err == nil {
			continue
		}
		var fe *filereader.FileError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "send the file again") {
			t.Fatalf("truncated gzip: %v", err)
		}
		break
	}
}

func TestValidator(t *testing.T) {
	t.Parallel()
	v, err := NewValidator(Check{})
	if err != nil {
		t.Fatal(err)
	}
	good := records.IntervalRead{ServicePointID: "SP1", LocalDate: dates.MustParse("20240601"), LocalTime: 15, OffsetMinutes: -240, OffsetGiven: true, Minutes: 15, Value: 1, Units: "kwh"}
	if rs := v.Validate(&good); rs != nil {
		t.Fatal(rs)
	}
	if good.Units != "KWH" || good.Estimate != records.EstimateEstimated || good.EndMillis != utc("2024-06-01T00:15-04:00") {
		t.Fatalf("not canonicalised: %+v", good)
	}
	bad := records.IntervalRead{LocalDate: dates.MustParse("19000101"), LocalTime: 10, OffsetMinutes: 7, OffsetGiven: true, Minutes: 7, Units: "BTU", Estimate: 'X'}
	rs := v.Validate(&bad)
	var fields []string
	for _, r := range rs {
		fields = append(fields, r.Field+":"+r.Code)
	}
	if got := strings.Join(fields, " "); got != "service_point_id:REQUIRED minutes:BAD_LENGTH UTC_offset:BAD_OFFSET units:BAD_UNITS is_estimate:BAD_ESTIMATE date:DATE_OUT_OF_RANGE" {
		t.Fatalf("reasons %s", got)
	}
}
