// Package consume reads a topic from its start to its end the way a
// downstream consumer sees it: read_committed, control records skipped.
package consume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
)

// Each calls fn for every committed record of topic up to the end the topic
// had when Each was called, partition by partition in offset order.
//
// Transactions still open at the call hide what comes after them (the last
// stable offset stops there), so Each first waits, up to a bound, until the
// stable offset has reached the end seen at the call: a record committed
// behind another producer's open transaction is then included.
func Each(ctx context.Context, kc kafkaconf.Config, topic string, fn func(*kgo.Record)) error {
	cl, err := kc.NewClient(ctx, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
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
		return fmt.Errorf("listing the end offsets of %s (does the topic exist? 'usagestream run' creates it): %w", topic, err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil
	}
	if err := waitStable(ctx, adm, topic, want); err != nil {
		return err
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts})

	reached := map[int32]bool{}
	progress := time.Now()
	for len(reached) < len(want) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fs.Empty() {
			// The stable offset has passed the target, so a long silence
			// means the rest was compacted away. A short one is only a slow
			// broker (a busy machine): keep polling.
			if time.Since(progress) > idleEnd {
				return nil
			}
			continue
		}
		if err := firstRealError(fs); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		progress = time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				fn(r)
			}
			if r.Offset >= want[r.Partition]-1 {
				reached[r.Partition] = true
			}
		})
	}
	return nil
}

// idleEnd is how long Each polls without a record before it takes the rest
// of the range as compacted away.
const idleEnd = 30 * time.Second

// All collects every committed record of topic (see Each).
func All(ctx context.Context, kc kafkaconf.Config, topic string) ([]*kgo.Record, error) {
	var out []*kgo.Record
	err := Each(ctx, kc, topic, func(r *kgo.Record) { out = append(out, r) })
	return out, err
}

func waitStable(ctx context.Context, adm *kadm.Client, topic string, want map[int32]int64) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		lso, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return fmt.Errorf("listing the stable offsets of %s: %w", topic, err)
		}
		ok := true
		lso.Each(func(o kadm.ListedOffset) {
			if o.Offset < want[o.Partition] {
				ok = false
			}
		})
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("a producer keeps a transaction open on %s for over 2 minutes: wait for it to finish, or find the stuck producer", topic)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func firstRealError(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(_ string, _ int32, err error) {
		if first == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			first = err
		}
	})
	return first
}

// WaitCaughtUp waits until group has consumed every committed record of
// topic up to the end the topic had when called. Between the group's
// committed offset and the end there may be only transaction markers and
// aborted records, which a read_committed consumer never sees: a partition
// counts as caught up when nothing readable is left there.
//
// Finding that out means reading the topic, so it is only looked at when the
// answer can be yes: when each partition still behind is one offset short
// (where a caught-up consumer of a transactional topic stands, before the
// last commit marker), or when the group's offsets have not moved for
// idlePolls polls (what is left may be aborted records). Reading at every
// poll decompressed a fetch of every lagging partition ten times a second,
// while the group was busy reading the same records.
func WaitCaughtUp(ctx context.Context, kc kafkaconf.Config, group, topic string) error {
	return waitCaughtUp(ctx, kc, group, topic, readableBetween)
}

// idlePolls is how many polls (100 ms apart) a group's committed offsets
// must stay put before WaitCaughtUp reads what is left behind them.
const idlePolls = 3

type readableFunc func(ctx context.Context, kc kafkaconf.Config, topic string, from map[int32]kgo.Offset, to map[int32]int64) (bool, error)

