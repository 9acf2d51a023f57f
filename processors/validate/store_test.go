package validate

import (
	"testing"

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
