package dates

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		ok   bool
		want string
	}{
		{"20240229", true, "2024-02-29"},
		{"20230229", false, ""},
		{"20240230", false, ""},
		{"19000229", false, ""},
		{"20000229", true, "2000-02-29"},
		{"20241301", false, ""},
		{"20240100", false, ""},
		{"2024011", false, ""},
		{"2024-01-01", false, ""},
		{"2024011a", false, ""},
		{"NA", false, ""},
		{"00000101", false, ""},
		{"19691231", true, "1969-12-31"},
	}
	for _, c := range cases {
		d, err := Parse(c.in)
		if (err == nil) != c.ok {
			t.Fatalf("Parse(%q) err=%v, want ok=%v", c.in, err, c.ok)
		}
		if c.ok && d.ISO() != c.want {
			t.Fatalf("Parse(%q) = %s, want %s", c.in, d.ISO(), c.want)
		}
		if c.ok && d.String() != c.in {
			t.Fatalf("round trip %q -> %q", c.in, d.String())
		}
	}
}

func TestEpochAndArithmetic(t *testing.T) {
	t.Parallel()
	if MustParse("19700101") != 0 {
		t.Fatal("1970-01-01 must be day 0 (Avro date)")
	}
	if got := MustParse("20240131").AddMonths(1).String(); got != "20240229" {
		t.Fatalf("Jan 31 + 1 month = %s, want 20240229", got)
	}
	if got := MustParse("20240315").AddMonths(-3).String(); got != "20231215" {
		t.Fatalf("Mar 15 - 3 months = %s", got)
	}
	if got := MustParse("20240301").AddDays(-1).String(); got != "20240229" {
		t.Fatalf("Mar 1 - 1 day = %s", got)
	}
}

// TestCivilAgreesWithTimePackage: the fast civil arithmetic against Go's
// time package for every day from 1600 to 2400.
func TestCivilAgreesWithTimePackage(t *testing.T) {
	t.Parallel()
	start := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 292_200; i++ {
		tt := start.AddDate(0, 0, i)
		d := Date(tt.Unix() / 86400)
		y, m, day := d.Civil()
		if y != tt.Year() || m != tt.Month() || day != tt.Day() {
			t.Fatalf("Civil(%d) = %d-%d-%d, want %s", d, y, m, day, tt.Format("2006-01-02"))
		}
		if FromCivil(y, m, day) != d {
			t.Fatalf("FromCivil(%d, %d, %d) = %d, want %d", y, m, day, FromCivil(y, m, day), d)
		}
		if d.String() != tt.Format("20060102") {
			t.Fatalf("String %s, want %s", d, tt.Format("20060102"))
		}
	}
}
