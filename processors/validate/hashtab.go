package validate

// hashTab maps 64-bit hashes to small pointer-free values: the distinct-id
// sets, the service points' summaries and the keys a store has written
// out, each up to one entry per entity of the input. It is open addressing
// with linear probing over two flat slices, kept at most three quarters
// full: an insert probes a few adjacent slots, mostly in one cache line,
// where the built-in map's inserts (a hash of the key again, its groups,
// its growth) were 9% of the CPU of a 5-million-row run (BenchmarkHashTab).
// The keys are maphash values, spread already, so the low bits pick the
// slot.
//
// Key 0 marks an empty slot; the key 0 itself is kept apart.
type hashTab[V any] struct {
	keys    []uint64
	vals    []V
	n       int // entries in keys, the key 0 not counted
	hasZero bool
	zero    V
}

func newHashTab[V any]() *hashTab[V] {
	const initial = 1 << 10
	return &hashTab[V]{keys: make([]uint64, initial), vals: make([]V, initial)}
}

// len is the number of keys.
func (t *hashTab[V]) len() int {
	if t.hasZero {
		return t.n + 1
	}
	return t.n
}

// slot is where k is, or the empty slot where it would go.
func (t *hashTab[V]) slot(k uint64) int {
	mask := uint64(len(t.keys) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		if t.keys[i] == k || t.keys[i] == 0 {
			return int(i)
		}
	}
}

// get returns the value of k and whether k is there.
func (t *hashTab[V]) get(k uint64) (V, bool) {
	if k == 0 {
		return t.zero, t.hasZero
	}
	i := t.slot(k)
	return t.vals[i], t.keys[i] != 0
}

func (t *hashTab[V]) has(k uint64) bool {
	_, ok := t.get(k)
	return ok
}

// put sets the value of k.
func (t *hashTab[V]) put(k uint64, v V) {
	if k == 0 {
		t.zero, t.hasZero = v, true
		return
	}
	i := t.slot(k)
	if t.keys[i] == 0 {
		if 4*(t.n+1) > 3*len(t.keys) {
			t.grow()
			i = t.slot(k)
		}
		t.keys[i] = k
		t.n++
	}
	t.vals[i] = v
}

func (t *hashTab[V]) grow() {
	keys, vals := t.keys, t.vals
	t.keys, t.vals = make([]uint64, 2*len(keys)), make([]V, 2*len(keys))
	for i, k := range keys {
		if k != 0 {
			j := t.slot(k)
			t.keys[j], t.vals[j] = k, vals[i]
		}
	}
}

// del removes k, moving back the entries after it that probed past its
// slot, so that no probe sequence has a hole (no tombstones).
func (t *hashTab[V]) del(k uint64) {
	if k == 0 {
		var zero V
		t.zero, t.hasZero = zero, false
		return
	}
	i := t.slot(k)
	if t.keys[i] == 0 {
		return
	}
	mask := len(t.keys) - 1
	var zero V
	for j := (i + 1) & mask; t.keys[j] != 0; j = (j + 1) & mask {
		home := int(t.keys[j]) & mask
		// The entry at j may move to the hole at i when its home slot is
		// not in the cyclic range (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.keys[i], t.vals[i] = t.keys[j], t.vals[j]
			i = j
		}
	}
	t.keys[i], t.vals[i] = 0, zero
	t.n--
}

// each calls fn for every key and value, in no particular order.
func (t *hashTab[V]) each(fn func(k uint64, v V)) {
	if t.hasZero {
		fn(0, t.zero)
	}
	for i, k := range t.keys {
		if k != 0 {
			fn(k, t.vals[i])
		}
	}
}
