package records

import (
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Order sorts files as data contract 2.5 asks: by the timestamp in their name
// (files given together were all received together), a file whose name does
// not conform by its modification time; at equal timestamps the customer file
// before the usage file, so accounts exist before their usage; then as given.
// Ingest publishes in this order and offline validation reads in it, so both
// see the same accounts before the same usage.
func Order(paths []string) []string {
	type entry struct {
		path string
		ts   time.Time
		rank int
	}
	es := make([]entry, len(paths))
	for i, p := range paths {
		e := entry{path: p, rank: 2}
		if fn, err := ParseFileName(filepath.Base(p)); err == nil && fn.Conforms {
			e.ts = fn.Timestamp
			switch fn.Layout {
			case LayoutCustomer:
				e.rank = 0
			case LayoutUsage:
				e.rank = 1
			}
		} else if st, err := os.Stat(p); err == nil {
			e.ts = st.ModTime().UTC()
		}
		es[i] = e
	}
	slices.SortStableFunc(es, func(a, b entry) int {
		if c := a.ts.Compare(b.ts); c != 0 {
			return c
		}
		return a.rank - b.rank
	})
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.path
	}
	return out
}
