package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	recavro "github.com/usagestream/usagestream/records/avro"

	"github.com/usagestream/usagestream/processors/runtime"
)

// The answers read from event topics rather than from a stage's state: the
// files ingested (files.v1) and a service point's corrections
// (corrections.v1). The state keeps neither: a file is no key of any stage,
// and a correction is an event about a period the timeline then holds with
// its new value only.

// maxFeed bounds what one answer holds: the newest records are kept.
const maxFeed = 1000

// FileEvent is one file event of files.v1: what ingesting a file gave.
type FileEvent struct {
	File           string           `json:"file"`
	Status         string           `json:"status"`
	Kind           string           `json:"kind"`
	SHA256         string           `json:"sha256"`
	Generation     int32            `json:"generation"`
	EventTime      string           `json:"event_time"`
	RowsRead       int64            `json:"rows_read"`
	RowsPublished  int64            `json:"rows_published"`
	RowsRejected   int64            `json:"rows_rejected"`
	RejectedByCode map[string]int64 `json:"rejected_by_code"`
	ResumedFrom    int64            `json:"resumed_from_line,omitempty"`
	Error          string           `json:"error,omitempty"`
}

// Files is the answer of GET /v1/files: the newest file events, newest first.
type Files struct {
	Files []FileEvent `json:"files"`
	// Truncated: older events exist beyond the maxFeed kept.
	Truncated bool `json:"truncated"`
}

// Correction is one usage correction of a service point (corrections.v1):
// a billing period (U4, U5) or an interval (I2) sent again with another
// value.
type Correction struct {
	EventID     string   `json:"event_id"`
	Kind        string   `json:"kind"`
	Rule        string   `json:"rule"`
	DateTo      string   `json:"date_to"`
	Duration    int32    `json:"duration"`
	OldValue    float64  `json:"old_value"`
	NewValue    float64  `json:"new_value"`
	OldCharge   *float64 `json:"old_charge"`
	NewCharge   *float64 `json:"new_charge"`
	NewDateTo   string   `json:"new_date_to"`
	NewDuration int32    `json:"new_duration"`
	Channel     string   `json:"channel,omitempty"`
	IntervalEnd string   `json:"interval_end,omitempty"`
	Source      Source   `json:"source"`
}

// Corrections is the answer of GET /v1/service-points/{id}/corrections, in
// the order they were made.
type Corrections struct {
	ServicePointID string       `json:"service_point_id"`
	Corrections    []Correction `json:"corrections"`
	Truncated      bool         `json:"truncated"`
}

// decoder is the Avro decoder of the event topics, made on first use.
type decoder struct {
	once sync.Once
	dec  *recavro.Decoder
	err  error
}

func (s *Server) decoder() (*recavro.Decoder, error) {
	s.dec.once.Do(func() {
		rc, err := s.cfg.Kafka.NewRegistryClient()
		if err != nil {
			s.dec.err = err
			return
		}
		s.dec.dec = recavro.NewDecoder(serde.NewRegistry(rc))
	})
	return s.dec.dec, s.dec.err
}

