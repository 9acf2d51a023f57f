package records

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseFileName: file names as they arrive in the drop folder (the
// naming convention, data contract 2.3).
//
// Properties: no panic; an error is a *NameError that names the part that
// is wrong, quotes the name, and clips what it quotes (the message stays
// short whatever the name's length) and leaves Conforms false; a name that
// conforms has every part the convention allows (a 3-4 character utility,
// a known population and kind, a UTC timestamp that formats back to the
// name's 14 digits), and parsing it again, or in another letter case, gives
// the same parts.
func FuzzParseFileName(f *testing.F) {
	for _, s := range []string{
		"opwr_gec_res_v1-19-0_full_20240201123005.gz",
		"OPWR_GEC_RES_v1-19-0_FULL_20240201123005.TSV.GZ",
		"opwr_gec_res_v1-19-0_interval1440_20240201123005.zip",
		"opwr_gec_res_v1-19-0_interval0015_20240201123005.txt",
		"opwr_gec_res_v1-19-0_full_20240230000000.gz",
		"opwr_gec_res_v1--0_full_20240201123005.gz",
		"opwr_gec_res_v1-19-0_full_2024020112300\xff.gz",
		"opwr_g\u00e9c_res_v1_full_20240201123005.gz",
		"opwr_" + strings.Repeat("x", 300) + "_res_v1_full_20240201123005.gz",
		".gz", "", "a_b_c_d_e_f.txt", "opwr_gec_res_v1_full_00000101000000.gz",
	} {
		f.Add(s)
	}
	parts := map[string]bool{"extension": true, "parts": true, "prefix": true, "utility": true, "population": true, "version": true, "kind": true, "timestamp": true}
	f.Fuzz(func(t *testing.T, base string) {
		if len(base) > 1<<12 {
			return
		}
		fn, err := ParseFileName(base)
		if err != nil {
			var ne *NameError
			if !errors.As(err, &ne) || !parts[ne.Part] || ne.Base != base || ne.Problem == "" || fn.Conforms {
				t.Fatalf("error %#v (conforms %v)", err, fn.Conforms)
			}
			if msg := err.Error(); !strings.Contains(msg, ne.Part) || len(ne.Problem) > 400 {
				t.Fatalf("error %q does not name the part, or quotes too much (%d bytes)", msg, len(ne.Problem))
			}
			return
		}
		if !fn.Conforms || fn.Base != base || len(fn.Utility) < 3 || len(fn.Utility) > 4 || fn.Population == "" || fn.Kind == "" ||
			(fn.Layout == "") == (fn.IntervalMinutes == 0) || fn.Timestamp.Location() != time.UTC {
			t.Fatalf("accepted %q as %+v", base, fn)
		}
		if ts := fn.Timestamp.Format("20060102150405"); !strings.Contains(base, "_"+ts+".") {
			t.Fatalf("timestamp %s is not the name's", ts)
		}
		again, err := ParseFileName(base)
		if err != nil || again != fn {
			t.Fatalf("parsing again: %+v %v", again, err)
		}
		up, err := ParseFileName(strings.ToUpper(base))
		if err != nil || up.Population != fn.Population || up.Kind != fn.Kind || up.Layout != fn.Layout ||
			up.IntervalMinutes != fn.IntervalMinutes || !up.Timestamp.Equal(fn.Timestamp) || !strings.EqualFold(up.Utility, fn.Utility) {
			t.Fatalf("upper case %+v %v, want %+v", up, err, fn)
		}
	})
}
