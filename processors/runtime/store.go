package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// Store is one processor instance's local state: a Pebble database holding,
// for every partition it has owned, the state of each key and the offsets
// that state reflects.
//
// Key layout (every key starts with a one-byte kind and the partition as a
// 4-byte big-endian number, so one partition's keys are contiguous and can be
// scanned or dropped as a range):
//
//	's' partition userKey            -> encoded state of userKey
//	'm' partition "changelog"        -> next changelog offset to apply (uint64 BE)
//	'm' partition "in" topic         -> next input offset of topic the state reflects
//	't' partition fireAt(8 BE) kind userKey -> timer (empty value)
//
// Invariant: the states of a partition and its 'm' offsets are only ever
// written together in one batch, so after any crash the offsets say exactly
// which changelog records the states already contain.
type Store struct {
	db *pebble.DB
}

const (
	kindState = 's'
	kindMeta  = 'm'
	kindTimer = 't'
)

// OpenStore opens (or creates) the Pebble database in dir. Pebble's own
// messages go to log (nil: dropped), at debug level but for errors.
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := pebble.Open(dir, &pebble.Options{
		Logger: pebbleLogger{log.With("component", "pebble")},
		// No WAL: the changelog is the durable log. After a crash Pebble is
		// back at its last flushed memtable, and since states and the
		// changelog offset they reflect are written in the same batches,
		// that older view is consistent and restore catches it up.
		DisableWAL: true,
		// States are overwritten every few seconds while a file flows; a
		// large memtable absorbs those overwrites instead of flushing and
		// compacting each version.
		MemTableSize: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the state store in %s (is another instance using this --data-dir?): %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close flushes the memtable (there is no WAL to replay it from) and closes
// the database, so a clean stop restarts without a restore.
func (s *Store) Close() error {
	ferr := s.db.Flush()
	return errors.Join(ferr, s.db.Close())
}

// pebbleLogger sends Pebble's log lines to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...)) // Pebble's contract: Fatalf does not return
}

func prefix(kind byte, p int32) []byte {
	b := make([]byte, 5, 64)
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:], uint32(p))
	return b
}

func stateKey(p int32, key []byte) []byte { return append(prefix(kindState, p), key...) }

func metaKey(p int32, name string) []byte { return append(prefix(kindMeta, p), name...) }

// Get returns the stored state of key in partition p.
func (s *Store) Get(p int32, key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(stateKey(p, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading state: %w", err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

func (s *Store) getUint(k []byte) (int64, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt offset record %q", k)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// ChangelogOffset is the next changelog offset partition p has to apply.
func (s *Store) ChangelogOffset(p int32) (int64, error) { return s.getUint(metaKey(p, "changelog")) }

// InputOffset is the next offset of topic/p that p's state reflects.
func (s *Store) InputOffset(p int32, topic string) (int64, error) {
	return s.getUint(metaKey(p, "in"+topic))
}

func u64(n int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(n))
	return b
}

// Batch accumulates writes applied atomically by Commit. Closing it twice
// would hand the same pooled Pebble batch to two users, so it tracks that.
type Batch struct {
	b      *pebble.Batch
	closed bool
}

// NewBatch starts a batch.
// It is indexed, so reads through it see its own writes (the timer index
// needs that).
func (s *Store) NewBatch() *Batch { return &Batch{b: s.db.NewIndexedBatch()} }

// Set stores a state (nil value deletes it).
func (b *Batch) Set(p int32, key, value []byte) {
	if value == nil {
		_ = b.b.Delete(stateKey(p, key), nil)
		return
	}
	_ = b.b.Set(stateKey(p, key), value, nil)
}

// SetChangelogOffset records the next changelog offset of p.
func (b *Batch) SetChangelogOffset(p int32, next int64) {
	_ = b.b.Set(metaKey(p, "changelog"), u64(next), nil)
}

// SetInputOffset records the next input offset of topic/p.
func (b *Batch) SetInputOffset(p int32, topic string, next int64) {
	_ = b.b.Set(metaKey(p, "in"+topic), u64(next), nil)
}

// Len is the number of operations in the batch.
func (b *Batch) Len() int { return int(b.b.Count()) }

// Commit applies the batch. Nothing is synced (the store has no WAL): a
// batch lost in a crash is repaired from the changelog, because the offsets
// it carried were lost with it.
func (b *Batch) Commit() error {
	if err := b.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("writing state to the local store: %w", err)
	}
	b.closed = true
	return b.b.Close()
}

// Close discards an uncommitted batch; after Commit it does nothing.
func (b *Batch) Close() {
	if !b.closed {
		b.closed = true
		_ = b.b.Close()
	}
}

// DiskUsage is the database's size on disk, for the store-size metric.
func (s *Store) DiskUsage() uint64 { return s.db.Metrics().DiskSpaceUsage() }

// Keys counts the states of partition p (tests and the query API).
func (s *Store) Keys(p int32) (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix(kindState, p), UpperBound: prefix(kindState, p+1)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n, it.Error()
}

// Scan calls fn for each state of partition p in key order.
func (s *Store) Scan(p int32, fn func(key, value []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix(kindState, p), UpperBound: prefix(kindState, p+1)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key()[5:], it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}
