// Package consume reads a topic from its start to its end the way a
// downstream consumer sees it: read_committed, control records skipped.
package consume

import (
	"context"
	"errors"
	"fmt"
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
	for len(reached) < len(want) {
		// The stable offset has passed the target, so an idle poll means the
		// rest was compacted or aborted away: nothing more to read.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fs.Empty() {
			return nil
		}
		if err := firstRealError(fs); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
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

// WaitCaughtUp waits until group has committed every record of topic up to
// the end the topic had when called. Transactional inputs end with a commit
// marker that takes the last offset and is never consumed as a record, so a
// committed offset one short of the end counts as caught up.
func WaitCaughtUp(ctx context.Context, kc kafkaconf.Config, group, topic string) error {
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
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				if o.Offset == 0 {
					return
				}
				c, ok := committed.Lookup(topic, o.Partition)
				if !ok || c.At < o.Offset-1 {
					done = false
				}
			})
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s did not catch up on %s: %w", group, topic, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