func waitCaughtUp(ctx context.Context, kc kafkaconf.Config, group, topic string, readable readableFunc) error {
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	last := "no committed offsets fetched yet"
	var seen string // the group's offsets at the last poll, every topic's
	still := 0      // polls since they last moved
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			last = "fetching committed offsets: " + err.Error()
		}
		if err == nil {
			last = fmt.Sprintf("committed %v, end %v", committedSummary(committed, topic), endSummary(ends))
			if all := allOffsets(committed); all == seen {
				still++
			} else {
				seen, still = all, 0
			}
			behind := map[int32]kgo.Offset{}
			want := map[int32]int64{}
			atMarker := true
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := committed.Lookup(topic, o.Partition)
				at := int64(0)
				if ok {
					at = c.At
				}
				if at < o.Offset {
					behind[o.Partition] = kgo.NewOffset().At(at)
					want[o.Partition] = o.Offset
					atMarker = atMarker && o.Offset-at == 1
				}
			})
			done := len(behind) == 0
			if !done && (atMarker || still >= idlePolls) {
				r, err := readable(ctx, kc, topic, behind, want)
				if err != nil {
					return err
				}
				done = !r
			}
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s did not catch up on %s (%s): %w", group, topic, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// allOffsets renders every committed offset of a group, to tell whether it
// moved between two polls.
func allOffsets(o kadm.OffsetResponses) string {
	var parts []string
	o.Each(func(r kadm.OffsetResponse) {
		parts = append(parts, fmt.Sprintf("%s/%d:%d", r.Topic, r.Partition, r.At))
	})
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// readableBetween reports whether a read_committed consumer would get any
// record of topic between from and to (exclusive), per partition.
func readableBetween(ctx context.Context, kc kafkaconf.Config, topic string, from map[int32]kgo.Offset, to map[int32]int64) (bool, error) {
	cl, err := kc.NewClient(ctx, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	reached := map[int32]bool{}
	for len(reached) < len(from) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if fs.Empty() {
			// Nothing more arrives: what is left is open or aborted.
			return false, nil
		}
		readable := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= to[r.Partition] {
				reached[r.Partition] = true
				return
			}
			if !r.Attrs.IsControl() {
				readable = true
			}
			if r.Offset >= to[r.Partition]-1 {
				reached[r.Partition] = true
			}
		})
		if readable {
			return true, nil
		}
	}
	return false, nil
}

func committedSummary(o kadm.OffsetResponses, topic string) string {
	var parts []string
	o.Each(func(r kadm.OffsetResponse) {
		if r.Topic == topic {
			parts = append(parts, fmt.Sprintf("%d:%d", r.Partition, r.At))
		}
	})
	slices.Sort(parts)
	return "[" + strings.Join(parts, " ") + "]"
}

func endSummary(l kadm.ListedOffsets) string {
	var parts []string
	l.Each(func(o kadm.ListedOffset) { parts = append(parts, fmt.Sprintf("%d:%d", o.Partition, o.Offset)) })
	slices.Sort(parts)
	return "[" + strings.Join(parts, " ") + "]"
}

// CountReadable counts the records of topic a read_committed consumer gets
// between from and to (exclusive) per partition. Offsets are not records:
// every transaction ends with a commit marker, and aborted records are
// skipped, so to - from overstates what is left; a consumer caught up on a
// transactional topic stands one marker short of its end.
func CountReadable(ctx context.Context, kc kafkaconf.Config, topic string, from, to map[int32]int64) (map[int32]int64, error) {
	out := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	for p, f := range from {
		out[p] = 0
		if f < to[p] {
			start[p] = kgo.NewOffset().At(f)
		}
	}
	if len(start) == 0 {
		return out, nil
	}
	cl, err := kc.NewClient(ctx, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	reached := map[int32]bool{}
	for len(reached) < len(start) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := firstRealError(fs); err != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, err)
		}
		if fs.Empty() {
			return out, nil // nothing more arrives: what is left is open or aborted
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= to[r.Partition] {
				reached[r.Partition] = true
				return
			}
			if !r.Attrs.IsControl() {
				out[r.Partition]++
			}
			if r.Offset >= to[r.Partition]-1 {
				reached[r.Partition] = true
			}
		})
	}
	return out, nil
}
