package records

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOrderByNameTimestampCustomerFirst(t *testing.T) {
	t.Parallel()
	got := Order([]string{
		"opwr_gec_res_v1-19-0_usage_20250201000000.gz",
		"opwr_gec_res_v1-19-0_full_20250101000000.gz",
		"opwr_gec_res_v1-19-0_customer_20250201000000.gz",
	})
	want := []string{
		"opwr_gec_res_v1-19-0_full_20250101000000.gz",
		"opwr_gec_res_v1-19-0_customer_20250201000000.gz",
		"opwr_gec_res_v1-19-0_usage_20250201000000.gz",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("order %v, want %v", got, want)
	}
}

// FuzzOrder: file names as Order sorts them (docs/data-contract.md §2.5), names
// separated by newlines; the files do not exist, so a name that does not
// conform sorts with the zero time.
//
// Properties: no panic; the result is a permutation of the input; files
// whose names conform come in timestamp order, customer before usage at
// equal timestamps, and names sorting equal keep their given order.
func FuzzOrder(f *testing.F) {
	f.Add("opwr_gec_res_v1_usage_20240201123005.gz\nopwr_gec_res_v1_customer_20240201123005.gz\nopwr_gec_res_v1_full_20240101000000.gz")
	f.Add("x.gz\nopwr_gec_res_v1_full_20240101000000.gz\ny")
	f.Add("a/opwr_gec_res_v1_full_20240101000000.gz\nb/opwr_gec_res_v1_full_20240101000000.gz")
	f.Add("\n\n")
	f.Fuzz(func(t *testing.T, names string) {
		if len(names) > 1<<12 {
			return
		}
		in := strings.Split(names, "\n")
		if len(in) > 32 {
			return
		}
		// Paths that cannot exist: Order stats a name that does not conform.
		for i, n := range in {
			in[i] = filepath.Join("/nonexistent-usagestream-fuzz", n)
		}
		out := Order(slices.Clone(in))
		a, b := slices.Clone(in), slices.Clone(out)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("not a permutation:\n%q\n%q", in, out)
		}
		type key struct {
			ok   bool
			ts   int64
			rank int
		}
		keyOf := func(p string) key {
			fn, err := ParseFileName(filepath.Base(p))
			if err != nil || !fn.Conforms {
				return key{}
			}
			r := 2
			switch fn.Layout {
			case LayoutCustomer:
				r = 0
			case LayoutUsage:
				r = 1
			}
			return key{true, fn.Timestamp.Unix(), r}
		}
		pos := map[string]int{}
		for i, p := range in {
			if _, ok := pos[p]; !ok {
				pos[p] = i
			}
		}
		for i := 1; i < len(out); i++ {
			x, y := keyOf(out[i-1]), keyOf(out[i])
			if !x.ok || !y.ok {
				continue // the zero time of a missing file sorts before any name's
			}
			if x.ts > y.ts || x.ts == y.ts && x.rank > y.rank {
				t.Fatalf("%q before %q", out[i-1], out[i])
			}
			if x == y && out[i-1] != out[i] && pos[out[i-1]] > pos[out[i]] {
				t.Fatalf("%q and %q sort equal but changed order", out[i-1], out[i])
			}
		}
	})
}
