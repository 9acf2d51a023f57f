package validate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/processors/rules"
)

// TestPebbleStoreSpillsAndReadsBack: with room for one state, loading a
// second key writes the first out; loading the first again decodes what was
// written, not a new state; Finish reports every state once more.
func TestPebbleStoreSpillsAndReadsBack(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evicted := map[string]int{}
	s := NewPebbleStore[rules.ServicePoint](db, "s/", 1, func(k string, sp *rules.ServicePoint) { evicted[k]++ })
	a, err := s.Load("A")
	if err != nil {
		t.Fatal(err)
	}
	a.ID, a.ServiceType = "A", "G"
	a.Periods = []rules.Period{{Start: dates.MustParse("20240101"), DateTo: dates.MustParse("20240131"), Value: 42}}
	if _, err := s.Load("B"); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || evicted["A"] != 1 {
		t.Fatalf("%d states in memory, A evicted %d times", s.Len(), evicted["A"])
	}
	back, err := s.Load("A")
	if err != nil {
		t.Fatal(err)
	}
	if back == a || back.ServiceType != "G" || len(back.Periods) != 1 || back.Periods[0].Value != 42 {
		t.Fatalf("A read back as %+v", back)
	}
	if evicted["B"] != 1 {
		t.Fatalf("B evicted %d times", evicted["B"])
	}
	s.Finish()
	if evicted["A"] != 2 || evicted["B"] != 1 {
		t.Fatalf("after Finish: %v", evicted)
	}
}

// TestPebbleStoreEvictsLeastRecent: the state loaded last is never the one
// written out, however it was found (new, from the cache, the same key again).
func TestPebbleStoreEvictsLeastRecent(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evicted := map[string]int{}
	s := NewPebbleStore[rules.ServicePoint](db, "s/", 2, func(k string, sp *rules.ServicePoint) { evicted[k]++ })
	load := func(k string) *rules.ServicePoint {
		t.Helper()
		sp, err := s.Load(k)
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	a := load("A")
	if load("A") != a {
		t.Fatal("A loaded twice in a row: another state")
	}
	load("B")
	if load("A") != a || load("A") != a {
		t.Fatal("A from the cache: another state")
	}
	load("C") // B is the least recent
	if evicted["B"] != 1 || evicted["A"] != 0 {
		t.Fatalf("evicted %v, want B only", evicted)
	}
	load("B") // now A is
	if evicted["A"] != 1 || evicted["C"] != 0 {
		t.Fatalf("evicted %v, want A then", evicted)
	}
}

// TestStateStoresMoveSortedStatesDown: states written out in key order,
// as a file sorted by its ids writes them, reach the lower levels of each
// store's DB by moves, never rewritten by a compaction. The same states in
// one DB under three key prefixes (the layout before) are rewritten: each
// flush holds keys of all three ranges, so every table overlaps the last.
func TestStateStoresMoveSortedStatesDown(t *testing.T) {
	small := func() *pebble.Options {
		po := throwawayOptions()
		po.MemTableSize = 4 << 20 // above batchBytes, so that each flush holds batches of every store
		return po
	}
	const n = 60000
	pad := strings.Repeat("x", 300) // long keys: many flushes from few states
	key := func(i int) string { return fmt.Sprintf("%08d%s", i, pad) }
	load := func(sps *PebbleStore[rules.ServicePoint, *rules.ServicePoint], sites *PebbleStore[rules.Site, *rules.Site], custs *PebbleStore[rules.Customer, *rules.Customer]) {
		t.Helper()
		for i := range n {
			k := key(i)
			sp, err := sps.Load(k)
			if err != nil {
				t.Fatal(err)
			}
			sp.ID = k
			if _, err := sites.Load(k); err != nil {
				t.Fatal(err)
			}
			if _, err := custs.Load(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	rewritten := func(db *pebble.DB) (flushed, compacted uint64) {
		t.Helper()
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		// Compactions run in the background: wait until Pebble owes none.
		m := db.Metrics()
		for deadline := time.Now().Add(10 * time.Second); (m.Compact.NumInProgress > 0 || m.Compact.EstimatedDebt > 0) && time.Now().Before(deadline); m = db.Metrics() {
			time.Sleep(10 * time.Millisecond)
		}
		for _, l := range m.Levels {
			flushed += l.TableBytesFlushed
			compacted += l.TableBytesCompacted
		}
		return flushed, compacted
	}

	st, err := openStateStores(t.TempDir(), 16, small, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	load(st.sps, st.sites, st.custs)
	for i, db := range st.dbs {
		flushed, compacted := rewritten(db)
		if flushed < 4<<20 {
			t.Fatalf("store %d: only %d bytes flushed; the test needs several flushes", i, flushed)
		}
		if compacted != 0 {
			t.Errorf("store %d: %d of %d bytes flushed were rewritten by compactions; sorted states should only move down", i, compacted, flushed)
		}
	}

	shared, err := pebble.Open(t.TempDir(), small())
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	load(NewPebbleStore[rules.ServicePoint](shared, "s/", 16, nil), NewPebbleStore[rules.Site](shared, "p/", 16, nil), NewPebbleStore[rules.Customer](shared, "c/", 16, nil))
	if flushed, compacted := rewritten(shared); compacted == 0 {
		t.Errorf("one shared DB: none of %d bytes flushed rewritten; the comparison above proves nothing", flushed)
	}
}
