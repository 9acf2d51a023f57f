package postgres

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
	recavro "github.com/usagestream/usagestream/records/avro"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// runSink runs the PostgreSQL sink through the consume loop until stop is
// called; observe sees every committed batch.
func runSink(b *testing.B, kc kafkaconf.Config, names topics.Names, url string, observe func([]sink.Event, time.Time)) (stop func()) {
	stop, _ = runSinkPID(b, kc, names, url, observe)
	return stop
}

// runSinkPID is runSink that also returns the process id of the sink's
// PostgreSQL backend, whose CPU time the throughput benchmark reads.
func runSinkPID(b *testing.B, kc kafkaconf.Config, names topics.Names, url string, observe func([]sink.Event, time.Time)) (stop func(), backend uint32) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Open(ctx, Config{URL: url, Topics: names})
	if err != nil {
		b.Fatal(err)
	}
	backend = s.conn.PgConn().PID()
	done := make(chan error, 1)
	go func() {
		done <- sink.Run(ctx, sink.Config{Name: "postgres", Kafka: kc, Committed: observe}, s)
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		s.Close()
	}, backend
}

// cpuSelf is this process's CPU time (user and system).
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOf is the CPU time of another process on this machine (the PostgreSQL
// backend), from /proc/PID/stat in clock ticks of 10 ms.
func cpuOf(pid uint32) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th of the line.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// delays collects, per event, the time from being produced to being
// committed by the sink.
type delays struct {
	mu sync.Mutex
	d  []time.Duration
	n  int
}

func (d *delays) observe(batch []sink.Event, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range batch {
		d.d = append(d.d, at.Sub(e.Timestamp))
	}
	d.n += len(batch)
}

func (d *delays) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

func (d *delays) report(b *testing.B) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.d) == 0 {
		return
	}
	slices.Sort(d.d)
	q := func(p float64) float64 { return float64(d.d[int(p*float64(len(d.d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "delay-p50-ms")
	b.ReportMetric(q(0.99), "delay-p99-ms")
	b.ReportMetric(q(1), "delay-max-ms")
}

// BenchmarkPostgresSink: throughput of the whole sink (Kafka fetch, Avro
// decode, batched idempotent writes, offset commits) over EVENTS generated
// events (default 300,000: 60% eligibility, the rest corrections, account
// events and anomalies) produced beforehand to the embedded broker, into the
// PostgreSQL server of USAGESTREAM_TEST_POSTGRES_URL (durable defaults:
// fsync and synchronous_commit on).
func BenchmarkPostgresSink(b *testing.B) {
	n := envInt("EVENTS", 300_000)
	for range b.N {
		env := kafkatest.Start(b)
		url := sinktest.Postgres(b)
		g := sinktest.NewGenerator(env.Topics, 1)
		g.Customers = n / 20
		sinktest.Produce(b, env.Kafka, env.Topics, g, n)
		var d delays
		cpu0 := cpuSelf()
		start := time.Now()
		stop, backend := runSinkPID(b, env.Kafka, env.Topics, url, d.observe)
		pg0 := cpuOf(backend)
		for d.count() < n { // a fine poll, not testwait's back-off: the wait is in the measured time
			time.Sleep(5 * time.Millisecond)
		}
		elapsed := time.Since(start)
		cpu, pg := cpuSelf()-cpu0, cpuOf(backend)-pg0
		stop()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		// CPU per event, which other work on the shared machine does not
		// change as it changes the rate: the sink with the embedded broker
		// (this process), and the database backend writing for it.
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "sink+broker-cpu-us/event")
		b.ReportMetric(float64(pg.Microseconds())/float64(n), "postgres-cpu-us/event")
	}
}

// BenchmarkPostgresWrite: the database side alone: batches of 5000 decoded
// events written with Write, no Kafka.
func BenchmarkPostgresWrite(b *testing.B) {
	names := topics.NewNames("usagestream.")
	g := sinktest.NewGenerator(names, 2)
	g.Customers = 10_000
	const batch = 5000
	var gen []sinktest.Event
	for range 20 * batch {
		gen = append(gen, g.Next())
	}
	evs := roundTrip(b, gen, time.Now())
	url := sinktest.Postgres(b)
	s, err := Open(context.Background(), Config{URL: url, Topics: names})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	start := time.Now()
	written := 0
	for i := range b.N {
		k := i % 20
		chunk := evs[k*batch : (k+1)*batch]
		if i >= 20 {
			// New ids each round, so every write inserts.
			for j := range chunk {
				renew(chunk[j].Record)
			}
		}
		if err := s.Write(context.Background(), chunk); err != nil {
			b.Fatal(err)
		}
		written += len(chunk)
	}
	b.ReportMetric(float64(written)/time.Since(start).Seconds(), "events/s")
}

func writeGenerated(b *testing.B, dir string, cfg gen.Config) string {
	path := filepath.Join(dir, gen.FileName(cfg.WithDefaults(), "full"))
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if _, _, err := gen.WriteFull(zw, cfg); err != nil {
		b.Fatal(err)
	}
	zw.Close()
	f.Close()
	return path
}

// lagSampler samples, every 100 ms, the events on the event topics not yet
// committed by the sink's group (high watermarks minus committed offsets;
// each partition's last transaction marker counts as one).
type lagSampler struct {
	max  int64
	stop chan struct{}
	done chan struct{}
}

func sampleLag(b *testing.B, kc kafkaconf.Config, names topics.Names) *lagSampler {
	cl, err := kc.NewClient(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ls := &lagSampler{stop: make(chan struct{}), done: make(chan struct{})}
	group := sink.GroupFor(kc.TopicPrefix, "postgres")
	go func() {
		defer close(ls.done)
		defer cl.Close()
		for {
			select {
			case <-ls.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ends, err1 := adm.ListEndOffsets(ctx, sink.EventTopics(kc.TopicPrefix)...)
			offs, err2 := adm.FetchOffsets(ctx, group)
			cancel()
			if err1 != nil || err2 != nil {
				continue
			}
			var lag int64
			ends.Each(func(o kadm.ListedOffset) {
				c, _ := offs.Lookup(o.Topic, o.Partition)
				lag += o.Offset - max(c.At, 0)
			})
			ls.max = max(ls.max, lag)
		}
	}()
	return ls
}

func (ls *lagSampler) finish() int64 {
	close(ls.stop)
	<-ls.done
	return ls.max
}

// BenchmarkPostgresSinkBehindPipeline: the sink keeping up with the
// processors' real output. A generated file of ROWS rows (default 1,000,000,
// as processors/pipeline BenchmarkPipeline) is ingested, then the stages and
// the PostgreSQL sink start together, all in this process on the shared
// cores, with the PostgreSQL server beside them. Reports the pipeline's
// rows/s and the event rate it emits, the sink's largest lag in events while
// they run, the time from the pipeline catching up to the sink catching up,
// and each event's delay from being produced to being committed in the
// database.
func BenchmarkPostgresSinkBehindPipeline(b *testing.B) {
	rows := envInt("ROWS", 1_000_000)
	now := time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
	for range b.N {
		env := kafkatest.Start(b)
		url := sinktest.Postgres(b)
		dir := b.TempDir()
		path := writeGenerated(b, dir, gen.Config{ServicePoints: rows / 12, Months: 12, Seed: 1, Now: now})
		ctx, cancel := context.WithCancel(context.Background())
		in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
		if err != nil {
			b.Fatal(err)
		}
		res, err := in.Run(ctx, []string{path})
		if err != nil {
			b.Fatal(err)
		}
		p, err := pipeline.New(ctx, env.Kafka, rules.DefaultPolicy())
		if err != nil {
			b.Fatal(err)
		}
		var d delays
		lag := sampleLag(b, env.Kafka, env.Topics)
		start := time.Now()
		stopSink := runSink(b, env.Kafka, env.Topics, url, d.observe)
		var wg sync.WaitGroup
		for _, st := range p.Stages() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := runtime.Run(ctx, runtime.Config{Kafka: env.Kafka, DataDir: dir}, st); err != nil {
					b.Error(err)
				}
			}()
		}
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Minute)
		if err := pipeline.WaitCaughtUp(wctx, env.Kafka); err != nil {
			b.Fatal(err)
		}
		pipelineDone := time.Since(start)
		for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
			kafkatest.WaitCaughtUp(b, env.Kafka, sink.GroupFor(env.Kafka.TopicPrefix, "postgres"), topic, 10*time.Minute)
		}
		sinkDone := time.Since(start)
		wcancel()
		maxLag := lag.finish()
		stopSink()
		cancel()
		wg.Wait()
		events := d.count()
		b.ReportMetric(float64(res[0].Published)/pipelineDone.Seconds(), "pipeline-rows/s")
		b.ReportMetric(float64(events)/pipelineDone.Seconds(), "emitted-events/s")
		b.ReportMetric(float64(events), "events")
		b.ReportMetric(float64(maxLag), "max-lag-events")
		b.ReportMetric(float64((sinkDone - pipelineDone).Milliseconds()), "sink-after-pipeline-ms")
		d.report(b)
	}
}

// BenchmarkPostgresSinkAtRate: the sink's lag while it keeps up with a steady
// RATE events/s (default 34,000: what the processors emit at the 80,000
// rows/s of processors/pipeline BenchmarkPipeline, 0.42 events per billing
// row as measured by BenchmarkPostgresSinkBehindPipeline) for SECONDS
// (default 15), in transactions every 50 ms as the processors commit. Events
// are encoded beforehand so the producer costs little. Reports the rate
// achieved, the largest lag in events, each event's delay from produced to
// committed in the database, and how long after the last transaction the
// sink had everything.
func BenchmarkPostgresSinkAtRate(b *testing.B) {
	rate, seconds := envInt("RATE", 34_000), envInt("SECONDS", 15)
	const tick = 50 * time.Millisecond
	perTick := rate * int(tick) / int(time.Second)
	for range b.N {
		env := kafkatest.Start(b)
		url := sinktest.Postgres(b)
		ctx := context.Background()
		p, err := sinktest.NewProducer(ctx, env.Kafka, env.Topics)
		if err != nil {
			b.Fatal(err)
		}
		g := sinktest.NewGenerator(env.Topics, 3)
		g.Customers = 50_000
		ticks := seconds * int(time.Second/tick)
		chunks := make([][]*kgo.Record, ticks)
		for i := range chunks {
			evs := make([]sinktest.Event, perTick)
			for j := range evs {
				evs[j] = g.Next()
			}
			if chunks[i], err = p.Encode(evs); err != nil {
				b.Fatal(err)
			}
		}
		var d delays
		lag := sampleLag(b, env.Kafka, env.Topics)
		stop := runSink(b, env.Kafka, env.Topics, url, d.observe)
		start := time.Now()
		next := start
		for _, c := range chunks {
			for _, r := range c {
				r.Timestamp = time.Time{} // stamped when produced
			}
			if err := p.SendRecords(ctx, c); err != nil {
				b.Fatal(err)
			}
			next = next.Add(tick)
			time.Sleep(time.Until(next)) // pacing: a steady produce rate
		}
		produced := time.Since(start)
		for d.count() < ticks*perTick { // a fine poll: the wait is in the measured time
			time.Sleep(5 * time.Millisecond)
		}
		caughtUp := time.Since(start) - produced
		maxLag := lag.finish()
		stop()
		p.Close()
		b.ReportMetric(float64(ticks*perTick)/produced.Seconds(), "produced-events/s")
		b.ReportMetric(float64(maxLag), "max-lag-events")
		b.ReportMetric(float64(caughtUp.Milliseconds()), "sink-after-producer-ms")
		d.report(b)
	}
}

// renew gives an event record a new event_id.
func renew(r recavro.Record) {
	switch e := r.(type) {
	case *recavro.EligibilityChanged:
		e.EventID += "r"
	case *recavro.UsageCorrected:
		e.EventID += "r"
	case *recavro.AccountEvent:
		e.EventID += "r"
	case *recavro.Anomaly:
		e.EventID += "r"
	}
}
