package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Store is one processor instance's local state: a Pebble database holding,
// for every partition it has owned, the state of each key, its timers, its
// event time, and the offsets all of that reflects.
//
// Key layout. Every key starts with a one-byte kind and the partition p as 4
// bytes big-endian, so the keys of one kind of one partition are contiguous
// and can be scanned or dropped as a range. Offsets and times are 8 bytes
// big-endian (times in Unix ms); a timer kind is one byte (TimerKind: 'e'
// event time, 'w' wall clock):
//
//	's' p userKey             -> the encoded state of userKey
//	'm' p "changelog"         -> next changelog offset of p to apply
//	'm' p "in" topic          -> next offset of topic[p] the states reflect
//	'm' p "wm"                -> event time of p
//	'm' p "r" kind userKey    -> fire time of userKey's timer of kind
//	't' p kind fireAt userKey -> empty
//
// The 't' keys sort each kind's timers of a partition by fire time, so the
// due ones are one range scan; the 'm' "r" key is their index by user key,
// which finds a timer's 't' key when it is replaced or cancelled.
// TestStoreKeyLayout checks this table byte by byte against the encoding.
//
// Invariant: the states, timers and event time of a partition and the
// changelog offset they reflect are written together, in one batch. The API
// enforces it: writePartitions is the store's only write, and it refuses a
// change that does not carry its changelog offset. So after any crash the
// offset says exactly which changelog records the store already holds, and
// restore goes on from there.
type Store struct {
	db  *pebble.DB
	dir string
	// failed is the first error of Pebble's background writes (a memtable
	// flush, a compaction): with no WAL, a full or read-only disk shows
	// only there, and Pebble retries a failed flush at once, forever, while
	// writes pile up in memory until they block. Every write checks it.
	failed atomic.Pointer[error]
	// filter spares reads of keys that are surely not stored (keyFilter);
	// stopFill ends its opening scan, which closes filled when it returns.
	filter   *keyFilter
	stopFill context.CancelFunc
	filled   chan struct{}
	// reads counts the reads of a state that went to Pebble (tests).
	reads atomic.Int64
}

// ErrStoreUnwritable is what a stage stops with when its local store cannot
// write to its directory: the disk is full or read-only, or failing.
// Nothing is lost: the transactions are committed in Kafka before the store
// is written, and a restart restores the store from the changelog. Supervise
// starts the stage again after a back-off, so it resumes by itself once the
// disk is fixed.
var ErrStoreUnwritable = errors.New("the state store cannot write to its directory")

func unwritable(dir string, err error) error {
	return fmt.Errorf("%w %s: %w; free space on its disk or make it writable again (df, mount): nothing is lost, the stage starts again after a back-off and catches up from the changelog in Kafka",
		ErrStoreUnwritable, dir, err)
}

// diskError reports whether err says the file system refuses writes.
func diskError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EIO)
}

// storeOptions are a store's settings tests change: the file system (a full
// or read-only disk injected through it) and the memtable size (small:
// flushes after a few records).
type storeOptions struct {
	fs       vfs.FS
	memTable uint64
}

const (
	kindState = 's'
	kindMeta  = 'm'
	kindTimer = 't'
)

// OpenStore opens (or creates) the Pebble database in dir. Pebble's own
// messages go to log (nil: dropped), at debug level but for errors.
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	return openStore(dir, log, storeOptions{})
}

func openStore(dir string, log *slog.Logger, so storeOptions) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if so.memTable == 0 {
		// States are overwritten every few seconds while a file flows; a
		// large memtable absorbs those overwrites instead of flushing and
		// compacting each version.
		so.memTable = 64 << 20
	}
	s := &Store{dir: dir}
	plog := log.With("component", "pebble")
	po := &pebble.Options{
		FS: so.fs,
		EventListener: &pebble.EventListener{BackgroundError: func(err error) {
			// Logged once: Pebble retries a failed flush in a loop.
			if s.failed.CompareAndSwap(nil, &err) {
				plog.Error("the state store could not write to its directory; the stage stops at its next write", "dir", dir, "err", err)
			}
		}},
		Logger: pebbleLogger{log.With("component", "pebble")},
		// No WAL: the changelog is the durable log. After a crash Pebble is
		// back at its last flushed memtable, and since states and the
		// changelog offset they reflect are written in the same batches,
		// that older view is consistent and restore catches it up.
		DisableWAL:   true,
		MemTableSize: so.memTable,
	}
	// The first row of every key looks for a state that is not there, in
	// every table it might be in: without a filter, a read of index and
	// data blocks per table (a quarter of the interval stage's CPU).
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, po)
	switch {
	case err != nil && diskError(err):
		return nil, fmt.Errorf("opening the state store: %w", unwritable(dir, err))
	case err != nil:
		return nil, fmt.Errorf("opening the state store in %s (is another instance using this --data-dir?): %w", dir, err)
	}
	s.db = db
	s.filter, s.filled = newKeyFilter(), make(chan struct{})
	ctx, stop := context.WithCancel(context.Background())
	s.stopFill = stop
	go func() {
		defer close(s.filled)
		if err := s.filter.fill(ctx, db); err != nil && ctx.Err() == nil {
			// Not fatal: every read keeps going to Pebble.
			log.Warn("the state store could not list its keys; every first read of a key goes to the disk", "dir", dir, "err", err)
		}
	}()
	return s, nil
}

