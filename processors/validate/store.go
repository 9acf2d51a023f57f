package validate

import (
	"container/list"
	"encoding"
	"errors"
	"fmt"
	"hash/maphash"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/usagestream/usagestream/processors/rules"
)

// state is a rule state that serialises: *rules.ServicePoint, *rules.Site,
// *rules.Customer. States are appended to one buffer (the batch copies them),
// not each marshalled into a new slice.
type state[T any] interface {
	*T
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

// PebbleStore is a rules.Store that keeps at most a fixed number of states
// decoded in memory and spills the least recently used to Pebble, so that
// memory stays bounded whatever the number of keys. Rows of one service point
// come together in a file, so nearly every Load after the first is a hit.
//
// It is not safe for concurrent use. Several stores may share one DB, each
// under its own key prefix.
type PebbleStore[T any, P state[T]] struct {
	db     *pebble.DB
	prefix string
	max    int
	items  map[string]*list.Element
	lru    list.List // of *entry[T, P], most recent first
	// last is the entry Load gave out last (nil when none): the rows of a
	// service point, and the memberships of a premise and of a customer,
	// come one after another, so most Loads are for it and need neither the
	// map nor the list.
	last  *entry[T, P]
	batch *pebble.Batch
	key   []byte
	buf   []byte // the state being written
	// spilled holds a hash of every key ever written out: a key not in it is
	// new, and needs no read from Pebble, which is most keys of a file. A
	// hash collision only costs a read that finds nothing.
	spilled *hashTab[struct{}]
	seed    maphash.Seed
	// evicted is told of every state written out, and of those still in memory
	// by Finish: the validator summarises states there instead
	// of reading them all back at the end.
	evicted func(key string, s P)
	// drop leaves evicted states unwritten (spilled then holds the keys
	// dropped), and makes Load of a dropped key fail with
	// errStateDropped: see openStateStores.
	drop bool
}

// errStateDropped is Load's error for a key whose state a dropping store let
// go: the run must start again with a store that writes states out.
var errStateDropped = errors.New("a state left memory and its key came back")

type entry[T any, P state[T]] struct {
	key string
	s   P
}

// batchBytes bounds the evicted states held in a batch before it is
// committed. The batch is allocated at batchCap and reset after each commit,
// so it keeps its buffer; Pebble drops the buffer of a batch that grew past
// 1 MiB instead, which meant a new one grown from nothing for every commit.
const (
	batchBytes = 768 << 10
	batchCap   = 1 << 20
)

// NewPebbleStore returns a store over db under prefix, holding at most
// capacity states decoded. evicted may be nil.
func NewPebbleStore[T any, P state[T]](db *pebble.DB, prefix string, capacity int, evicted func(string, P)) *PebbleStore[T, P] {
	return &PebbleStore[T, P]{db: db, prefix: prefix, max: max(capacity, 1), items: map[string]*list.Element{},
		batch: db.NewIndexedBatchWithSize(batchCap), evicted: evicted, spilled: newHashTab[struct{}](), seed: maphash.MakeSeed()}
}

func (s *PebbleStore[T, P]) dbKey(key string) []byte {
	s.key = append(append(s.key[:0], s.prefix...), key...)
	return s.key
}

// Load returns the state of key: from memory, else decoded from Pebble (or
// the batch not yet committed), else a new zero state.
func (s *PebbleStore[T, P]) Load(key string) (P, error) {
	if s.last != nil && s.last.key == key {
		return s.last.s, nil // at the front of the list already
	}
	if el, ok := s.items[key]; ok {
		s.lru.MoveToFront(el)
		s.last = el.Value.(*entry[T, P])
		return s.last.s, nil
	}
	v := P(new(T))
	if s.spilled.has(maphash.String(s.seed, key)) {
		if s.drop {
			return nil, errStateDropped // never shown: Run starts again
		}
		b, closer, err := s.batch.Get(s.dbKey(key))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("reading state %q from the temporary store: %w", key, err)
		default:
			err = v.UnmarshalBinary(b)
			closer.Close()
			if err != nil {
				return nil, fmt.Errorf("decoding state %q from the temporary store: %w", key, err)
			}
		}
	}
	// The key is kept: clone it so it does not pin the whole file line the
	// reader cut it from.
	k := string([]byte(key))
	s.last = &entry[T, P]{key: k, s: v}
	s.items[k] = s.lru.PushFront(s.last)
	if s.lru.Len() > s.max {
		if err := s.evict(s.lru.Back()); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Save does nothing: the state stays in memory until it is evicted, and
// Load hands out the same pointer until then.
func (s *PebbleStore[T, P]) Save(string, P) error { return nil }

func (s *PebbleStore[T, P]) evict(el *list.Element) error {
	e := el.Value.(*entry[T, P])
	if e == s.last {
		s.last = nil // only with a capacity of one
	}
	s.lru.Remove(el)
	delete(s.items, e.key)
	if err := s.write(e); err != nil {
		return err
	}
	if s.batch.Len() >= batchBytes {
		if err := s.batch.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("writing states to the temporary store: %w", err)
		}
		s.batch.Reset() // keeps the buffer (see batchBytes)
	}
	return nil
}

func (s *PebbleStore[T, P]) write(e *entry[T, P]) error {
	if s.drop {
		s.spilled.put(maphash.String(s.seed, e.key), struct{}{})
		if s.evicted != nil {
			s.evicted(e.key, e.s)
		}
		return nil
	}
	b, err := e.s.AppendBinary(s.buf[:0])
	if err != nil {
		return fmt.Errorf("encoding state %q: %w", e.key, err)
	}
	s.buf = b
	if err := s.batch.Set(s.dbKey(e.key), b, nil); err != nil {
		return fmt.Errorf("writing state %q to the temporary store: %w", e.key, err)
	}
	s.spilled.put(maphash.String(s.seed, e.key), struct{}{})
	if s.evicted != nil {
		s.evicted(e.key, e.s)
	}
	return nil
}

// Finish tells evicted of every state still in memory, without writing it
// out: the run is over and nothing reads states back. The store is not
// usable after it.
func (s *PebbleStore[T, P]) Finish() {
	for el := s.lru.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*entry[T, P]); s.evicted != nil {
			s.evicted(e.key, e.s)
		}
	}
	s.lru.Init()
	s.items, s.last = nil, nil
	_ = s.batch.Close() // uncommitted states are not needed any more
}

