package main

// replay --quarantine: re-feeding the records a stage (or a sink) put in its
// quarantine topic back to their source topics, addressed to that consumer
// only (internal/quarantine).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/processors/pipeline"
)

// RefeedGroup is the consumer group whose committed offsets on a quarantine
// topic mark what was re-fed already: each re-feed commits them in the
// transaction that produces the re-fed records, so a quarantined record is
// re-fed once, however often replay --quarantine runs or fails midway.
func refeedGroup(prefix, consumer string) string { return prefix + "refeed-" + consumer }

// quarantineConsumer checks a --quarantine argument: a stage name, or
// sink-NAME.
func quarantineConsumer(s string) error {
	if slices.Contains(pipeline.StageNames(), s) {
		return nil
	}
	if name, ok := strings.CutPrefix(s, "sink-"); ok && validShadowName(name) {
		return nil
	}
	return fmt.Errorf("--quarantine %q: give a stage (%s) or sink-NAME (a sink's quarantine, e.g. sink-jsonl)", s, strings.Join(pipeline.StageNames(), ", "))
}

// refeedItem is one quarantined record and what re-feeding it produces.
type refeedItem struct {
	from *kgo.Record // on the quarantine topic
	to   *kgo.Record // to the source topic, nil when from is no usagestream quarantine record
	q    quarantine.Quarantined
	dup  bool  // the same source record as an earlier item
	err  error // why from cannot be re-fed
}

// requeue re-feeds the quarantine topic of c.Quarantine from where the
// last re-feed stopped (or --since, if later) to the topic's end now.
func (c *replayCmd) requeue(ctx context.Context, kc kafkaconf.Config, out io.Writer) error {
	if len(c.Stages) > 0 || len(c.Offsets) > 0 {
		return errors.New("--quarantine re-feeds one quarantine topic: give no stages and no --offsets")
	}
	consumer := c.Quarantine
	if err := quarantineConsumer(consumer); err != nil {
		return err
	}
	topic := quarantine.StageTopic(kc.TopicPrefix, consumer)
	group := refeedGroup(kc.TopicPrefix, consumer)
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the offsets of the quarantine topic %s (does it exist? the stage creates it when it starts): %w", topic, err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // never re-fed
	}
	if err != nil {
		return fmt.Errorf("fetching the re-feed progress (group %s): %w", group, err)
	}
	var since kadm.ListedOffsets
	if c.Since != "" {
		at, err := parseWhen(c.Since, time.Now())
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		if since, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topic); err == nil {
			err = since.Error()
		}
		if err != nil {
			return fmt.Errorf("finding the offsets of %s after --since %s: %w", topic, c.Since, err)
		}
	}
	from, to := map[int32]int64{}, map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		start := int64(0)
		if o, ok := committed.Lookup(topic, e.Partition); ok && o.Err == nil && o.At > start {
			start = o.At
		}
		if s, ok := since.Lookup(topic, e.Partition); ok && s.Err == nil {
			so := s.Offset
			if so < 0 || so > e.Offset {
				so = e.Offset // nothing that late
			}
			start = max(start, so)
		}
		if start < e.Offset {
			from[e.Partition], to[e.Partition] = start, e.Offset
		}
	})
	var items []refeedItem
	if len(from) > 0 {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err = consume.Each(rctx, kc, topic, func(r *kgo.Record) {
			if f, ok := from[r.Partition]; !ok || r.Offset < f || r.Offset >= to[r.Partition] {
				return
			}
			it := refeedItem{from: r}
			it.to, it.q, it.err = quarantine.Refeed(r)
			if it.to != nil {
				it.to.Partition = it.q.Source.Partition // where the original was: the key's partition, so it meets the key's state
			}
			items = append(items, it)
		})
		cancel()
		if err != nil {
			return fmt.Errorf("reading the quarantine topic %s: %w", topic, err)
		}
	}
	dups := dropDuplicates(items)
	fmt.Fprintf(out, "Quarantine %s of %s: %d records to re-feed (re-feed progress in group %s)\n", topic, consumer, len(items)-dups, group)
	if dups > 0 {
		fmt.Fprintf(out, "  %d records quarantined twice (a sink restarted before committing its offsets) are re-fed once\n", dups)
	}
	bad := 0
	for _, it := range items {
		if it.dup {
			continue
		}
		if it.err != nil {
			bad++
			fmt.Fprintf(out, "  %s[%d]@%d: cannot be re-fed: %v\n", topic, it.from.Partition, it.from.Offset, it.err)
			continue
		}
		if c.DryRun {
			fmt.Fprintf(out, "  %s[%d]@%d -> %s[%d] (was offset %d): %s\n", topic, it.from.Partition, it.from.Offset,
				it.q.Source.Topic, it.q.Source.Partition, it.q.Source.Offset, it.q.Error)
		}
	}
	if c.DryRun {
		fmt.Fprintln(out, "Dry run: nothing was re-fed.")
		return nil
	}
	if len(items) == 0 {
		fmt.Fprintln(out, "Nothing to re-feed.")
		return nil
	}
	if err := produceRefeed(ctx, kc, consumer, group, topic, items, to); err != nil {
		return err
	}
	per := map[string]int{}
	for _, it := range items {
		if it.to != nil && !it.dup {
			per[it.to.Topic]++
		}
	}
	var ts []string
	for t := range per {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	for _, t := range ts {
		fmt.Fprintf(out, "re-fed %d records to %s, addressed to %s\n", per[t], t, consumer)
	}
	if bad > 0 {
		fmt.Fprintf(out, "%d records could not be re-fed (listed above; they stay on %s)\n", bad, topic)
	}
	return nil
}