func (s *Server) files(w http.ResponseWriter, r *http.Request) {
	dec, err := s.decoder()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the schema registry is not configured: "+err.Error(), nil)
		return
	}
	var out Files
	topic := topics.NewNames(s.cfg.Kafka.TopicPrefix).Files
	err = s.readTopic(r.Context(), topic, nil, func(rec *kgo.Record) error {
		v, _, err := dec.Decode(r.Context(), rec.Value)
		if err != nil {
			return fmt.Errorf("%s partition %d offset %d: %w", topic, rec.Partition, rec.Offset, err)
		}
		fe, ok := v.(*recavro.FileEvent)
		if !ok {
			return fmt.Errorf("%s partition %d offset %d: a %s record, not a file event", topic, rec.Partition, rec.Offset, v.Schema())
		}
		if fe.RejectedByCode == nil {
			fe.RejectedByCode = map[string]int64{}
		}
		out.Files = append(out.Files, FileEvent{File: fe.File, Status: fe.Status, Kind: fe.Kind, SHA256: fe.FileSHA256,
			Generation: fe.Generation, EventTime: fe.EventTime.UTC().Format(time.RFC3339), RowsRead: fe.RowsRead,
			RowsPublished: fe.RowsPublished, RowsRejected: fe.RowsRejected, RejectedByCode: fe.RejectedByCode,
			ResumedFrom: fe.ResumedFromLine, Error: recavro.Deref(fe.Error)})
		return nil
	})
	if err != nil {
		s.feedError(w, err)
		return
	}
	// Newest first across partitions; a stable sort keeps a partition's
	// order among events of the same second.
	slices.Reverse(out.Files)
	slices.SortStableFunc(out.Files, func(a, b FileEvent) int { return cmp.Compare(b.EventTime, a.EventTime) })
	if len(out.Files) > maxFeed {
		out.Files, out.Truncated = out.Files[:maxFeed], true
	}
	if out.Files == nil {
		out.Files = []FileEvent{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) corrections(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID("service_point_id", id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	dec, err := s.decoder()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the schema registry is not configured: "+err.Error(), nil)
		return
	}
	out := Corrections{ServicePointID: id, Corrections: []Correction{}}
	topic := topics.NewNames(s.cfg.Kafka.TopicPrefix).Corrections
	err = s.readTopic(r.Context(), topic, []byte(id), func(rec *kgo.Record) error {
		v, _, err := dec.Decode(r.Context(), rec.Value)
		if err != nil {
			return fmt.Errorf("%s partition %d offset %d: %w", topic, rec.Partition, rec.Offset, err)
		}
		c, ok := v.(*recavro.UsageCorrected)
		if !ok {
			return fmt.Errorf("%s partition %d offset %d: a %s record, not a correction", topic, rec.Partition, rec.Offset, v.Schema())
		}
		cv := Correction{EventID: c.EventID, Kind: c.Kind, Rule: c.Rule, DateTo: day(c.DateTo), Duration: c.Duration,
			OldValue: c.OldValue, NewValue: c.NewValue, OldCharge: c.OldCharge, NewCharge: c.NewCharge,
			NewDateTo: day(c.NewDateTo), NewDuration: c.NewDuration, Channel: recavro.Deref(c.Channel),
			Source: Source{Topic: c.Cause.Topic, Partition: c.Cause.Partition, Offset: c.Cause.Offset, File: recavro.Deref(c.Cause.File)}}
		if c.Cause.Line != nil {
			cv.Source.Line = *c.Cause.Line
		}
		if c.IntervalEnd != nil {
			cv.IntervalEnd = c.IntervalEnd.UTC().Format(time.RFC3339)
		}
		out.Corrections = append(out.Corrections, cv)
		if len(out.Corrections) > maxFeed {
			out.Corrections, out.Truncated = out.Corrections[1:], true
		}
		return nil
	})
	if err != nil {
		s.feedError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) feedError(w http.ResponseWriter, err error) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		writeError(w, http.StatusServiceUnavailable, "reading the topic took too long: retry", nil)
		return
	}
	s.log.Warn("reading an event topic for the query API", "err", err)
	writeError(w, http.StatusBadGateway, "reading the topic failed; see the server log", nil)
}

// feedTimeout bounds the reading of a topic for one answer.
const feedTimeout = 20 * time.Second

// readTopic calls fn for each committed record of topic, in offset order
// per partition, up to its last stable offset at the call. With a key, only
// the partition the key is produced to is read and only the key's records
// are passed on.
func (s *Server) readTopic(ctx context.Context, topic string, key []byte, fn func(*kgo.Record) error) error {
	ctx, cancel := context.WithTimeout(ctx, feedTimeout)
	defer cancel()
	adm, err := s.dir.client(ctx)
	if err != nil {
		return err
	}
	// Read committed: the last stable offset of each partition is where a
	// read_committed consumer stops.
	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = lso.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	lso.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if key != nil {
		n, err := s.dir.partitions(ctx, topic)
		if err != nil {
			return err
		}
		p := runtime.KeyPartition(key, n)
		end, ok := want[p]
		want = map[int32]int64{}
		if ok {
			want[p] = end
		}
	}
	if len(want) == 0 {
		return nil
	}
	parts := map[int32]kgo.Offset{}
	for p := range want {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := s.cfg.Kafka.NewClient(ctx, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(want) > 0 {
		// A poll that finds nothing for a few seconds means the rest of the
		// range was compacted away.
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if fs.Empty() {
			return nil
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = cmp.Or(ferr, err)
			}
		})
		if ferr != nil {
			return fmt.Errorf("reading %s: %w", topic, ferr)
		}
		var cbErr error
		fs.EachRecord(func(rec *kgo.Record) {
			end, ok := want[rec.Partition]
			if !ok || cbErr != nil {
				return
			}
			if !rec.Attrs.IsControl() && (key == nil || string(rec.Key) == string(key)) {
				cbErr = fn(rec)
			}
			if rec.Offset >= end-1 {
				delete(want, rec.Partition)
			}
		})
		if cbErr != nil {
			return cbErr
		}
	}
	return nil
}
