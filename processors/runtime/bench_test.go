package runtime

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/schemas"
)

// spUsage is a realistic per-service-point state: rows seen, total usage,
// and the newest period end.
type spUsage struct {
	Rows   int     `json:"r"`
	Usage  float64 `json:"u"`
	Newest int64   `json:"n"`
}

func spUsageProcessor(b testing.TB, input, output string) *Processor[*spUsage] {
	codec, err := goavro.NewCodec(schemas.MustText(schemas.BillingRow))
	if err != nil {
		b.Fatal(err)
	}
	return &Processor[*spUsage]{
		Name:      "bench-sp",
		Inputs:    []string{input},
		Outputs:   []string{output},
		New:       func() *spUsage { return &spUsage{} },
		Marshal:   func(s *spUsage) ([]byte, error) { return json.Marshal(s) },
		Unmarshal: func(v []byte) (*spUsage, error) { var s spUsage; err := json.Unmarshal(v, &s); return &s, err },
		Process: func(s *spUsage, in Input) (Step[*spUsage], error) {
			native, _, err := codec.NativeFromBinary(in.Record.Value[5:]) // past the Confluent header
			if err != nil {
				return Step[*spUsage]{}, err
			}
			m := native.(map[string]any)
			if u, ok := m["usage_value"].(map[string]any); ok {
				s.Usage += u["double"].(float64)
			}
			if d, ok := m["date_to"].(map[string]any); ok {
				if t := d["int.date"].(time.Time).Unix(); t > s.Newest {
					s.Newest = t
				}
			}
			s.Rows++
			ts := make([]byte, 8)
			binary.BigEndian.PutUint64(ts, uint64(in.Record.Timestamp.UnixNano()))
			return Step[*spUsage]{State: s, Write: true, Outputs: []Out{{Topic: output, Key: in.Record.Key, Value: ts}}}, nil
		},
	}
}

