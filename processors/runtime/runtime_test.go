package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/testlog"
	"github.com/usagestream/usagestream/internal/testwait"
	"github.com/usagestream/usagestream/internal/topics"
)

// The test processor counts records per key and emits "key n eventID" for
// each: every (key, n) must appear exactly once in the output, and a count
// that continues correctly after a crash or a lost disk proves the state
// survived exactly.
type counter struct {
	N     int   `json:"n"`
	Fired []int `json:"fired,omitempty"`
}

func countingProcessor(prefix string) *Processor[*counter] {
	inTopic, outTopic := prefix+"in", prefix+"out"
	return &Processor[*counter]{
		Name:      "counter",
		Inputs:    []string{inTopic},
		Outputs:   []string{outTopic},
		New:       func() *counter { return &counter{} },
		Marshal:   func(c *counter) ([]byte, error) { return json.Marshal(c) },
		Unmarshal: func(b []byte) (*counter, error) { var c counter; err := json.Unmarshal(b, &c); return &c, err },
		Process: func(c *counter, in Input) (Step[*counter], error) {
			if in.Timer != nil {
				c.Fired = append(c.Fired, c.N)
				v := fmt.Sprintf("%s timer-%c %d %s", in.Timer.Key, in.Timer.Kind, c.N, in.EventID(0))
				return Step[*counter]{State: c, Write: true, Outputs: []Out{{Topic: outTopic, Key: in.Timer.Key, Value: []byte(v)}}}, nil
			}
			c.N++
			v := fmt.Sprintf("%s %d %s", in.Record.Key, c.N, in.EventID(0))
			st := Step[*counter]{State: c, Write: true, Outputs: []Out{{Topic: outTopic, Key: in.Record.Key, Value: []byte(v)}}}
			switch string(in.Record.Value) {
			case "timer":
				st.Timers = []Timer{{Kind: WallClock, Key: in.Record.Key, At: in.Record.Timestamp.Add(300 * time.Millisecond)}}
			case "etimer":
				st.Timers = []Timer{{Kind: EventTime, Key: in.Record.Key, At: in.Record.Timestamp.Add(time.Hour)}}
			case "huge": // over the producer's batch limit: producing it fails
				st.Outputs[0].Value = make([]byte, 2<<20)
			case "stray": // a topic the processor does not declare
				st.Outputs = append(st.Outputs, Out{Topic: prefix + "stray", Key: in.Record.Key, Value: []byte(v)})
			}
			return st, nil
		},
	}
}

type cluster struct {
	kc      kafkaconf.Config
	in, out string
}

func newCluster(t *testing.T, partitions int32) *cluster {
	t.Helper()
	// USAGESTREAM_TEST_BROKERS (scripts/realkafka.sh): a real cluster, with
	// topics of this test's own; otherwise an in-process kfake.
	var kc kafkaconf.Config
	if b := os.Getenv("USAGESTREAM_TEST_BROKERS"); b != "" {
		kc = kafkaconf.Config{Brokers: strings.Split(b, ","), TopicPrefix: fmt.Sprintf("rt%d.", time.Now().UnixNano())}
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		kc = kafkaconf.Config{Brokers: c.ListenAddrs(), TopicPrefix: "t."}
	}
	cl, err := kc.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	inTopic, outTopic := kc.TopicPrefix+"in", kc.TopicPrefix+"out"
	for _, tp := range []string{inTopic, outTopic} { // the runtime creates its changelog
		cfg := map[string]*string{}
		if strings.Contains(tp, "changelog") {
			cfg["cleanup.policy"] = kadm.StringPtr("compact")
		}
		if _, err := adm.CreateTopic(context.Background(), partitions, 1, cfg, tp); err != nil {
			t.Fatal(err)
		}
	}
	if err := topics.WaitVisible(context.Background(), adm, inTopic, outTopic); err != nil {
		t.Fatal(err)
	}
	return &cluster{kc: kc, in: inTopic, out: outTopic}
}

