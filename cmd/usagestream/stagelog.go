package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	recavro "github.com/usagestream/usagestream/records/avro"
)

// stageCounts are one stage's counters at one moment.
type stageCounts struct {
	in, out, quarantined, lag float64
}

// stageReporter writes the periodic line per stage of run and process: what
// the stage did since the last line (records in, events out, records
// quarantined) and its lag now, only for the stages that did something, so
// an idle pipeline logs nothing. It reads the processors' own metrics.
type stageReporter struct {
	g    prometheus.Gatherer
	log  *slog.Logger
	last map[string]stageCounts
}

func (r *stageReporter) counts() (map[string]stageCounts, error) {
	mfs, err := r.g.Gather()
	if err != nil {
		return nil, err
	}
	cs := map[string]stageCounts{}
	for _, mf := range mfs {
		var add func(*stageCounts, float64)
		switch mf.GetName() {
		case "usagestream_processor_records_in_total":
			add = func(c *stageCounts, v float64) { c.in += v }
		case "usagestream_processor_records_out_total":
			add = func(c *stageCounts, v float64) { c.out += v }
		case "usagestream_processor_records_quarantined_total":
			add = func(c *stageCounts, v float64) { c.quarantined += v }
		case "usagestream_processor_consumer_lag_records":
			add = func(c *stageCounts, v float64) { c.lag += v }
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			st := label(m, "processor")
			c := cs[st]
			add(&c, m.GetCounter().GetValue()+m.GetGauge().GetValue())
			cs[st] = c
		}
	}
	return cs, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// report logs a line for each stage whose counters moved since the last
// report.
func (r *stageReporter) report() {
	cs, err := r.counts()
	if err != nil {
		r.log.Debug("could not read the processor metrics", "err", err)
		return
	}
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c, p := cs[n], r.last[n]
		if c.in == p.in && c.out == p.out && c.quarantined == p.quarantined {
			continue
		}
		lv := slog.LevelInfo
		if c.quarantined > p.quarantined {
			lv = slog.LevelWarn
		}
		r.log.Log(context.Background(), lv, "stage progress", "stage", n,
			"records_in", int64(c.in-p.in), "records_out", int64(c.out-p.out),
			"quarantined", int64(c.quarantined-p.quarantined), "lag", int64(c.lag))
	}
	r.last = cs
}

// logStageProgress reports every interval until ctx ends, and once more
// then, so that the work of the last interval is not left out.
func logStageProgress(ctx context.Context, g prometheus.Gatherer, every time.Duration, log *slog.Logger) {
	if every <= 0 || g == nil {
		return
	}
	r := &stageReporter{g: g, log: log, last: map[string]stageCounts{}}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.report()
			return
		case <-t.C:
			r.report()
		}
	}
}

// logFileEvents logs a line per file ingested (by any ingest, anywhere),
// with its counts, from the file events topic: an operator watching run or
// process sees the files arrive. It starts at the topic's end and reads
// committed records only; file names are logged, row values never.
func logFileEvents(ctx context.Context, kc kafkaconf.Config, log *slog.Logger) {
	topic := topics.NewNames(kc.TopicPrefix).Files
	cl, err := kc.NewClient(ctx, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("file events are not logged: cannot connect", "err", err)
		}
		return
	}
	defer cl.Close()
	rc, err := kc.NewRegistryClient()
	if err != nil {
		log.Warn("file events are not logged", "err", err)
		return
	}
	dec := recavro.NewDecoder(serde.NewRegistry(rc))
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				log.Debug("reading file events", "topic", t, "partition", p, "err", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			rec, _, err := dec.Decode(ctx, r.Value)
			if err != nil {
				log.Debug("a file event could not be decoded", "offset", r.Offset, "err", err)
				return
			}
			logFileEvent(log, rec)
		})
	}
}

func logFileEvent(log *slog.Logger, rec recavro.Record) {
	fe, ok := rec.(*recavro.FileEvent)
	if !ok || fe.Status == recavro.FileReceived {
		return
	}
	attrs := []any{"file", fe.File, "status", fe.Status, "layout", fe.Layout, "rows_read", fe.RowsRead,
		"published", fe.RowsPublished, "rejected", fe.RowsRejected}
	if fe.Status == recavro.FileFailed {
		if fe.Error != nil {
			attrs = append(attrs, "error", *fe.Error)
		}
		log.Warn("file failed", attrs...)
		return
	}
	log.Info("file ingested", attrs...)
}