// writeErr is the error every write returns once a background write
// failed.
func (s *Store) writeErr() error {
	if e := s.failed.Load(); e != nil {
		return unwritable(s.dir, *e)
	}
	return nil
}

// Close flushes the memtable (there is no WAL to replay it from) and closes
// the database, so a clean stop restarts without a restore. On a disk that
// failed a write it does not flush (the flush would wait for ever): what
// was not flushed is restored from the changelog at the next start.
func (s *Store) Close() error {
	s.stopFill()
	<-s.filled
	if err := s.writeErr(); err != nil {
		return errors.Join(err, s.db.Close())
	}
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

// The keys of the layout above, one function per kind.

func prefix(kind byte, p int32) []byte {
	b := make([]byte, 5, 64)
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:], uint32(p))
	return b
}

func stateKey(p int32, key []byte) []byte { return append(prefix(kindState, p), key...) }

func changelogOffsetKey(p int32) []byte { return append(prefix(kindMeta, p), "changelog"...) }

func inputOffsetKey(p int32, topic string) []byte {
	return append(append(prefix(kindMeta, p), "in"...), topic...)
}

func eventTimeKey(p int32) []byte { return append(prefix(kindMeta, p), "wm"...) }

func timerIndexKey(p int32, kind TimerKind, key []byte) []byte {
	b := append(prefix(kindMeta, p), 'r', byte(kind))
	return append(b, key...)
}

func timerKey(p int32, kind TimerKind, atMs int64, key []byte) []byte {
	b := append(prefix(kindTimer, p), byte(kind))
	b = binary.BigEndian.AppendUint64(b, uint64(atMs))
	return append(b, key...)
}

func u64(n int64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(n)) }

