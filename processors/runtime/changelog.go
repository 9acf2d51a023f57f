package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Changelog record keys. One compacted topic per store carries everything a
// new instance needs to rebuild a partition: states, timers and the event
// time, each under its own key so compaction keeps the latest of each.
//
//	's' userKey        -> state bytes (nil: deleted)
//	't' kind userKey   -> fire time, Unix ms (nil: cancelled)
//	'w'                -> event time of the partition, Unix ms
const (
	clState = 's'
	clTimer = 't'
	clWM    = 'w'
)

func clStateKey(key []byte) []byte { return append([]byte{clState}, key...) }

func clTimerKey(kind TimerKind, key []byte) []byte {
	return append([]byte{clTimer, byte(kind)}, key...)
}

func timerKey(p int32, kind TimerKind, atMs int64, key []byte) []byte {
	b := prefix(kindTimer, p)
	b = append(b, byte(kind))
	b = binary.BigEndian.AppendUint64(b, uint64(atMs))
	return append(b, key...)
}

func timerRevKey(p int32, kind TimerKind, key []byte) []byte {
	b := metaKey(p, "r")
	b = append(b, byte(kind))
	return append(b, key...)
}

// setTimer replaces key's timer of kind by atMs (0 cancels it).
func (s *Store) setTimer(b *Batch, p int32, kind TimerKind, key []byte, atMs int64) error {
	rev := timerRevKey(p, kind, key)
	old, closer, err := b.b.Get(rev) // indexed batch: sees this batch's own writes
	switch {
	case err == nil:
		if len(old) == 8 {
			_ = b.b.Delete(timerKey(p, kind, int64(binary.BigEndian.Uint64(old)), key), nil)
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("reading a timer: %w", err)
	}
	if atMs == 0 {
		_ = b.b.Delete(rev, nil)
		return nil
	}
	_ = b.b.Set(timerKey(p, kind, atMs, key), nil, nil)
	_ = b.b.Set(rev, u64(atMs), nil)
	return nil
}

// applyChangelog applies one changelog record to the batch, in offset order.
func (s *Store) applyChangelog(b *Batch, p int32, key, value []byte) error {
	if len(key) == 0 {
		return errors.New("empty changelog key")
	}
	switch key[0] {
	case clState:
		b.Set(p, key[1:], value)
	case clTimer:
		if len(key) < 2 {
			return errors.New("short timer key")
		}
		at := int64(0)
		if len(value) == 8 {
			at = int64(binary.BigEndian.Uint64(value))
		}
		return s.setTimer(b, p, TimerKind(key[1]), key[2:], at)
	case clWM:
		if len(value) == 8 {
			_ = b.b.Set(metaKey(p, "wm"), value, nil)
		}
	default:
		return fmt.Errorf("unknown changelog key kind %q", key[0])
	}
	return nil
}

// Watermark is partition p's event time (Unix ms).
func (s *Store) Watermark(p int32) (int64, error) { return s.getUint(metaKey(p, "wm")) }

// dueTimers lists the timers of kind in p due at or before atMs.
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
