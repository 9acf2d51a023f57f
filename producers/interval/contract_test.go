package interval

import (
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

func codes(rs []records.Reason) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Field+":"+r.Code)
	}
	return strings.Join(out, " ")
}

// TestReadTimeFromEndInstantAlone is the regression test of the 1970 bug: a
// read with only its UTC end instant (what an MDMS has) passed and was
// stored as 1970-01-01, its EndMillis overwritten from the empty local
// fields. Now its local date, time and offset come from the utility's zone
// and its instant stays.
func TestReadTimeFromEndInstantAlone(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(Check{Location: ny})
	if err != nil {
		t.Fatal(err)
	}
	end := utc("2024-06-01T04:15Z") // 00:15 EDT
	r := records.IntervalRead{ServicePointID: "SP1", EndMillis: end, Minutes: 15, Value: 1, Units: "KWH"}
	if rs := v.Validate(&r); rs != nil {
		t.Fatalf("refused: %v", codes(rs))
	}
	if r.EndMillis != end || r.LocalDate != dates.MustParse("20240601") || r.LocalTime != 15 || r.OffsetMinutes != -240 || r.OffsetGiven {
		t.Fatalf("read %+v: want end %d, local 2024-06-01 00:15 at -0400 from the zone", r, end)
	}
	// The repeated hour at the end of daylight saving time: two instants an
	// hour apart are two local ends 01:00 at -0400 and -0500.
	for _, c := range []struct {
		end    string
		offset int16
	}{{"2024-11-03T05:00Z", -240}, {"2024-11-03T06:00Z", -300}} {
		r := records.IntervalRead{ServicePointID: "SP1", EndMillis: utc(c.end), Minutes: 60, Value: 1, Units: "KWH"}
		if rs := v.Validate(&r); rs != nil || r.LocalTime != 60 || r.OffsetMinutes != c.offset {
			t.Fatalf("%s: %v %+v", c.end, codes(rs), r)
		}
	}
}

// TestReadTimeRules: missing, inconsistent or off-minute times are refused
// with the field and code; given twice and agreeing is accepted.
func TestReadTimeRules(t *testing.T) {
	t.Parallel()
	v, err := NewValidator(Check{})
	if err != nil {
		t.Fatal(err)
	}
	base := func() records.IntervalRead {
		return records.IntervalRead{ServicePointID: "SP1", Minutes: 15, Value: 1, Units: "KWH"}
	}
	local := func(r records.IntervalRead) records.IntervalRead {
		r.LocalDate, r.LocalTime, r.OffsetMinutes, r.OffsetGiven = dates.MustParse("20240601"), 15, -240, true
		return r
	}
	cases := []struct {
		name string
		r    records.IntervalRead
		want string
	}{
		{"no time at all", base(), "interval_end:REQUIRED"},
		{"both, agreeing", func() records.IntervalRead { r := local(base()); r.EndMillis = utc("2024-06-01T04:15Z"); return r }(), ""},
		{"both, an hour apart", func() records.IntervalRead { r := local(base()); r.EndMillis = utc("2024-06-01T05:15Z"); return r }(), "interval_end:INCONSISTENT_TIME"},
		{"instant with seconds", func() records.IntervalRead { r := base(); r.EndMillis = utc("2024-06-01T04:15Z") + 30_000; return r }(), "interval_end:BAD_TIME"},
		{"instant off the grid", func() records.IntervalRead { r := base(); r.EndMillis = utc("2024-06-01T04:10Z"); return r }(), "time:OFF_GRID"},
		{"instant in 1980", func() records.IntervalRead { r := base(); r.EndMillis = utc("1980-06-01T04:15Z"); return r }(), "date:DATE_OUT_OF_RANGE"},
	}
	for _, c := range cases {
		r := c.r
		if got := codes(v.Validate(&r)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	// A stored record carries both and they must agree as they stand.
	r := local(base())
	r.Estimate = records.EstimateActual
	r.EndMillis = utc("2024-06-01T04:15Z")
	if got := codes(v.CheckStored(&r)); got != "" {
		t.Fatalf("stored, agreeing: %s", got)
	}
	r.EndMillis += 3_600_000
	if got := codes(v.CheckStored(&r)); got != "interval_end:INCONSISTENT_TIME" {
		t.Fatalf("stored, an hour apart: %s", got)
	}
	r.LocalDate = 0
	if got := codes(v.CheckStored(&r)); got != "interval_end:REQUIRED" {
		t.Fatalf("stored without local date: %s", got)
	}
}
