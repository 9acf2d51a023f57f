package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Changelog record keys. One compacted topic per store carries everything a
// new instance needs to rebuild a partition: states, timers and the event
// time, each under its own key so compaction keeps the latest of each. A
// record goes to the changelog partition of the input partition it belongs
// to; kind is a TimerKind byte, times are Unix ms, 8 bytes big-endian:
//
//	's' userKey      -> the encoded state of userKey (null: deleted)
//	't' kind userKey -> fire time of userKey's timer of kind (null: cancelled)
//	'w'              -> event time of the partition (null: ignored)
//
// TestChangelogKeyLayout checks this table byte by byte against the
// encoding.
const (
	clState = 's'
	clTimer = 't'
	clWM    = 'w'
)

func clStateKey(key []byte) []byte { return append([]byte{clState}, key...) }

func clTimerKey(kind TimerKind, key []byte) []byte {
	return append([]byte{clTimer, byte(kind)}, key...)
}

// changelogRecords encodes what the transaction changed in partition p as
// changelog records. Each changed state is encoded here, once; the encoding
// stays in its entry for the store.
func changelogRecords(topic string, p int32, pc *partCache, marshal func(any) ([]byte, error)) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	for k, e := range pc.states {
		if !e.dirty {
			continue
		}
		e.encoded = nil
		if !e.deleted {
			b, err := marshal(e.state)
			if err != nil {
				return nil, fmt.Errorf("encoding the state of key %q: %w", k, err)
			}
			e.encoded = b
		}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: clStateKey([]byte(k)), Value: e.encoded})
	}
	for id, at := range pc.timers {
		var v []byte
		if at != 0 {
			v = u64(at)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: clTimerKey(id.kind, []byte(id.key)), Value: v})
	}
	if pc.wmDirty {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte{clWM}, Value: u64(pc.wm)})
	}
	return recs, nil
}

// addChangelog adds one changelog record to w, in offset order (restore).
// Keys and values are kept, not copied: w must be written before the
// fetched records are dropped.
func (w *partitionWrite) addChangelog(key, value []byte) error {
	if len(key) == 0 {
		return errors.New("empty changelog key")
	}
	switch key[0] {
	case clState:
		w.states = append(w.states, stateWrite{key: key[1:], value: value})
	case clTimer:
		if len(key) < 2 {
			return errors.New("short timer key")
		}
		at := int64(0)
		if len(value) == 8 {
			at = int64(binary.BigEndian.Uint64(value))
		}
		w.timers = append(w.timers, timerWrite{kind: TimerKind(key[1]), key: key[2:], atMs: at})
	case clWM:
		// A null value is ignored; a replay resets the event time with an
		// 8-byte zero.
		if len(value) == 8 {
			w.eventTime = int64(binary.BigEndian.Uint64(value))
		}
	default:
		return fmt.Errorf("unknown changelog key kind %q", key[0])
	}
	return nil
}

// ChangelogTombstone is the record that clears key (a changelog key, as
// read from the topic) in partition p of a store's changelog topic: a
// restore applying it drops the key's state or cancels its timer, and sets
// the event time back to zero (whose null value a restore ignores). A
// replay that recomputes a stage writes one for every key still live, so
// each instance's store loses that state on its next restore, through the
// changelog and with the offset it reflects like any other change.
func ChangelogTombstone(topic string, p int32, key []byte) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: p, Key: key}
	if len(key) == 1 && key[0] == clWM {
		r.Value = u64(0)
	}
	return r
}

// ChangelogCleared says whether a changelog record leaves its key with
// nothing to restore: a deleted state, a cancelled timer, an event time of
// zero, as ChangelogTombstone writes them.
func ChangelogCleared(key, value []byte) bool {
	if len(key) == 1 && key[0] == clWM {
		return value == nil || (len(value) == 8 && binary.BigEndian.Uint64(value) == 0)
	}
	return value == nil
}
