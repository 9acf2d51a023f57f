package validate

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"testing"
)

// TestHashTabActsAsAMap: random puts, gets and deletes agree with a map,
// with keys drawn from a small range (long probe runs that wrap around the
// table, deletes inside them) and the key 0.
func TestHashTabActsAsAMap(t *testing.T) {
	for _, space := range []uint64{50, 5000, 1 << 62} {
		rng := rand.New(rand.NewPCG(1, space))
		tab, want := newHashTab[int](), map[uint64]int{}
		for i := range 200000 {
			k := rng.Uint64N(space)
			if space < 100 {
				k *= 1024 // at most 50 keys in 1,024 slots, every one's home slot 0: one long run
			}
			switch rng.IntN(3) {
			case 0:
				tab.put(k, i)
				want[k] = i
			case 1:
				tab.del(k)
				delete(want, k)
			default:
				v, ok := tab.get(k)
				if w, wok := want[k]; ok != wok || v != w {
					t.Fatalf("space %d op %d: get(%d) = %d, %v; want %d, %v", space, i, k, v, ok, w, wok)
				}
			}
			if tab.len() != len(want) {
				t.Fatalf("space %d op %d: len %d, want %d", space, i, tab.len(), len(want))
			}
		}
		seen := 0
		tab.each(func(k uint64, v int) {
			seen++
			if w, ok := want[k]; !ok || w != v {
				t.Fatalf("space %d: each gave %d=%d, want %d (%v)", space, k, v, w, ok)
			}
		})
		if seen != len(want) {
			t.Fatalf("space %d: each gave %d keys, want %d", space, seen, len(want))
		}
	}
}

// BenchmarkHashTab: a million service point ids' hashes put in a hashTab
// and in a built-in map, as the distinct-id sets do with a 5-million-row
// file's.
func BenchmarkHashTab(b *testing.B) {
	seed := maphash.MakeSeed()
	keys := make([]uint64, 1<<20)
	for i := range keys {
		keys[i] = maphash.String(seed, fmt.Sprintf("SP-E-%08d", i))
	}
	b.Run("hashTab", func(b *testing.B) {
		for b.Loop() {
			t := newHashTab[struct{}]()
			for _, k := range keys {
				t.put(k, struct{}{})
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			t := map[uint64]struct{}{}
			for _, k := range keys {
				t[k] = struct{}{}
			}
		}
	})
}
