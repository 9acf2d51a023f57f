// Package quarantine is the dead-letter contract shared by the processing
// stages, the sinks and `usagestream replay`: where a record that cannot be
// decoded goes, the headers that say where it came from and why, and how a
// re-fed record is addressed to the one consumer that quarantined it.
//
// A quarantined record keeps the original key, value and headers; the
// headers below are added. Re-feeding (replay --quarantine) produces the
// record again to its source topic with HeaderRefeedFor naming the consumer
// that quarantined it; every other consumer of that topic skips it (it saw
// the original already), so a re-feed changes only the state it was meant to.
package quarantine

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header keys. They are stable: operators filter on them with kcat and the
// console consumer.
const (
	HeaderSourceTopic     = "usagestream.source.topic"
	HeaderSourcePartition = "usagestream.source.partition"
	HeaderSourceOffset    = "usagestream.source.offset"
	// HeaderSchemaID is the Confluent schema id of the value, absent when the
	// value carries no readable frame.
	HeaderSchemaID = "usagestream.schema.id"
	HeaderError    = "usagestream.error"
	// HeaderBy names the consumer that quarantined the record: a stage name
	// (servicepoint) or "sink-" and a sink name (sink-jsonl).
	HeaderBy = "usagestream.quarantined.by"
	// HeaderRefeedFor, on a record of an input or event topic, addresses a
	// re-fed record to one consumer (same names as HeaderBy).
	HeaderRefeedFor = "usagestream.refeed.for"
)

// maxErrorBytes bounds the error header: the error names what failed, never
// the payload, and a hostile record must not grow the quarantine record.
const maxErrorBytes = 1024

// StageTopic is the quarantine topic of a processing stage.
func StageTopic(prefix, stage string) string { return prefix + "quarantine-" + stage + ".v1" }

// SinkConsumer is the consumer name of a sink in HeaderBy and HeaderRefeedFor.
func SinkConsumer(sink string) string { return "sink-" + sink }

// SinkTopic is the quarantine topic of a sink.
func SinkTopic(prefix, sink string) string { return StageTopic(prefix, SinkConsumer(sink)) }

// Source is where a quarantined record was read.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
	SchemaID  int // 0: none readable
}

// Record builds the quarantine record of r, read at src by consumer `by`,
// that failed with err.
func Record(topic string, r *kgo.Record, src Source, by string, err error) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+6)
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset, HeaderSchemaID, HeaderError, HeaderBy, HeaderRefeedFor:
			continue // a re-fed record quarantined again names its latest source
		}
		hs = append(hs, h)
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(src.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(src.Offset, 10))},
		kgo.RecordHeader{Key: HeaderBy, Value: []byte(by)},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(truncate(err.Error(), maxErrorBytes))},
	)
	if src.SchemaID > 0 {
		hs = append(hs, kgo.RecordHeader{Key: HeaderSchemaID, Value: []byte(strconv.Itoa(src.SchemaID))})
	}
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: hs, Timestamp: r.Timestamp}
}

// SchemaID reads the schema id of a Confluent-framed value (magic byte 0,
// then a big-endian uint32), or 0 when there is no frame.
func SchemaID(v []byte) int {
	if len(v) < 5 || v[0] != 0 {
		return 0
	}
	return int(uint32(v[1])<<24 | uint32(v[2])<<16 | uint32(v[3])<<8 | uint32(v[4]))
}

// Header returns the value of header key, and whether it is present.
func Header(hs []kgo.RecordHeader, key string) (string, bool) {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// SkipFor reports whether consumer must skip a record: it is a re-feed
// addressed to another consumer.
func SkipFor(consumer string, hs []kgo.RecordHeader) bool {
	to, ok := Header(hs, HeaderRefeedFor)
	return ok && to != consumer
}

// Quarantined is what a quarantine record says about its origin.
type Quarantined struct {
	Source Source
	By     string
	Error  string
}

// Parse reads the origin headers of a quarantine record.
func Parse(r *kgo.Record) (Quarantined, error) {
	var q Quarantined
	var ok bool
	if q.Source.Topic, ok = Header(r.Headers, HeaderSourceTopic); !ok || q.Source.Topic == "" {
		return q, fmt.Errorf("quarantine record %s[%d]@%d has no %s header: it was not written by usagestream", r.Topic, r.Partition, r.Offset, HeaderSourceTopic)
	}
	if q.By, ok = Header(r.Headers, HeaderBy); !ok || q.By == "" {
		return q, fmt.Errorf("quarantine record %s[%d]@%d has no %s header: it was not written by usagestream", r.Topic, r.Partition, r.Offset, HeaderBy)
	}
	p, _ := Header(r.Headers, HeaderSourcePartition)
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil || n < 0 {
		return q, fmt.Errorf("quarantine record %s[%d]@%d: bad %s header %q", r.Topic, r.Partition, r.Offset, HeaderSourcePartition, p)
	}
	q.Source.Partition = int32(n)
	o, _ := Header(r.Headers, HeaderSourceOffset)
	if q.Source.Offset, err = strconv.ParseInt(o, 10, 64); err != nil || q.Source.Offset < 0 {
		return q, fmt.Errorf("quarantine record %s[%d]@%d: bad %s header %q", r.Topic, r.Partition, r.Offset, HeaderSourceOffset, o)
	}
	if s, ok := Header(r.Headers, HeaderSchemaID); ok {
		if q.Source.SchemaID, err = strconv.Atoi(s); err != nil {
			return q, fmt.Errorf("quarantine record %s[%d]@%d: bad %s header %q", r.Topic, r.Partition, r.Offset, HeaderSchemaID, s)
		}
	}
	q.Error, _ = Header(r.Headers, HeaderError)
	return q, nil
}

// Refeed is the record that re-feeds quarantine record r to its source
// topic, addressed to the consumer that quarantined it. The quarantine
// headers are dropped; the original headers stay.
func Refeed(r *kgo.Record) (*kgo.Record, Quarantined, error) {
	q, err := Parse(r)
	if err != nil {
		return nil, q, err
	}
	var hs []kgo.RecordHeader
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset, HeaderSchemaID, HeaderError, HeaderBy, HeaderRefeedFor:
			continue
		}
		hs = append(hs, h)
	}
	hs = append(hs, kgo.RecordHeader{Key: HeaderRefeedFor, Value: []byte(q.By)})
	return &kgo.Record{Topic: q.Source.Topic, Key: r.Key, Value: r.Value, Headers: hs}, q, nil
}

// ErrPoison marks an error caused by the record itself (it cannot be decoded
// or breaks the topic's contract): retrying cannot fix it, so the consumer
// quarantines the record and goes on.
var ErrPoison = errors.New("poison record")

// Poison wraps err as caused by the record itself.
func Poison(err error) error { return poisonError{err} }

type poisonError struct{ err error }

func (p poisonError) Error() string   { return p.err.Error() }
func (p poisonError) Unwrap() []error { return []error{p.err, ErrPoison} }

// IsPoison reports whether err was caused by the record itself.
func IsPoison(err error) bool { return errors.Is(err, ErrPoison) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
