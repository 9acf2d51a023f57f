package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRestoreEndsAtAnAbortMarker: a changelog partition that ends with an
// aborted transaction whose abort marker sits exactly at the restore's end
// offset (the transaction was aborted while the end was taken, as a
// coordinator's death did on the three-broker cluster) is restored to the
// end: the committed state is applied, the aborted one is not, and the
// restore returns instead of waiting forever for a record below end that a
// read_committed client never hands over.
func TestRestoreEndsAtAnAbortMarker(t *testing.T) {
	c := newCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := c.kc.TopicPrefix + "changelog-abort"
	admCl, err := c.kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic); err != nil {
		t.Fatal(err)
	}
	tx, err := kgo.NewClient(kgo.SeedBrokers(c.kc.Brokers...), kgo.TransactionalID(c.kc.TopicPrefix+"restore-abort"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	for _, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		key := "committed"
		if commit == kgo.TryAbort {
			key = "aborted"
		}
		if err := tx.ProduceSync(ctx, &kgo.Record{Key: clStateKey([]byte(key)), Value: []byte(key)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	// committed record, commit marker, aborted record, abort marker. A
	// real broker writes the markers after EndTransaction has returned
	// (the coordinator answers once the outcome is in its log), so the
	// last one may take a moment to show.
	var hwm int64
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if hwm = ends[topic][0].Offset; hwm >= 4 || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hwm != 4 {
		t.Fatalf("high watermark %d, want 4 (two transactions of one record each)", hwm)
	}
	in := &Instance{name: "restore", cfg: Config{Kafka: c.kc, Changelog: topic}, store: openTestStore(t), m: NewMetrics(nil)}
	cl, err := c.kc.NewClient(ctx, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	end := hwm - 1 // the abort marker's offset
	applied, err := in.restoreTo(ctx, cl, 0, 0, end, in.m.restoreRemaining.WithLabelValues("restore", "0"))
	if err != nil {
		t.Fatalf("restore to the abort marker at %d: %v", end, err)
	}
	if applied != 1 {
		t.Fatalf("%d state records applied, want 1 (the committed one)", applied)
	}
	if _, ok, err := in.store.Get(0, []byte("committed")); err != nil || !ok {
		t.Fatalf("the committed state is not in the store (%v, %v)", ok, err)
	}
	if _, ok, err := in.store.Get(0, []byte("aborted")); err != nil || ok {
		t.Fatalf("the aborted state is in the store (%v, %v)", ok, err)
	}
	if next, err := in.store.ChangelogOffset(0); err != nil || next != hwm {
		t.Fatalf("changelog offset %d (%v), want %d: past the abort marker", next, err, hwm)
	}
}