// produce writes n records spread over keys, with optional per-record value.
func (c *cluster) produce(t *testing.T, keys, from, n int, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kc.Brokers...), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var perr error
	var mu sync.Mutex
	for i := from; i < from+n; i++ {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: c.in, Key: []byte(fmt.Sprintf("k%03d", i%keys)), Value: []byte(value)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				perr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if perr != nil {
		t.Fatal(perr)
	}
}

// outputs reads the output topic (read_committed) as key -> list of counts.
func (c *cluster) outputs(t *testing.T) (counts map[string][]int, timers map[string]int, total int) {
	t.Helper()
	recs, err := consume.All(context.Background(), c.kc, c.out)
	if err != nil {
		t.Fatal(err)
	}
	counts, timers = map[string][]int{}, map[string]int{}
	for _, r := range recs {
		f := strings.Fields(string(r.Value))
		if strings.HasPrefix(f[1], "timer-") {
			timers[f[0]]++
			continue
		}
		n, _ := strconv.Atoi(f[1])
		counts[f[0]] = append(counts[f[0]], n)
	}
	return counts, timers, len(recs)
}

// checkExactlyOnce: each key k has counts 1..want[k], each exactly once.
func checkExactlyOnce(t *testing.T, counts map[string][]int, keys, total int) {
	t.Helper()
	got := 0
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("k%03d", k)
		want := total / keys
		if k < total%keys {
			want++
		}
		seen := map[int]int{}
		for _, n := range counts[key] {
			seen[n]++
		}
		for n := 1; n <= want; n++ {
			if seen[n] != 1 {
				t.Fatalf("key %s: count %d emitted %d times, want exactly once (%d records in)", key, n, seen[n], want)
			}
		}
		if len(counts[key]) != want {
			t.Fatalf("key %s: %d outputs, want %d (extra: %v)", key, len(counts[key]), want, counts[key])
		}
		got += len(counts[key])
	}
	if got != total {
		t.Fatalf("%d outputs, want %d", got, total)
	}
}

func waitOutputs(t *testing.T, c *cluster, want int, timeout time.Duration) {
	t.Helper()
	n := 0
	if !testwait.For(timeout, func() bool { _, _, n = c.outputs(t); return n >= want }) {
		t.Fatalf("only %d of %d outputs after %s", n, want, timeout)
	}
}

func startInstance(t *testing.T, c *cluster, dir string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Kafka: c.kc, DataDir: dir, WallClockTick: 50 * time.Millisecond}, countingProcessor(c.kc.TopicPrefix))
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("instance: %v", err)
		}
	}
}

func TestCountsExactlyOnce(t *testing.T) {
	c := newCluster(t, 3)
	c.produce(t, 50, 0, 3000, "")
	stop := startInstance(t, c, t.TempDir())
	waitOutputs(t, c, 3000, time.Minute)
	stop()
	counts, _, _ := c.outputs(t)
	checkExactlyOnce(t, counts, 50, 3000)
}