// Get returns the stored state of key in partition p.
func (s *Store) Get(p int32, key []byte) ([]byte, bool, error) {
	k := stateKey(p, key)
	if s.filter.absent(k) {
		return nil, false, nil
	}
	s.reads.Add(1)
	v, closer, err := s.db.Get(k)
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
func (s *Store) ChangelogOffset(p int32) (int64, error) { return s.getUint(changelogOffsetKey(p)) }

// InputOffset is the next offset of topic/p that p's state reflects.
func (s *Store) InputOffset(p int32, topic string) (int64, error) {
	return s.getUint(inputOffsetKey(p, topic))
}

// Watermark is partition p's event time (Unix ms).
func (s *Store) Watermark(p int32) (int64, error) { return s.getUint(eventTimeKey(p)) }

// partitionWrite is what one transaction, or one chunk of a restore,
// changes in one partition, with the changelog offset that brings the
// partition to.
type partitionWrite struct {
	p      int32
	states []stateWrite // in order: a later write of a key wins
	timers []timerWrite // in order: a later write of a timer wins
	// eventTime is p's new event time (Unix ms); negative: unchanged.
	eventTime int64
	// changelogNext is the next changelog offset of p once these changes
	// are in: they are the changelog's records before it. Zero says no
	// changelog record was written, which only a write of input offsets
	// alone may say.
	changelogNext int64
	// inputs are the next input offsets (topic -> offset) the changes
	// reflect; none during a restore.
	inputs map[string]int64
}

// stateWrite sets the state of key; a nil value deletes it.
type stateWrite struct{ key, value []byte }

// timerWrite sets key's timer of kind to fire at atMs; 0 cancels it.
type timerWrite struct {
	kind TimerKind
	key  []byte
	atMs int64
}

// changes says whether w changes anything but input offsets.
func (w *partitionWrite) changes() bool {
	return len(w.states) > 0 || len(w.timers) > 0 || w.eventTime >= 0
}

// writePartitions writes ws in one batch: the store's only write. A
// partition's states, timers and event time are written with the changelog
// offset they reflect, or not at all.
//
// Nothing is synced (the store has no WAL): a batch lost in a crash is
// repaired from the changelog, because the offsets it carried were lost
// with it.
func (s *Store) writePartitions(ws []partitionWrite) error {
	return s.writePartitionsThen(ws, nil)
}

// writePartitionsThen is writePartitions calling between, when set, before
// each partition's writes join the batch (the crash tests kill the process
// there: a batch never committed leaves the store as it was).
func (s *Store) writePartitionsThen(ws []partitionWrite, between func(i int)) error {
	if err := s.writeErr(); err != nil {
		return err
	}
	for _, w := range ws {
		if w.changes() && w.changelogNext <= 0 {
			return fmt.Errorf("partition %d: state changes without the changelog offset they reflect cannot be stored (a bug of the runtime)", w.p)
		}
	}
	// Indexed when timers are written, so a timer's index read sees the
	// batch's own writes (a timer set twice in one restore chunk); an
	// indexed batch keeps a skiplist of every key, which a restore of
	// states alone would pay for on each of them.
	var b *pebble.Batch
	if slices.ContainsFunc(ws, func(w partitionWrite) bool { return len(w.timers) > 0 }) {
		b = s.db.NewIndexedBatch()
	} else {
		b = s.db.NewBatch()
	}
	defer b.Close()
	var added []uint64 // hashes of the state keys set
	for i, w := range ws {
		if between != nil {
			between(i)
		}
		for _, sw := range w.states {
			k := stateKey(w.p, sw.key)
			if sw.value == nil {
				_ = b.Delete(k, nil)
			} else {
				_ = b.Set(k, sw.value, nil)
				added = append(added, s.filter.hash(k))
			}
		}
		for _, tw := range w.timers {
			if err := setTimer(b, w.p, tw); err != nil {
				return err
			}
		}
		if w.eventTime >= 0 {
			_ = b.Set(eventTimeKey(w.p), u64(w.eventTime), nil)
		}
		if w.changelogNext > 0 {
			_ = b.Set(changelogOffsetKey(w.p), u64(w.changelogNext), nil)
		}
		for topic, off := range w.inputs {
			_ = b.Set(inputOffsetKey(w.p, topic), u64(off), nil)
		}
	}
	// The keys set join the filter before the batch commits: a read that
	// follows the commit must not be told they are absent. If the commit
	// fails, they only make the filter say "maybe" for nothing.
	s.filter.add(added...)
	if err := b.Commit(pebble.NoSync); err != nil {
		if diskError(err) {
			return unwritable(s.dir, err)
		}
		return fmt.Errorf("writing state to the local store: %w", err)
	}
	return nil
}

// setTimer replaces a timer in b: its old 't' key, found through its index,
// goes, and its new one comes (none when cancelled).
func setTimer(b *pebble.Batch, p int32, tw timerWrite) error {
	idx := timerIndexKey(p, tw.kind, tw.key)
	old, closer, err := b.Get(idx)
	switch {
	case err == nil:
		if len(old) == 8 {
			_ = b.Delete(timerKey(p, tw.kind, int64(binary.BigEndian.Uint64(old)), tw.key), nil)
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("reading a timer: %w", err)
	}
	if tw.atMs == 0 {
		_ = b.Delete(idx, nil)
		return nil
	}
	_ = b.Set(timerKey(p, tw.kind, tw.atMs, tw.key), nil, nil)
	_ = b.Set(idx, u64(tw.atMs), nil)
	return nil
}

// dueTimers lists the timers of kind in p due at or before atMs, at most
// limit of them, earliest first.
func (s *Store) dueTimers(p int32, kind TimerKind, atMs int64, limit int) ([]Timer, error) {
	lo := timerKey(p, kind, 0, nil)
	hi := timerKey(p, kind, atMs+1, nil)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Timer
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		k := it.Key()
		at := int64(binary.BigEndian.Uint64(k[6:14]))
		out = append(out, Timer{Kind: kind, Key: append([]byte(nil), k[14:]...), At: time.UnixMilli(at).UTC()})
	}
	return out, it.Error()
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
