package httpin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/producers/interval/readrules"
	"github.com/usagestream/usagestream/records"
)

// TestOneSetOfReadRules (issue 13): what the file reader rejects,
// POST /v1/intervals and the Go client's validator reject too, with the same
// field and code: ids that are not UTF-8, hold control characters or exceed
// 256 bytes, and dates outside the plausible window. Before, the endpoint
// rewrote bad UTF-8 to U+FFFD and took tabs, 100 kB ids and year 9999.
func TestOneSetOfReadRules(t *testing.T) {
	long := strings.Repeat("S", readrules.MaxIDBytes+1)
	cases := []struct {
		name             string
		sp, channel, day string // day: YYYYMMDD
		field, code      string
		inFile           bool // expressible in a tab-separated file
	}{
		{"invalid UTF-8 id", "SP\xff", "", "20240601", "service_point_id", records.CodeInvalidUTF8, true},
		{"tab in id", "SP\t1", "", "20240601", "service_point_id", records.CodeControlChar, false},
		{"newline in id", "SP\n1", "", "20240601", "service_point_id", records.CodeControlChar, false},
		{"257-byte id", long, "", "20240601", "service_point_id", records.CodeTooLong, true},
		{"100 kB channel", "SP1", strings.Repeat("c", 100_000), "20240601", "service_quantity_identifier", records.CodeTooLong, false},
		{"year 0001", "SP1", "", "00010601", "date", records.CodeDateOutOfWindow, true},
		{"year 9999", "SP1", "", "99990601", "date", records.CodeDateOutOfWindow, true},
	}
	bounds := readrules.Window{}.Bounds()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// HTTP.
			d := c.day[:4] + "-" + c.day[4:6] + "-" + c.day[6:]
			ln, err := json.Marshal(map[string]any{"service_point_id": c.sp, "channel": c.channel,
				"interval_end": d + "T00:15:00-04:00", "minutes": 15, "value": 1.5, "units": "KWH"})
			if err != nil {
				t.Fatal(err)
			}
			if c.sp == "SP\xff" { // json.Marshal would have made it valid
				ln = []byte(strings.Replace(string(ln), `SP\ufffd`, "SP\xff", 1))
			}
			resp, reads, _ := Parse(append(ln, '\n'), bounds)
			if len(reads) != 0 || len(resp.Results) != 1 || !hasFail(resp.Results[0].Errors, c.field, c.code) {
				t.Fatalf("HTTP: %d reads, results %+v; want %s %s", len(reads), resp.Results, c.field, c.code)
			}
			// The Go client's validator.
			v, err := interval.NewValidator(interval.Check{})
			if err != nil {
				t.Fatal(err)
			}
			day, derr := dates.Parse(c.day)
			rd := records.IntervalRead{ServicePointID: c.sp, Channel: c.channel, LocalDate: day, LocalTime: 15, OffsetMinutes: -240,
				OffsetGiven: true, Minutes: 15, Value: 1, Units: "KWH"}
			if derr == nil {
				found := false
				for _, r := range v.Validate(&rd) {
					found = found || (r.Field == c.field && r.Code == c.code)
				}
				if !found {
					t.Fatalf("validator: %+v, want %s %s", v.Validate(&rd), c.field, c.code)
				}
			}
			// A file.
			if !c.inFile {
				return
			}
			body := "service_point_id\tusage_value\tdate\ttime\tunits\tis_estimate\tUTC_offset\tservice_type\tservice_quantity_identifier\n" +
				c.sp + "\t1\t" + c.day + "\t0015\tKWH\tA\t-0400\tE\t\n"
			r, err := interval.NewReader("opwr_gec_res_v1-19-0_interval15_20241104120000.tsv", strings.NewReader(body), interval.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if rec.Rejected == nil {
				t.Fatalf("file: accepted %+v", rec.Read)
			}
			found := false
			for _, rs := range rec.Rejected.Reasons {
				found = found || (rs.Field == c.field && rs.Code == c.code)
			}
			if !found {
				t.Fatalf("file: %+v, want %s %s", rec.Rejected.Reasons, c.field, c.code)
			}
		})
	}
}

func hasFail(fs []LineFail, field, code string) bool {
	for _, f := range fs {
		if f.Field == field && f.Code == code {
			return true
		}
	}
	return false
}
