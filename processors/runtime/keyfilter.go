package runtime

import (
	"context"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// keyFilter answers "is this state key surely not in the store?" without
// asking Pebble. The first row of every key looks for a state that is not
// there; Pebble answers that only after a seek in each memtable and a filter
// check in each table, 2.9 µs a key, 7% of the stages' CPU on a first load
// (docs/performance.md).
//
// It is a Bloom filter over every state key written since the store opened
// and every one found in it when it opened, added by a scan that runs in the
// background: until the scan is done, ready is false and every read goes to
// Pebble. A deleted key stays in the filter, so the filter can only say
// "maybe" too often, never "no" for a stored key.
//
// The filter grows by layers, each twice as large as the one before, so no
// size has to be known ahead: a key is in the filter when one layer has it.
type keyFilter struct {
	seed  maphash.Seed
	ready atomic.Bool

	mu     sync.RWMutex
	layers []*bloomLayer
}

const (
	// bloomBitsPerKey and bloomProbes give about 1% false positives a layer.
	bloomBitsPerKey = 10
	bloomProbes     = 7
	// firstLayerKeys is the capacity of the first layer (80 KiB).
	firstLayerKeys = 1 << 16
)

// bloomLayer is a blocked Bloom filter: a key's probes all fall in one
// 512-bit block, one cache line, picked by the top bits of its hash.
type bloomLayer struct {
	words     []uint64 // blocks of 8 words
	blockBits int      // log2 of the number of blocks
	n, cap    int
}

func newBloomLayer(capacity int) *bloomLayer {
	blocks := max(1, (capacity*bloomBitsPerKey+511)/512)
	blockBits := bits.Len(uint(blocks - 1))
	return &bloomLayer{words: make([]uint64, 8<<blockBits), blockBits: blockBits, cap: capacity}
}

// probes returns the block's first word and the bit positions' source: a
// second mix of h, so the positions do not depend on the bits that chose the
// block.
func (l *bloomLayer) probes(h uint64) (int, uint64) {
	block := 0
	if l.blockBits > 0 {
		block = int(h >> (64 - l.blockBits))
	}
	// The finaliser of splitmix64: every output bit depends on every input bit.
	z := h
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return block * 8, z ^ (z >> 31)
}

func (l *bloomLayer) add(h uint64) {
	w, z := l.probes(h)
	for range bloomProbes {
		bit := z & 511
		l.words[w+int(bit>>6)] |= 1 << (bit & 63)
		z >>= 9
	}
	l.n++
}

func (l *bloomLayer) has(h uint64) bool {
	w, z := l.probes(h)
	for range bloomProbes {
		bit := z & 511
		if l.words[w+int(bit>>6)]&(1<<(bit&63)) == 0 {
			return false
		}
		z >>= 9
	}
	return true
}

func newKeyFilter() *keyFilter {
	return &keyFilter{seed: maphash.MakeSeed(), layers: []*bloomLayer{newBloomLayer(firstLayerKeys)}}
}

func (f *keyFilter) hash(key []byte) uint64 { return maphash.Bytes(f.seed, key) }

// add puts the keys whose hashes (hash) are hs in the filter.
func (f *keyFilter) add(hs ...uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range hs {
		l := f.layers[len(f.layers)-1]
		if l.n >= l.cap {
			l = newBloomLayer(2 * l.cap)
			f.layers = append(f.layers, l)
		}
		l.add(h)
	}
}

// absent says that key is surely not stored: the scan is done and no layer
// has it.
func (f *keyFilter) absent(key []byte) bool {
	if !f.ready.Load() {
		return false
	}
	h := f.hash(key)
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, l := range f.layers {
		if l.has(h) {
			return false
		}
	}
	return true
}

// fill adds every state key of db, then makes the filter ready. Keys
// written meanwhile are added by the writes themselves, so a key stored
// before the scan's view or after it is in the filter either way. It stops
// early, not ready, when ctx ends (the store closes).
func (f *keyFilter) fill(ctx context.Context, db *pebble.DB) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindState}, UpperBound: []byte{kindState + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	const chunk = 1024
	batch := make([]uint64, 0, chunk)
	for it.First(); it.Valid(); it.Next() {
		batch = append(batch, f.hash(it.Key()))
		if len(batch) == chunk {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			f.add(batch...)
			batch = batch[:0]
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	f.add(batch...)
	f.ready.Store(true)
	return nil
}
