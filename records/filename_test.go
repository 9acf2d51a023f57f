package records

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseFileName(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 2, 1, 12, 30, 5, 0, time.UTC)
	good := []struct {
		base       string
		utility    string
		population string
		version    string
		kind       string
		layout     Layout
		minutes    int
	}{
		{"opwr_gec_res_v1-19-0_full_20240201123005.gz", "gec", "res", "v1-19-0", "full", LayoutFull, 0},
		{"opwr_gecx_nonres_v1-19-0_customer_20240201123005.zip", "gecx", "nonres", "v1-19-0", "customer", LayoutCustomer, 0},
		{"opwr_abc_nonres-smb_v2-0_usage_20240201123005.tsv", "abc", "nonres-smb", "v2-0", "usage", LayoutUsage, 0},
		{"opwr_abc_nonres-lci_v1_full_20240201123005.txt", "abc", "nonres-lci", "v1", "full", LayoutFull, 0},
		{"opwr_gec_res_v1-19-0_interval15_20240201123005.gz", "gec", "res", "v1-19-0", "interval15", "", 15},
		{"opwr_gec_res_v1-19-0_interval60_20240201123005.zip", "gec", "res", "v1-19-0", "interval60", "", 60},
		{"opwr_gec_res_v1-19-0_interval1440_20240201123005.gz", "gec", "res", "v1-19-0", "interval1440", "", 1440},
		{"opwr_gec_res_v1-19-0_interval5_20240201123005.tsv.gz", "gec", "res", "v1-19-0", "interval5", "", 5},
		{"OPWR_GEC_RES_v1-19-0_FULL_20240201123005.GZ", "GEC", "res", "v1-19-0", "full", LayoutFull, 0},
		{"opwr_g2c_res_1-19-0_full_20240201123005.gz", "g2c", "res", "1-19-0", "full", LayoutFull, 0},
		{"opwr_gec_res_v1-19-0_interval60_20240201123005.xml.gz", "gec", "res", "v1-19-0", "interval60", "", 60},
	}
	for _, c := range good {
		fn, err := ParseFileName(c.base)
		if err != nil {
			t.Errorf("%s: %v", c.base, err)
			continue
		}
		want := FileName{Base: c.base, Utility: c.utility, Population: c.population, SpecVersion: c.version, Kind: c.kind,
			Layout: c.layout, IntervalMinutes: c.minutes, Timestamp: ts, Conforms: true}
		if fn != want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.base, fn, want)
		}
	}

	bad := []struct {
		base, part, msg string
	}{
		{"opwr_ge_res_v1-19-0_full_20240201123005.gz", "utility", `"ge" must be 3 or 4`},
		{"opwr_gecxy_res_v1-19-0_full_20240201123005.gz", "utility", `"gecxy" must be 3 or 4`},
		{"opwr_g-c_res_v1-19-0_full_20240201123005.gz", "utility", "letters or digits"},
		{"opwr_gec_residential_v1-19-0_full_20240201123005.gz", "population", "res, nonres, nonres-smb or nonres-lci"},
		{"opwr_gec_res_v1.19.0_full_20240201123005.gz", "version", "digits separated by hyphens"},
		{"opwr_gec_res_v1--0_full_20240201123005.gz", "version", "digits separated by hyphens"},
		{"opwr_gec_res_v_full_20240201123005.gz", "version", "digits separated by hyphens"},
		{"opwr_gec_res_v1-19-0_billing_20240201123005.gz", "kind", "full, customer, usage or interval<mm>"},
		{"opwr_gec_res_v1-19-0_interval7_20240201123005.gz", "kind", "interval<mm>"},
		{"opwr_gec_res_v1-19-0_interval_20240201123005.gz", "kind", "interval<mm>"},
		{"opwr_gec_res_v1-19-0_full_20241301123005.gz", "timestamp", "not a real date and time"},
		{"opwr_gec_res_v1-19-0_full_20240230000000.gz", "timestamp", "not a real date and time"},
		{"opwr_gec_res_v1-19-0_full_20240201250000.gz", "timestamp", "not a real date and time"},
		{"opwr_gec_res_v1-19-0_full_202402011230.gz", "timestamp", "14 digits"},
		{"opwr_gec_res_v1-19-0_full_2024-02-01T12.gz", "timestamp", "14 digits"},
		{"opwr_gec_res_full_20240201123005.gz", "parts", "count is 5"},
		{"opwr_gec_res_v1-19-0_full.gz", "parts", "count is 5"},
		{"opwr_gec_res_v1-19-0_full_20240201123005_x.gz", "parts", "count is 7"},
		{"opwr.gz", "parts", "count is 1"},
		{"xpwr_gec_res_v1-19-0_full_20240201123005.gz", "prefix", `"xpwr" must be "opwr"`},
		{"opwr_gec_res_v1-19-0_full_20240201123005", "extension", "is missing"},
		{"opwr_gec_res_v1-19-0_full_20240201123005.csv", "extension", "is missing"},
		{"", "extension", "is missing"},
	}
	for _, c := range bad {
		fn, err := ParseFileName(c.base)
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("%s: got %v, want a *NameError", c.base, err)
			continue
		}
		if ne.Part != c.part || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), nameConvention) {
			t.Errorf("%s: part %s, %q; want part %s with %q", c.base, ne.Part, err, c.part, c.msg)
		}
		if fn.Conforms || fn.Base != c.base {
			t.Errorf("%s: %+v", c.base, fn)
		}
	}

	// Parts read before the faulty one are kept, for messages.
	fn, _ := ParseFileName("opwr_gec_res_v1-19-0_full_2024.gz")
	if fn.Utility != "gec" || fn.Population != "res" || fn.Layout != LayoutFull || !fn.Timestamp.IsZero() {
		t.Errorf("partial parse %+v", fn)
	}
}

func TestIsXML(t *testing.T) {
	t.Parallel()
	for base, want := range map[string]bool{
		"a.xml": true, "a.XML.gz": true, "a.xml.zip": true, "opwr_gec_res_v1-19-0_interval60_20240201123005.xml.gz": true,
		"a.tsv.gz": false, "a.gz": false, "xml": false, "a.xml.tsv": false,
	} {
		if got := IsXML(base); got != want {
			t.Errorf("IsXML(%q) = %v, want %v", base, got, want)
		}
	}
}
