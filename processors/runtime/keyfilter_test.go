package runtime

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/testwait"
)

// TestKeyFilterNeverForgetsAKey: across the growth of the filter by layers,
// every key added is "maybe" (never absent), and keys never added are
// mostly found absent.
func TestKeyFilterNeverForgetsAKey(t *testing.T) {
	f := newKeyFilter()
	f.ready.Store(true)
	const n = 300_000 // the first layer holds 65,536: three more layers
	r := rand.New(rand.NewPCG(1, 2))
	added := make([][]byte, n)
	for i := range added {
		added[i] = fmt.Appendf(nil, "s-SP-%d-%d", i, r.Uint64())
		f.add(f.hash(added[i]))
	}
	if len(f.layers) < 3 {
		t.Fatalf("%d layers for %d keys: the filter did not grow", len(f.layers), n)
	}
	for _, k := range added {
		if f.absent(k) {
			t.Fatalf("key %q added and found absent", k)
		}
	}
	falsePos := 0
	const probes = 200_000
	for i := range probes {
		if !f.absent(fmt.Appendf(nil, "s-other-%d", i)) {
			falsePos++
		}
	}
	// About 1% a layer; over four layers, under 5%.
	if rate := float64(falsePos) / probes; rate > 0.05 {
		t.Fatalf("%.1f%% of keys never added are 'maybe': the filter spares almost no reads", 100*rate)
	}
}

// writeStates writes value v for the keys in one batch of partition p.
func writeStates(t *testing.T, s *Store, p int32, keys []string, v func(string) []byte) {
	t.Helper()
	w := partitionWrite{p: p, eventTime: -1, changelogNext: 1}
	for _, k := range keys {
		w.states = append(w.states, stateWrite{key: []byte(k), value: v(k)})
	}
	if err := s.writePartitions([]partitionWrite{w}); err != nil {
		t.Fatal(err)
	}
}

// checkStates reads every key back: present ones with their value, deleted
// or never written ones not found.
func checkStates(t *testing.T, s *Store, p int32, want map[string][]byte, absent []string) {
	t.Helper()
	for k, v := range want {
		got, ok, err := s.Get(p, []byte(k))
		if err != nil || !ok || string(got) != string(v) {
			t.Fatalf("partition %d key %s: %q, found %v, err %v; want %q", p, k, got, ok, err, v)
		}
	}
	for _, k := range absent {
		if _, ok, err := s.Get(p, []byte(k)); ok || err != nil {
			t.Fatalf("partition %d key %s: found (err %v), want not found", p, k, err)
		}
	}
}

// TestStoreFilterSparesReadsAndHidesNothing: a store answers reads of keys
// never written without Pebble, and every key written is read back, before
// and after a restart (where the filter is rebuilt by a scan of the keys
// stored, while new keys are written), on every partition, with deleted keys
// gone.
func TestStoreFilterSparesReadsAndHidesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]map[string][]byte{0: {}, 1: {}, 2: {}}
	value := func(k string) []byte { return []byte("state of " + k) }
	var absent []string
	for i := range 30_000 {
		p := int32(i % 3)
		want[p][fmt.Sprintf("SP-%06d", i)] = value(fmt.Sprintf("SP-%06d", i))
		absent = append(absent, fmt.Sprintf("new-%06d", i))
	}
	for p, m := range want {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		writeStates(t, s, p, keys, value)
	}
	// A deleted key stays in the filter: it must still read as not found.
	deleted := []string{"SP-000000", "SP-000003"}
	writeStates(t, s, 0, deleted, func(string) []byte { return nil })
	delete(want[0], "SP-000000")
	delete(want[0], "SP-000003")

	if !testwait.For(10*time.Second, s.filter.ready.Load) {
		t.Fatal("the key filter of a new store never became ready")
	}
	before := s.reads.Load()
	for p := range want {
		checkStates(t, s, p, nil, absent)
	}
	if reads := s.reads.Load() - before; reads > int64(len(absent)*3/20) {
		t.Fatalf("%d of %d reads of absent keys went to Pebble: the filter spares none", reads, 3*len(absent))
	}
	for p := range want {
		checkStates(t, s, p, want[p], append([]string(nil), deleted...))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened: the keys stored come back into the filter through its scan,
	// and keys written while it runs through their writes.
	s, err = OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var fresh []string
	for i := range 2_000 {
		fresh = append(fresh, fmt.Sprintf("fresh-%05d", i))
		want[1][fresh[i]] = value(fresh[i])
	}
	writeStates(t, s, 1, fresh, value)
	for p := range want {
		checkStates(t, s, p, want[p], nil) // the scan may or may not be done
	}
	if !testwait.For(10*time.Second, s.filter.ready.Load) {
		t.Fatal("the key filter of a reopened store never became ready")
	}
	for p := range want {
		checkStates(t, s, p, want[p], absent)
	}
}

// TestStoreClosesDuringItsScan: closing a store whose filter scan still runs
// stops the scan first (the scan reads Pebble, which Close shuts).
func TestStoreClosesDuringItsScan(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range 200_000 {
		keys = append(keys, fmt.Sprintf("SP-%07d", i))
	}
	writeStates(t, s, 0, keys, func(k string) []byte { return []byte(k) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		s, err := OpenStore(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