func ingestGenerated(b testing.TB, env *kafkatest.Env, servicePoints int) int64 {
	path := filepath.Join(b.TempDir(), "opwr_gec_res_v1-19-0_full_20250315120000.gz")
	f, _ := os.Create(path)
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	rows, _, err := gen.WriteFull(zw, gen.Config{ServicePoints: servicePoints, Months: 12, Seed: 1, Now: time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	zw.Close()
	f.Close()
	in, err := ingest.New(context.Background(), env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := in.Run(context.Background(), []string{path}); err != nil {
		b.Fatal(err)
	}
	return rows
}

// createTopic creates the benchmark's topic name under the environment's
// topic prefix (a fresh one per run against a real broker, so a second run
// does not meet the first one's topics) and returns its full name.
func createTopic(b testing.TB, env *kafkatest.Env, name string) string {
	name = env.Kafka.TopicPrefix + name
	cl, err := env.Kafka.NewClient(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 3, 1, nil, name); err != nil {
		b.Fatal(err)
	}
	return name
}

// BenchmarkRuntimeEOS: a stateful per-service-point processor (decodes each
// Avro billing row, keeps rows, usage and newest date per service point)
// over generated billing records, exactly once on the embedded broker in the
// same process (the broker's work is counted too).
func BenchmarkRuntimeEOS(b *testing.B) {
	for i := 0; i < b.N; i++ {
		env := kafkatest.Start(b)
		rows := ingestGenerated(b, env, 25_000)
		out := createTopic(b, env, "bench.out")
		ctx, cancel := context.WithCancel(context.Background())
		cfg := Config{Kafka: env.Kafka, DataDir: b.TempDir()}
		inst, err := NewInstance(cfg, spUsageProcessor(b, env.Topics.Billing, out))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- inst.Run(ctx) }()
		kafkatest.WaitCaughtUp(b, env.Kafka, inst.cfg.Group, env.Topics.Billing, 5*time.Minute)
		elapsed := time.Since(start)
		cancel()
		<-done
		inst.Close()
		b.ReportMetric(float64(rows)/elapsed.Seconds(), "records/s")
	}
}

// BenchmarkRestore: a partition rebuilt from a changelog of 600k state entries.
func BenchmarkRestore(b *testing.B) {
	env := kafkatest.Start(b)
	const entries = 600_000
	in := createTopic(b, env, "bench.in")
	name := "bench-restore"
	changelog := ChangelogTopic(env.Kafka.TopicPrefix, name)
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 3, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, changelog); err != nil {
		b.Fatal(err)
	}
	val := []byte(`{"r":12,"u":6123.5,"n":1735689600}`)
	var wg sync.WaitGroup
	for i := 0; i < entries; i++ {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: changelog, Partition: 0, Key: clStateKey([]byte(fmt.Sprintf("SP-E-%08d", i))), Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	cl.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := &Processor[*spUsage]{Name: name, Inputs: []string{in}, Outputs: []string{}, New: func() *spUsage { return &spUsage{} }}
		inst, err := NewInstance(Config{Kafka: env.Kafka, DataDir: b.TempDir()}, p)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := inst.restore(context.Background(), 0); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(entries/time.Since(start).Seconds(), "entries/s")
		n, _ := inst.store.Keys(0)
		if n != entries {
			b.Fatalf("restored %d entries, want %d", n, entries)
		}
		inst.Close()
	}
}

// BenchmarkLatencyAt20k: input appended at a steady 20,000 records/s for 10
// seconds; latency is from the input record's append time to the moment a
// read_committed consumer sees the output it caused.
func BenchmarkLatencyAt20k(b *testing.B) {
	env := kafkatest.Start(b)
	inTopic, outTopic := createTopic(b, env, "bench.in"), createTopic(b, env, "bench.out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &Processor[*spUsage]{
		Name: "bench-latency", Inputs: []string{inTopic}, Outputs: []string{outTopic}, New: func() *spUsage { return &spUsage{} },
		Marshal:   func(s *spUsage) ([]byte, error) { return json.Marshal(s) },
		Unmarshal: func(v []byte) (*spUsage, error) { var s spUsage; err := json.Unmarshal(v, &s); return &s, err },
		Process: func(s *spUsage, in Input) (Step[*spUsage], error) {
			s.Rows++
			ts := make([]byte, 8)
			binary.BigEndian.PutUint64(ts, uint64(in.Record.Timestamp.UnixNano()))
			return Step[*spUsage]{State: s, Write: true, Outputs: []Out{{Topic: outTopic, Key: in.Record.Key, Value: ts}}}, nil
		},
	}
	inst, err := NewInstance(Config{Kafka: env.Kafka, DataDir: b.TempDir()}, p)
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Close()
	go inst.Run(ctx)

	const rate, seconds = 20_000, 10
	cons, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Brokers...), kgo.ConsumeTopics(outTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()
	var lat []time.Duration
	got := make(chan struct{})
	go func() {
		defer close(got)
		for len(lat) < rate*seconds {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				lat = append(lat, now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))))
			})
		}
	}()
	prod, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Brokers...), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	b.ResetTimer()
	tick := time.NewTicker(10 * time.Millisecond)
	for i := 0; i < rate*seconds/200; i++ { // 200 records every 10 ms
		<-tick.C
		for j := 0; j < 200; j++ {
			k := (i*200 + j) % 5000
			prod.Produce(ctx, &kgo.Record{Topic: inTopic, Key: []byte(fmt.Sprintf("SP-%05d", k)), Timestamp: time.Now()}, nil)
		}
	}
	tick.Stop()
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		b.Fatalf("only %d outputs seen", len(lat))
	}
	slices.Sort(lat)
	commits := testutil.ToFloat64(inst.m.commits.WithLabelValues(inst.name))
	b.ReportMetric(float64(seconds*1000)/commits, "ms/commit")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
