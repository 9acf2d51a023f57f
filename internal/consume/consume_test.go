package consume

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
)

// transactions writes n transactions of each records to partition 0 of
// topic, the last one aborted when abortLast, and returns the end offset.
func transactions(t *testing.T, kc kafkaconf.Config, topic string, n, each int, abortLast bool) int64 {
	t.Helper()
	ctx := context.Background()
	cl, err := kc.NewClient(ctx, kgo.TransactionalID("tx-"+topic), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range each {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "%d-%d", i, j)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(!(abortLast && i == n-1))); err != nil {
			t.Fatal(err)
		}
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, 0)
	return o.Offset
}

func commit(t *testing.T, adm *kadm.Client, group, topic string, at int64) {
	t.Helper()
	var os kadm.Offsets
	os.AddOffset(topic, 0, at, -1)
	if err := adm.CommitAllOffsets(context.Background(), group, os); err != nil {
		t.Error(err)
	}
}

// TestWaitCaughtUpReadsOnlyWhenItCanBeDone: while a group's offsets move,
// WaitCaughtUp does not read the topic behind them (it used to fetch and
// decompress every lagging partition at each of its polls, competing with
// the group it waited for); it reads once the group stands one offset short
// of the end (the last commit marker) and says caught up then; a group
// stopped before aborted records only is caught up too, and one stopped
// before a readable record is not.
func TestWaitCaughtUpReadsOnlyWhenItCanBeDone(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "moving", "aborted", "left"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kc := kafkaconf.Config{Brokers: c.ListenAddrs()}
	cl, err := kc.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var reads atomic.Int64
	counting := func(ctx context.Context, kc kafkaconf.Config, topic string, from map[int32]kgo.Offset, to map[int32]int64) (bool, error) {
		reads.Add(1)
		return readableBetween(ctx, kc, topic, from, to)
	}

	t.Run("moving", func(t *testing.T) {
		reads.Store(0)
		end := transactions(t, kc, "moving", 20, 5, false) // 20 x (5 records, a marker)
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done <- waitCaughtUp(ctx, kc, "g-moving", "moving", counting)
		}()
		// The group reads an offset every 5 ms, far faster than the 300 ms
		// of standing still that lets the waiter read.
		for at := int64(1); at < end-1; at++ {
			commit(t, adm, "g-moving", "moving", at)
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case err := <-done:
			t.Fatalf("caught up before the group was: %v", err)
		default:
		}
		if n := reads.Load(); n != 0 {
			t.Fatalf("read the topic %d times while the group was moving", n)
		}
		commit(t, adm, "g-moving", "moving", end-1) // before the last marker: caught up
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if reads.Load() == 0 {
			t.Fatal("said caught up without looking at what stands behind the group's offset")
		}
	})

	t.Run("aborted", func(t *testing.T) {
		reads.Store(0)
		end := transactions(t, kc, "aborted", 3, 5, true) // the third aborted
		commit(t, adm, "g-aborted", "aborted", end-6)     // before the aborted records
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := waitCaughtUp(ctx, kc, "g-aborted", "aborted", counting); err != nil {
			t.Fatal(err)
		}
		if reads.Load() == 0 {
			t.Fatal("said caught up without reading the aborted records")
		}
	})

	t.Run("left", func(t *testing.T) {
		end := transactions(t, kc, "left", 2, 5, false)
		commit(t, adm, "g-left", "left", end-3) // two records and a marker left
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := waitCaughtUp(ctx, kc, "g-left", "left", counting); err == nil {
			t.Fatal("caught up with readable records left")
		}
	})
}
