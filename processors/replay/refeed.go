package replay

// Re-feeding the records a stage (or a sink) put in its quarantine topic
// back to their source topics, addressed to that consumer only
// (internal/quarantine).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	"github.com/usagestream/usagestream/processors/topology"
)

// RefeedGroup is the consumer group whose committed offsets on a quarantine
// topic mark what was re-fed already: each re-feed commits them in the
// transaction that produces the re-fed records, so a quarantined record is
// re-fed once, however often a re-feed runs or fails midway.
func RefeedGroup(prefix, consumer string) string { return prefix + "refeed-" + consumer }

// CheckConsumer checks the name of a quarantine's consumer: a stage of the
// topology, or sink-NAME.
func CheckConsumer(s string) error {
	stages := topology.New("").StageNames()
	if slices.Contains(stages, s) {
		return nil
	}
	if name, ok := strings.CutPrefix(s, "sink-"); ok && ValidShadowName(name) {
		return nil
	}
	return fmt.Errorf("%q: give a stage (%s) or sink-NAME (a sink's quarantine, e.g. sink-jsonl)", s, strings.Join(stages, ", "))
}

// refeedItem is one quarantined record and what re-feeding it produces.
type refeedItem struct {
	from *kgo.Record // on the quarantine topic
	to   *kgo.Record // to the source topic, nil when from is no usagestream quarantine record
	q    quarantine.Quarantined
	dup  bool  // the same source record as an earlier item
	err  error // why from cannot be re-fed
}

// RefeedOptions say which quarantine to re-feed.
type RefeedOptions struct {
	Kafka kafkaconf.Config
	// Consumer is the stage, or sink-NAME, whose quarantine is re-fed.
	Consumer string
	// Since, when set, re-feeds only records quarantined since then.
	Since time.Time
}

// Refeed is a re-feed worked out and not yet applied: the records of the
// quarantine topic from where the last re-feed stopped (or Since, if
// later) to the topic's end.
type Refeed struct {
	kc       kafkaconf.Config
	consumer string
	topic    string
	group    string
	to       map[int32]int64 // the end read, per partition
	items    []refeedItem
	dups     int
}

// PlanRefeed reads the quarantine topic of opts.Consumer. Nothing changes.
func PlanRefeed(ctx context.Context, adm *kadm.Client, opts RefeedOptions) (*Refeed, error) {
	if err := CheckConsumer(opts.Consumer); err != nil {
		return nil, err
	}
	kc := opts.Kafka
	r := &Refeed{kc: kc, consumer: opts.Consumer, topic: quarantine.StageTopic(kc.TopicPrefix, opts.Consumer),
		group: RefeedGroup(kc.TopicPrefix, opts.Consumer)}
	topic, group := r.topic, r.group
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the offsets of the quarantine topic %s (does it exist? the stage creates it when it starts): %w", topic, err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // never re-fed
	}
	if err != nil {
		return nil, fmt.Errorf("fetching the re-feed progress (group %s): %w", group, err)
	}
	var since kadm.ListedOffsets
	if !opts.Since.IsZero() {
		if since, err = adm.ListOffsetsAfterMilli(ctx, opts.Since.UnixMilli(), topic); err == nil {
			err = since.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("finding the offsets of %s after %s: %w", topic, opts.Since.Format(time.RFC3339), err)
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
	r.to = to
	if len(from) > 0 {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err = consume.Each(rctx, kc, topic, func(rec *kgo.Record) {
			if f, ok := from[rec.Partition]; !ok || rec.Offset < f || rec.Offset >= to[rec.Partition] {
				return
			}
			it := refeedItem{from: rec}
			it.to, it.q, it.err = quarantine.Refeed(rec)
			if it.to != nil {
				it.to.Partition = it.q.Source.Partition // where the original was: the key's partition, so it meets the key's state
			}
			r.items = append(r.items, it)
		})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("reading the quarantine topic %s: %w", topic, err)
		}
	}
	r.dups = dropDuplicates(r.items)
	return r, nil
}

// Summary says how many records the re-feed takes, and lists those that
// cannot be re-fed.
func (r *Refeed) Summary() string { return r.describe(false) }

// String is Summary with every record to re-feed listed: where it goes, and
// why it was quarantined.
func (r *Refeed) String() string { return r.describe(true) }

func (r *Refeed) describe(all bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Quarantine %s of %s: %d records to re-feed (re-feed progress in group %s)\n", r.topic, r.consumer, len(r.items)-r.dups, r.group)
	if r.dups > 0 {
		fmt.Fprintf(&b, "  %d records quarantined twice (a sink restarted before committing its offsets) are re-fed once\n", r.dups)
	}
	for _, it := range r.items {
		if it.dup {
			continue
		}
		if it.err != nil {
			fmt.Fprintf(&b, "  %s[%d]@%d: cannot be re-fed: %v\n", r.topic, it.from.Partition, it.from.Offset, it.err)
			continue
		}
		if all {
			fmt.Fprintf(&b, "  %s[%d]@%d -> %s[%d] (was offset %d): %s\n", r.topic, it.from.Partition, it.from.Offset,
				it.q.Source.Topic, it.q.Source.Partition, it.q.Source.Offset, it.q.Error)
		}
	}
	return b.String()
}

// RefeedResult is what a re-feed did.
type RefeedResult struct {
	Consumer, Quarantine string
	// PerTopic counts the records re-fed, by source topic.
	PerTopic map[string]int
	// Stuck counts the records that cannot be re-fed (they stay).
	Stuck int
}

func (res RefeedResult) String() string {
	if len(res.PerTopic) == 0 && res.Stuck == 0 {
		return "Nothing to re-feed.\n"
	}
	var b strings.Builder
	for _, t := range slices.Sorted(maps.Keys(res.PerTopic)) {
		fmt.Fprintf(&b, "re-fed %d records to %s, addressed to %s\n", res.PerTopic[t], t, res.Consumer)
	}
	if res.Stuck > 0 {
		fmt.Fprintf(&b, "%d records could not be re-fed (listed above; they stay on %s)\n", res.Stuck, res.Quarantine)
	}
	return b.String()
}

// Apply re-feeds the records and commits the re-feed progress, in one
// transaction.
func (r *Refeed) Apply(ctx context.Context) (RefeedResult, error) {
	res := RefeedResult{Consumer: r.consumer, Quarantine: r.topic, PerTopic: map[string]int{}}
	if len(r.items) == 0 {
		return res, nil
	}
	if err := r.produce(ctx); err != nil {
		return res, err
	}
	for _, it := range r.items {
		switch {
		case it.dup:
		case it.err != nil:
			res.Stuck++
		case it.to != nil:
			res.PerTopic[it.to.Topic]++
		}
	}
	return res, nil
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

// produce produces the re-fed records and commits the re-feed group's
// offsets on the quarantine topic (r.to: the end read) in one transaction:
// either both happen or neither. The transactional id is the consumer's, so
// two re-feeds of one quarantine at once fence each other.
func (r *Refeed) produce(ctx context.Context) error {
	kc, consumer, group, topic, items, to := r.kc, r.consumer, r.group, r.topic, r.items, r.to
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
