package ingest

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/producers/billing"
)

// FuzzCheckpoint: values of the ingest-checkpoints topic, decoded as
// loadCheckpoint does (a value that does not decode is skipped; the newest
// one that does decides a resume).
//
// Properties: no panic; a value that decodes survives a JSON round trip
// unchanged (what a resume reads is what the next checkpoint writes). What
// the value says is not checked by ingest (a negative next_line or counts,
// an unknown status are taken as they are): reported in issue 13; this
// target checks only what holds.
func FuzzCheckpoint(f *testing.F) {
	f.Add([]byte(`{"sha256":"ab","file":"f.gz","generation":1,"status":"running","next_line":12,"read":10,"published":9,"rejected":1,"rejected_by_code":{"BAD_DATE":1},"updated":"2024-06-01T00:00:00Z"}`))
	f.Add([]byte(`{"status":"completed","next_line":-1,"generation":-9223372036854775808}`))
	f.Add([]byte(`{"updated":"not a time"}`))
	f.Add([]byte(`{"rejected_by_code":{"":-1}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte("{\"file\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, value []byte) {
		if len(value) > 1<<14 {
			return
		}
		var cp Checkpoint
		if json.Unmarshal(value, &cp) != nil {
			return // skipped, as loadCheckpoint does
		}
		b, err := json.Marshal(cp)
		if err != nil {
			t.Fatalf("a decoded checkpoint does not encode: %v", err)
		}
		var back Checkpoint
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("a re-encoded checkpoint does not decode: %v (%s)", err, b)
		}
		// Times compare by instant; an empty map and none encode alike.
		if len(cp.RejectedByCode) == 0 {
			cp.RejectedByCode = nil
		}
		if !back.Updated.Equal(cp.Updated) {
			t.Fatalf("updated %v, want %v", back.Updated, cp.Updated)
		}
		back.Updated = cp.Updated
		if !reflect.DeepEqual(back, cp) {
			t.Fatalf("round trip:\n%+v\n%+v", back, cp)
		}
		if len(b) > 2*len(value)+512 {
			t.Fatalf("%d bytes decoded to a checkpoint of %d", len(value), len(b))
		}
	})
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
			fn, err := billing.ParseFileName(filepath.Base(p))
			if err != nil || !fn.Conforms {
				return key{}
			}
			r := 2
			switch fn.Layout {
			case billing.LayoutCustomer:
				r = 0
			case billing.LayoutUsage:
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