// TestLostDiskRestoresFromChangelog deletes the processor's Pebble directory
// between runs: the new run rebuilds state from the changelog and counts on
// exactly as an instance that never lost it.
func TestLostDiskRestoresFromChangelog(t *testing.T) {
	c := newCluster(t, 3)
	c.produce(t, 40, 0, 2000, "")
	dir := t.TempDir()
	stop := startInstance(t, c, dir)
	waitOutputs(t, c, 2000, time.Minute)
	stop()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	c.produce(t, 40, 2000, 2000, "")
	stop = startInstance(t, c, dir)
	waitOutputs(t, c, 4000, time.Minute)
	stop()
	counts, _, _ := c.outputs(t)
	checkExactlyOnce(t, counts, 40, 4000)
	// The rebuilt store holds every key.
	st, err := OpenStore(filepath.Join(dir, "counter", "pebble"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys := 0
	for p := int32(0); p < 3; p++ {
		n, _ := st.Keys(p)
		keys += n
	}
	if keys != 40 {
		t.Fatalf("restored store holds %d keys, want 40", keys)
	}
}

func TestWallClockTimersFireOnce(t *testing.T) {
	c := newCluster(t, 2)
	c.produce(t, 10, 0, 10, "timer")
	stop := startInstance(t, c, t.TempDir())
	waitOutputs(t, c, 20, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // a second firing would land here
	stop()
	counts, timers, total := c.outputs(t)
	checkExactlyOnce(t, counts, 10, 10)
	if total != 20 || len(timers) != 10 {
		t.Fatalf("timers fired %v (total outputs %d), want each of 10 keys once", timers, total)
	}
	for k, n := range timers {
		if n != 1 {
			t.Fatalf("timer of %s fired %d times", k, n)
		}
	}
}

// --- Subprocess tests: the processor runs as its own process and is killed.

const childEnv = "USAGESTREAM_RUNTIME_CHILD"

func TestMain(m *testing.M) {
	if brokers := os.Getenv(childEnv); brokers != "" {
		kc := kafkaconf.Config{Brokers: strings.Split(brokers, ","), TopicPrefix: os.Getenv("USAGESTREAM_RUNTIME_PREFIX")}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			ch := make(chan os.Signal, 1)
			signalNotify(ch)
			<-ch
			cancel()
		}()
		cfg := Config{Kafka: kc, DataDir: os.Getenv("USAGESTREAM_RUNTIME_DIR"), WallClockTick: 50 * time.Millisecond,
			SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second, TransactionTimeout: 20 * time.Second}
		if n, err := strconv.Atoi(os.Getenv("USAGESTREAM_RUNTIME_MAXPOLL")); err == nil {
			cfg.MaxPollRecords = n
		}
		cfg.crash = crashAt(os.Getenv("USAGESTREAM_RUNTIME_CRASH"))
		err := Run(ctx, cfg, countingProcessor(kc.TopicPrefix))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startChild(t *testing.T, c *cluster, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(c.kc.Brokers, ","), "USAGESTREAM_RUNTIME_DIR="+dir,
		"USAGESTREAM_RUNTIME_PREFIX="+c.kc.TopicPrefix)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func kill(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

// TestCrashTwentyTimes kills the processor process with SIGKILL at random
// moments while input keeps arriving, restarts it each time, and checks the
// committed output: every expected event exactly once, none missing, none extra.
func TestCrashTwentyTimes(t *testing.T) {
	const keys, total, kills = 100, 40_000, 20
	c := newCluster(t, 4)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	done := make(chan struct{})
	go func() { // input arrives throughout the kills
		defer close(done)
		for i := 0; i < 40; i++ {
			c.produce(t, keys, i*total/40, total/40, "")
			time.Sleep(150 * time.Millisecond) // spread the input over the kills
		}
	}()
	for i := 0; i < kills; i++ {
		cmd := startChild(t, c, dir)
		time.Sleep(time.Duration(150+rng.IntN(350)) * time.Millisecond) // a random point of its work to die at
		kill(cmd)
	}
	<-done
	cmd := startChild(t, c, dir)
	waitOutputs(t, c, total, 2*time.Minute)
	kill(cmd)
	counts, _, n := c.outputs(t)
	checkExactlyOnce(t, counts, keys, total)
	t.Logf("%d SIGKILLs; %d outputs, each exactly once", kills, n)
}

// TestTwoInstancesOneKilled: two processes split the partitions; one is
// killed; the other takes over its partitions; the output stays exactly once.
func TestTwoInstancesOneKilled(t *testing.T) {
	const keys, total = 60, 12_000
	c := newCluster(t, 4)
	a := startChild(t, c, t.TempDir())
	b := startChild(t, c, t.TempDir())
	c.produce(t, keys, 0, total/2, "")
	waitOutputs(t, c, total/4, time.Minute)
	kill(a)
	c.produce(t, keys, total/2, total/2, "")
	waitOutputs(t, c, total, 2*time.Minute)
	kill(b)
	counts, _, _ := c.outputs(t)
	checkExactlyOnce(t, counts, keys, total)
}

// TestEventTimeTimersFireWhenEventTimePasses: a timer an hour after a
// record's event time fires only once a later record (event time) passes it,
// however much wall-clock time goes by.
func TestEventTimeTimersFireWhenEventTimePasses(t *testing.T) {
	c := newCluster(t, 1)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	produceAt := func(key, value string, ts time.Time) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.kc.Brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: c.in, Key: []byte(key), Value: []byte(value), Timestamp: ts}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produceAt("k000", "etimer", t0)
	stop := startInstance(t, c, t.TempDir())
	waitOutputs(t, c, 1, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // wall-clock time passes: nothing fires
	if _, timers, _ := c.outputs(t); len(timers) != 0 {
		t.Fatalf("event-time timer fired before event time passed it: %v", timers)
	}
	produceAt("k001", "", t0.Add(30*time.Minute)) // event time moves, not far enough
	waitOutputs(t, c, 2, 30*time.Second)
	time.Sleep(200 * time.Millisecond) // wall-clock time passes again: still nothing fires
	if _, timers, _ := c.outputs(t); len(timers) != 0 {
		t.Fatalf("fired at event time +30m: %v", timers)
	}
	produceAt("k001", "", t0.Add(2*time.Hour)) // past the timer
	waitOutputs(t, c, 4, 30*time.Second)
	stop()
	_, timers, _ := c.outputs(t)
	if len(timers) != 1 || timers["k000"] != 1 {
		t.Fatalf("timers fired %v, want k000 once", timers)
	}
}

// TestFailedProduceStopsTheInstance: an output that cannot be produced
// aborts the transaction and stops the instance with the reason, instead of
// being taken for a rebalance and processed again forever.
func TestFailedProduceStopsTheInstance(t *testing.T) {
	c := newCluster(t, 1)
	c.produce(t, 1, 0, 1, "huge")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Run(ctx, Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: 50 * time.Millisecond}, countingProcessor(c.kc.TopicPrefix))
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "producing a record of the transaction failed") {
		t.Fatalf("Run: %v (context: %v), want the failed produce", err, ctx.Err())
	}
	if _, _, n := c.outputs(t); n != 0 {
		t.Fatalf("%d outputs committed, want none", n)
	}
}

// TestRejectedRecordStopsTheStageWithTheFix: a record no retry can produce
// (over the size limit) aborts the transaction, is counted as a produce
// error (not a rebalance), and stops the supervised stage for good with a
// message naming the setting to change, instead of a restart loop that
// makes the same record again.
func TestRejectedRecordStopsTheStageWithTheFix(t *testing.T) {
	c := newCluster(t, 1)
	c.produce(t, 1, 0, 1, "huge")
	logs := &testlog.Buffer{}
	m := NewMetrics(nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait, err := Supervise(ctx, Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: 50 * time.Millisecond, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, countingProcessor(c.kc.TopicPrefix),
		SuperviseConfig{MinBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wait() // returns: the stage stopped by itself
	if ctx.Err() != nil {
		t.Fatal("the stage with a rejected record ran until the test's deadline")
	}
	if n := testutil.ToFloat64(m.restarts.WithLabelValues("counter")); n != 0 {
		t.Errorf("restarted %v times, want none", n)
	}
	if n := testutil.ToFloat64(m.aborts.WithLabelValues("counter", abortProduceError)); n != 1 {
		t.Errorf("aborts{reason=produce_error} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.aborts.WithLabelValues("counter", abortRebalance)); n != 0 {
		t.Errorf("aborts{reason=rebalance} = %v, want 0: a failed record is no rebalance", n)
	}
	out := logs.String()
	if !strings.Contains(out, "not restarted") || !strings.Contains(out, "max.message.bytes of "+c.out) {
		t.Errorf("the log does not say the stage stopped and what to raise:\n%s", out)
	}
	if strings.Contains(out, "aborted after a rebalance") {
		t.Errorf("the failed record was logged as a rebalance:\n%s", out)
	}
	if _, _, n := c.outputs(t); n != 0 {
		t.Fatalf("%d outputs committed, want none", n)
	}
}

// produceTransactions writes n records over keys in transactions of per
// records each, as ingest and the stages do: each ends with a commit marker.
func (c *cluster) produceTransactions(t *testing.T, keys, n, per int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kc.Brokers...), kgo.TransactionalID(fmt.Sprintf("test-%d", time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i := 0; i < n; i += per {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for j := i; j < min(n, i+per); j++ {
			recs = append(recs, &kgo.Record{Topic: c.in, Key: []byte(fmt.Sprintf("k%03d", j%keys))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLagAtRestIsZero: on a transactional input every transaction ends with
// a commit marker the consumer never gets; once everything is processed the
// lag of every partition reads 0, not 1, so an alert on lag > 0 clears.
func TestLagAtRestIsZero(t *testing.T) {
	const parts = 3
	c := newCluster(t, parts)
	c.produceTransactions(t, 30, 600, 50)
	m := NewMetrics(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: 50 * time.Millisecond, Metrics: m}, countingProcessor(c.kc.TopicPrefix))
	}()
	waitOutputs(t, c, 600, time.Minute)
	lags := func() []float64 {
		var out []float64
		for p := 0; p < parts; p++ {
			out = append(out, testutil.ToFloat64(m.lag.WithLabelValues("counter", c.in, strconv.Itoa(p))))
		}
		return out
	}
	testwait.For(10*time.Second, func() bool { return !slices.ContainsFunc(lags(), func(l float64) bool { return l != 0 }) })
	got := lags()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for p, l := range got {
		if l != 0 {
			t.Errorf("partition %d: lag %v at rest, want 0 (lags %v)", p, l, got)
		}
	}
}

// TestWallClockTimersWaitForUnreadInput: records already in the topic,
// read one per transaction, as a replay or a restart after a stop reads
// them. Key a's timer (its record's timestamp + 300 ms) is long due by the
// wall clock, but a's next record, which replaces it, is still unread: it
// must not fire in between, only once after the input is read, as it did
// when the records arrived live. Before the fix it also fired while the
// records of b, c and d were applied.
func TestWallClockTimersWaitForUnreadInput(t *testing.T) {
	c := newCluster(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kc.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for i, k := range []string{"a", "b", "c", "d", "e", "a"} {
		v := "x"
		if k == "a" {
			v = "timer"
		}
		// All within a's 300 ms: by their own clock, a's timer is not
		// due before a's next record, so a live run fired it once.
		recs = append(recs, &kgo.Record{Topic: c.in, Key: []byte(k), Value: []byte(v), Timestamp: t0.Add(time.Duration(i) * 10 * time.Millisecond)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: time.Millisecond, MaxPollRecords: 1},
			countingProcessor(c.kc.TopicPrefix))
	}()
	waitOutputs(t, c, 7, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // a second firing would land here
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, timers, total := c.outputs(t)
	if timers["a"] != 1 || total != 7 {
		t.Fatalf("a's timer fired %d times (%d outputs), want once after its second record (7 outputs)", timers["a"], total)
	}
}

// TestCommitIntervalGathersPolls: records that arrive in small bursts, as a
// stage fed by another stage's commits gets them, are committed in fewer
// transactions with a CommitInterval than there are bursts (every burst
// its own transaction without one), and each still counts exactly once.
func TestCommitIntervalGathersPolls(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		fewer    bool
	}{{0, false}, {time.Second, true}} {
		t.Run(tc.interval.String(), func(t *testing.T) {
			c := newCluster(t, 3)
			m := NewMetrics(nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			cfg := Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: time.Hour, CommitInterval: tc.interval, Metrics: m}
			go func() { done <- Run(ctx, cfg, countingProcessor(c.kc.TopicPrefix)) }()
			const bursts, each = 12, 5
			for b := range bursts {
				c.produce(t, 7, b*each, each, "")
				if !tc.fewer {
					waitOutputs(t, c, (b+1)*each, time.Minute)
				}
				time.Sleep(100 * time.Millisecond)
			}
			waitOutputs(t, c, bursts*each, time.Minute)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			counts, _, _ := c.outputs(t)
			checkExactlyOnce(t, counts, 7, bursts*each)
			commits := int(testutil.ToFloat64(m.commits.WithLabelValues("counter")))
			if tc.fewer && commits > bursts/2 {
				t.Fatalf("%d transactions for %d bursts 100 ms apart with a 1 s commit interval", commits, bursts)
			}
			if !tc.fewer && commits < bursts {
				t.Fatalf("%d transactions for %d bursts, each waited for: want one per burst at least", commits, bursts)
			}
		})
	}
}