// Len is the number of states held in memory.
func (s *PebbleStore[T, P]) Len() int { return s.lru.Len() }

// stateStores are validate's three rule stores, each over its own Pebble DB
// in a folder of dir. Each store's keys come in the input's order, so when
// the file is sorted by them (files usually are) each DB's flushed tables
// do not overlap, and Pebble moves them down the levels instead of
// rewriting them; one DB shared under three key prefixes made every flush
// overlap the last, and its compactions rewrote every state (a tenth of the
// CPU of a 5-million-row run).
type stateStores struct {
	dbs   []*pebble.DB
	sps   *PebbleStore[rules.ServicePoint, *rules.ServicePoint]
	sites *PebbleStore[rules.Site, *rules.Site]
	custs *PebbleStore[rules.Customer, *rules.Customer]
}

// openStateStores opens the three stores under dir, each holding at most
// capacity states decoded; summarise is told of every service point's state
// as it is written out, and at finish of those still in memory.
//
// With drop, states that leave memory are not written out: in a file whose
// rows come grouped by service point, premise and customer (as extracts
// usually are), no key comes back once its state has left, and encoding
// and writing every state was a fifth of the CPU of a 5,000,000-row run.
// A key that does come back fails its Load with errStateDropped, and Run
// starts again with a store that writes (validateFiles with mayDrop false).
func openStateStores(dir string, capacity int, options func() *pebble.Options, summarise func(string, *rules.ServicePoint), drop bool) (*stateStores, error) {
	st := &stateStores{}
	for _, name := range []string{"servicepoints", "premises", "customers"} {
		db, err := pebble.Open(filepath.Join(dir, name), options())
		if err != nil {
			st.close()
			return nil, fmt.Errorf("validate: opening the temporary store in %s (set --temp-dir to a writable folder with room): %w", dir, err)
		}
		st.dbs = append(st.dbs, db)
	}
	st.sps = NewPebbleStore[rules.ServicePoint](st.dbs[0], "", capacity, summarise)
	st.sites = NewPebbleStore[rules.Site](st.dbs[1], "", capacity, nil)
	st.custs = NewPebbleStore[rules.Customer](st.dbs[2], "", capacity, nil)
	st.sps.drop, st.sites.drop, st.custs.drop = drop, drop, drop
	return st, nil
}

// finish tells summarise of the service points still in memory; the stores
// are not usable after it.
func (st *stateStores) finish() { st.sps.Finish(); st.sites.Finish(); st.custs.Finish() }

// close closes the DBs; their folder is removed by the caller.
func (st *stateStores) close() {
	for _, db := range st.dbs {
		_ = db.Close() // a throwaway store: nothing in it is kept
	}
}
