package kafkaconf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// answerCounter counts, from franz-go's debug log of each produce response,
// the batches a broker answered CONCURRENT_TRANSACTIONS (retried) and
// OUT_OF_ORDER_SEQUENCE_NUMBER (a batch sent behind a rejected one,
// dropped and sent again after it).
type answerCounter struct{ concurrent, outOfOrder atomic.Int64 }

func (c *answerCounter) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (c *answerCounter) Log(_ kgo.LogLevel, msg string, kv ...any) {
	if msg != "produced" {
		return
	}
	s := fmt.Sprint(kv...)
	c.concurrent.Add(int64(strings.Count(s, "(CONCURRENT_TRANSACTIONS")))
	c.outOfOrder.Add(int64(strings.Count(s, "(OUT_OF_ORDER_SEQUENCE_NUMBER")))
}

// BenchmarkRealKafkaBackToBackTransactions reproduces, on a real Kafka 4
// broker (transactions v2), what four `process` stages do to it: four
// transactional producers, each committing transactions of 5,000 records
// over 24 partitions back to back. It reports per run the batches answered
// CONCURRENT_TRANSACTIONS and OUT_OF_ORDER_SEQUENCE_NUMBER (KAFKA-18202) and
// the slowest transaction of the measured producer, for the linger the
// runtime used (2 ms) and one longer than a transaction's produce (1 s),
// and for franz-go's metadata age against MetadataMinAge
// (docs/capacity.md#out-of-order-sequence-answers). Needs
// USAGESTREAM_TEST_BROKERS (scripts/realkafka.sh start):
//
//	USAGESTREAM_TEST_BROKERS=127.0.0.1:PORT go test -run X -bench BackToBack -benchtime 1x -count 3 ./internal/kafkaconf
func BenchmarkRealKafkaBackToBackTransactions(b *testing.B) {
	brokers := os.Getenv("USAGESTREAM_TEST_BROKERS")
	if brokers == "" {
		b.Skip("needs a real broker: USAGESTREAM_TEST_BROKERS (scripts/realkafka.sh start prints it)")
	}
	for _, c := range []struct {
		name    string
		linger  time.Duration
		minAge  time.Duration
		records int
	}{
		{"linger=2ms/metadata=5s", 2 * time.Millisecond, 5 * time.Second, 5000},
		{"linger=2ms/metadata=MetadataMinAge", 2 * time.Millisecond, MetadataMinAge, 5000},
		{"linger=1s/metadata=5s", time.Second, 5 * time.Second, 5000},
		{"linger=1s/metadata=MetadataMinAge", time.Second, MetadataMinAge, 5000},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				backToBack(b, brokers, c.linger, c.minAge, c.records)
			}
		})
	}
}

func backToBack(b *testing.B, brokers string, linger, minAge time.Duration, records int) {
	const producers, transactions, topics = 4, 150, 4
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var r [6]byte
	_, _ = rand.Read(r[:])
	prefix := "b2b" + hex.EncodeToString(r[:])
	adm, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("%s.t%d", prefix, i)
	}
	if _, err := kadm.NewClient(adm).CreateTopics(ctx, 6, 1, nil, names...); err != nil {
		b.Fatal(err)
	}
	defer func() { _, _ = kadm.NewClient(adm).DeleteTopics(context.Background(), names...) }()
	time.Sleep(3 * time.Second) // the new partitions' leaders settle: no NOT_LEADER retry in the figures

	counter := &answerCounter{}
	var slowest atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	b.ResetTimer()
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.TransactionalID(prefix+strconv.Itoa(p)),
				kgo.ProducerLinger(linger), kgo.MetadataMinAge(minAge), kgo.WithLogger(counter))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			value := make([]byte, 200)
			var failed atomic.Value
			for t := 0; t < transactions; t++ {
				if err := cl.BeginTransaction(); err != nil {
					errs <- err
					return
				}
				start := time.Now()
				for j := 0; j < records; j++ {
					rec := &kgo.Record{Topic: names[(j+p)%topics], Key: []byte(strconv.Itoa(j * 7919 % 100_000)), Value: value}
					cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
						if err != nil {
							failed.Store(err)
						}
					})
				}
				if err := cl.Flush(ctx); err != nil {
					errs <- err
					return
				}
				if err, _ := failed.Load().(error); err != nil {
					errs <- err
					return
				}
				if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
					errs <- err
					return
				}
				// The first transaction of a producer loads its id and
				// metadata: not what is measured.
				if d := time.Since(start); p == 0 && t > 0 && int64(d) > slowest.Load() {
					slowest.Store(int64(d))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(counter.concurrent.Load()), "concurrent_txn_answers")
	b.ReportMetric(float64(counter.outOfOrder.Load()), "out_of_order_answers")
	b.ReportMetric(time.Duration(slowest.Load()).Seconds()*1000, "slowest_txn_ms")
}