// dropDuplicates marks the items whose source record an earlier item
// already names, and counts them. A sink produces its quarantine records
// before it commits its offsets, so a sink that stops between the two
// quarantines the record again when it restarts; the stages quarantine in
// their transaction and never do.
func dropDuplicates(items []refeedItem) int {
	type pos struct {
		topic     string
		partition int32
		offset    int64
	}
	seen := map[pos]bool{}
	n := 0
	for i := range items {
		it := &items[i]
		if it.to == nil {
			continue
		}
		k := pos{it.q.Source.Topic, it.q.Source.Partition, it.q.Source.Offset}
		if seen[k] {
			it.dup = true
			n++
		}
		seen[k] = true
	}
	return n
}

// produceRefeed produces the re-fed records and commits the re-feed
// group's offsets on the quarantine topic (to: the end read) in one
// transaction: either both happen or neither. The transactional id is the
// consumer's, so two re-feeds of one quarantine at once fence each other.
func produceRefeed(ctx context.Context, kc kafkaconf.Config, consumer, group, topic string, items []refeedItem, to map[int32]int64) error {
	txid := kc.TopicPrefix + "usagestream-refeed-" + consumer
	// Kafka 3.9's request versions: the offset commit below is hand-built,
	// and TxnOffsetCommit from v6 names topics by id, not by name.
	cl, err := kc.NewClient(ctx, kgo.TransactionalID(txid), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(time.Minute), kgo.MaxVersions(kversion.V3_9_0()))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning the re-feed transaction: %w", err)
	}
	abort := func(cause error) error {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := cl.AbortBufferedRecords(actx); err == nil {
			_ = cl.EndTransaction(actx, kgo.TryAbort)
		}
		return fmt.Errorf("%w; nothing was re-fed, run it again", cause)
	}
	var recs []*kgo.Record
	for _, it := range items {
		if it.to != nil && !it.dup {
			recs = append(recs, it.to)
		}
	}
	if len(recs) == 0 {
		// Only records without origin headers: nothing to produce, and a
		// transaction without records cannot carry the offsets; they stay
		// unread (listed) until an operator removes them.
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return nil
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return abort(fmt.Errorf("producing the re-fed records: %w", err))
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return abort(fmt.Errorf("the re-feed's producer id: %w", err))
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txid, pid, epoch, group
	aresp, err := add.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(aresp.ErrorCode)
	}
	if err != nil {
		return abort(fmt.Errorf("adding the re-feed progress (group %s) to the transaction: %w", group, err))
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = txid, group, pid, epoch
	commit.Generation, commit.MemberID = -1, "" // no group member: an admin-style commit
	ct := kmsg.NewTxnOffsetCommitRequestTopic()
	ct.Topic = topic
	for p, o := range to {
		cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset, cp.LeaderEpoch = p, o, -1
		ct.Partitions = append(ct.Partitions, cp)
	}
	commit.Topics = append(commit.Topics, ct)
	cresp, err := commit.RequestWith(ctx, cl)
	if err == nil {
		for _, t := range cresp.Topics {
			for _, p := range t.Partitions {
				if err == nil {
					err = kerr.ErrorForCode(p.ErrorCode)
				}
			}
		}
	}
	if err != nil {
		return abort(fmt.Errorf("committing the re-feed progress (group %s): %w", group, err))
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("committing the re-feed transaction: %w; if it was not committed nothing was re-fed, run it again", err)
	}
	return nil
}
