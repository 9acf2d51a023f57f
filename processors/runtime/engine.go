package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/topics"
)

// Config configures one processor instance.
type Config struct {
	Kafka kafkaconf.Config
	// Group is the consumer group; instances with the same group share the
	// input partitions. Default: <topic prefix>processor-<name>.
	Group string
	// Changelog is the store's compacted changelog topic; it must have as
	// many partitions as the inputs. Default: <topic prefix>changelog-<name>.v1.
	Changelog string
	// Quarantine is the topic records the stage cannot decode go to, with
	// their origin headers (internal/quarantine). Default:
	// <topic prefix>quarantine-<name>.v1.
	Quarantine string
	// DataDir holds the Pebble store and the instance id of this instance.
	DataDir string
	// MaxPollRecords bounds one transaction. Default 5000.
	MaxPollRecords int
	// CommitInterval is how long a transaction keeps taking input records
	// (polling again while it has fewer than MaxPollRecords) before it
	// commits; 0 commits every poll. A stage fed in small batches by
	// another stage's commits then commits less often, and every commit
	// costs the broker work for each partition it touched (Kafka Streams
	// commits every 100 ms under exactly-once).
	CommitInterval time.Duration
	// TransactionTimeout is how long the broker lets a transaction stay
	// open. It must exceed RebalanceTimeout: ending a transaction may wait
	// for the group to settle, and a broker that times the transaction out
	// meanwhile fences the instance. It also bounds how long a crashed
	// instance whose disk was lost holds back read_committed readers (with
	// its disk, its successor fences it at once). Default 60s.
	TransactionTimeout time.Duration
	// WallClockTick is how often wall-clock timers are checked while idle.
	WallClockTick time.Duration
	// SessionTimeout is how long the group waits for a silent instance
	// before giving its partitions to the others. Default 10s.
	SessionTimeout time.Duration
	// RebalanceTimeout bounds a rebalance; ending a transaction may wait
	// that long for the group to settle. Default 30s.
	RebalanceTimeout time.Duration
	Logger           *slog.Logger
	Metrics          *Metrics
	// Now is the wall clock (tests set it).
	Now func() time.Time

	// crash, when set (tests only), is called at each step of the commit
	// protocol, restore and rebalance with the step's name (the crash*
	// constants); the crash tests kill the process there.
	crash func(point string)
	// store, when set (tests only), changes the Pebble store's settings.
	store storeOptions
}

// The points where crash is called.
const (
	crashProduced   = "produced"    // outputs and changelog produced and flushed, not committed
	crashCommitted  = "committed"   // the Kafka transaction committed, Pebble not written
	crashPersistMid = "persist-mid" // the Pebble batch half built, not committed
	crashRestore    = "restore"     // a partition's restore half done
	crashAssigned   = "assigned"    // a rebalance gave partitions, before their restore
	crashRevoked    = "revoked"     // a rebalance took partitions away
)

func (in *Instance) crashPoint(point string) {
	if in.cfg.crash != nil {
		in.cfg.crash(point)
	}
}

// GroupName is the default consumer group (and transactional id stem) of a
// processor: operators and tools find a stage's progress under it.
func GroupName(topicPrefix, processor string) string { return topicPrefix + "processor-" + processor }

func (c *Config) defaults(name string) {
	if c.Group == "" {
		c.Group = GroupName(c.Kafka.TopicPrefix, name)
	}
	if c.Changelog == "" {
		c.Changelog = ChangelogTopic(c.Kafka.TopicPrefix, name)
	}
	if c.Quarantine == "" {
		c.Quarantine = quarantine.StageTopic(c.Kafka.TopicPrefix, name)
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 5000
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = 60 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.WallClockTick <= 0 {
		c.WallClockTick = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ChangelogTopic is the changelog topic name of a store.
func ChangelogTopic(prefix, name string) string { return prefix + "changelog-" + name + ".v1" }

// instanceID returns this data directory's stable id, creating it once. The
// transactional id derives from it, so a restarted instance fences its
// crashed predecessor (aborting its open transaction) at once.
func instanceID(dir string) (string, error) {
	p := filepath.Join(dir, "instance-id")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(r[:])
	if err := os.WriteFile(p, []byte(id+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	return id, nil
}

// Instance runs one processor.
type Instance struct {
	cfg   Config
	st    Stage
	name  string
	store *Store
	sess  *kgo.GroupTransactSession
	log   *slog.Logger
	m     *Metrics
	// pool keeps fetch buffers for reuse (Processor.CopiesInput); nil: none.
	pool *fetchPool
	// spareOutputs is the last transaction's outputs slice, emptied, for
	// the next one: grown from nothing each time, it was a tenth of the
	// bytes the stages allocated (docs/performance.md).
	spareOutputs []Out

	// declared holds the topics Process may write to (Processor.Outputs);
	// nil: any (see Outputs).
	declared map[string]bool

	mu    sync.Mutex
	owned map[int32]bool
	fatal error
	// cancel ends the live Run and runDone is closed when it has returned
	// (both nil before Run). They are guarded by mu: franz-go's callbacks
	// (setFatal) and Close read them from other goroutines.
	cancel  context.CancelFunc
	runDone chan struct{}
	closed  bool

	// lagged are the lag gauges set from a fetch since the last poll that
	// found nothing (only Run's goroutine uses it).
	lagged map[prometheus.Gauge]bool
	// behind holds the input partitions a fetch left offsets after (how
	// many; see updateBehind); streamMs is the newest record timestamp
	// read per partition. While a partition is behind, its wall-clock
	// timers fire only up to streamMs: a timer that a record still unread
	// may replace is not due yet. A replay, or an instance catching up
	// after a stop, so fires what the live run fired, not every timer
	// that fell due while the input waited (only Run's goroutine uses them).
	behind   map[topicPartition]behindBy
	streamMs map[int32]int64
}

type topicPartition struct {
	topic string
	p     int32
}

type behindBy struct {
	left  int64
	since time.Time
}

// Run runs the processor until ctx ends or a fatal error occurs.
func Run(ctx context.Context, cfg Config, st Stage) error {
	in, err := NewInstance(cfg, st)
	if err != nil {
		return err
	}
	defer in.Close()
	return in.Run(ctx)
}

// NewInstance opens the store; Run starts consuming.
func NewInstance(cfg Config, st Stage) (*Instance, error) {
	cfg.defaults(st.name())
	if cfg.TransactionTimeout <= cfg.RebalanceTimeout {
		return nil, fmt.Errorf("the transaction timeout (%s) must exceed the rebalance timeout (%s): a transaction may wait a whole rebalance before it commits", cfg.TransactionTimeout, cfg.RebalanceTimeout)
	}
	dir := filepath.Join(cfg.DataDir, st.name())
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the state directory %s: %w", dir, err)
	}
	id, err := instanceID(dir)
	if err != nil {
		return nil, err
	}
	store, err := openStore(filepath.Join(dir, "pebble"), cfg.Logger, cfg.store)
	if err != nil {
		return nil, err
	}
	in := &Instance{cfg: cfg, st: st, name: st.name(), store: store, owned: map[int32]bool{}, lagged: map[prometheus.Gauge]bool{},
		behind: map[topicPartition]behindBy{}, streamMs: map[int32]int64{},
		log: cfg.Logger.With("processor", st.name(), "instance", id), m: cfg.Metrics}
	in.declared = declaredOutputs(st)

	// The changelog must exist before the group session joins: the first
	// assignment restores from it at once.
	if err := in.ensureChangelog(context.Background()); err != nil {
		store.Close()
		return nil, err
	}
	// The quarantine topic is an output like any other, but one a stage run
	// by 'process' against an existing cluster must not find missing the
	// first time a bad record arrives (the transaction would fail).
	if err := in.ensureQuarantine(context.Background()); err != nil {
		store.Close()
		return nil, err
	}
	opts, err := cfg.Kafka.Opts()
	if err != nil {
		store.Close()
		return nil, err
	}
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(st.inputs()...),
		// Range first: per topic, it gives each member the same partition
		// numbers, so a member holds partition p of every input (the store's
		// partition p). Cooperative-sticky balances topic-partitions one by
		// one and may give billing p1 to one member and the other input's p1
		// to another: two members then own partition p and each writes it
		// from its own state. Cooperative-sticky stays listed so that a group
		// of members of an older build accepts this one during a rolling
		// upgrade; the group turns to range once every member offers it.
		kgo.Balancers(kgo.RangeBalancer(), kgo.CooperativeStickyBalancer()),
		kgo.TransactionalID("usagestream-"+st.name()+"-"+id),
		// Static membership: a restarted instance takes its old seat in the
		// group at once instead of waiting out its dead predecessor.
		kgo.InstanceID(st.name()+"-"+id),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.TransactionTimeout(cfg.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(partitioner{changelog: cfg.Changelog, keyed: kgo.StickyKeyPartitioner(nil)}),
		kgo.OnPartitionsAssigned(in.assigned),
		kgo.OnPartitionsRevoked(in.dropped),
		kgo.OnPartitionsLost(in.lost),
		// A transaction's records are produced after its poll is processed
		// and flushed at once by the commit (Flush does not wait for the
		// linger), so a long linger delays nothing; it sends each
		// partition's records as one batch. With 2 ms a second batch went
		// out behind the first, and when Kafka 4.1's transactions v2
		// answered the first CONCURRENT_TRANSACTIONS (the last commit's
		// markers still being written) the second drew the retriable
		// OUT_OF_ORDER_SEQUENCE_NUMBER (KAFKA-18202): docs/capacity.md.
		kgo.ProducerLinger(time.Second),
		kgo.WithLogger(cfg.Kafka.ClientLogger(in.log)),
	)
	if st.copiesInput() {
		in.pool = &fetchPool{}
		opts = append(opts, kgo.WithPools(in.pool))
	}
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("configuring the consumer group %s: %w", cfg.Group, err)
	}
	in.sess = sess
	return in, nil
}

// declaredOutputs is the set of topics st may write to (Processor.Outputs).
func declaredOutputs(st Stage) map[string]bool {
	outs := st.outputs()
	set := make(map[string]bool, len(outs))
	for _, o := range outs {
		set[o] = true
	}
	return set
}

// Close stops a live Run and waits for it to return (the transaction in
// flight finishes), then leaves the group and closes the store. Closing the
// client or the store under a live Run would fail its transaction halfway.
func (in *Instance) Close() {
	in.mu.Lock()
	in.closed = true
	cancel, done := in.cancel, in.runDone
	in.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	in.sess.Close()
	// A closed instance owns nothing: a query API still holding it until its
	// successor is attached answers "not owned" instead of reading a closed
	// store.
	in.mu.Lock()
	clear(in.owned)
	in.mu.Unlock()
	in.m.setStoreBytes(in, -1)
	in.store.Close()
}

// Store exposes the local state (the query API reads it).
func (in *Instance) Store() *Store { return in.store }

// Owned lists the partitions this instance owns now.
func (in *Instance) Owned() []int32 {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]int32, 0, len(in.owned))
	for p := range in.owned {
		out = append(out, p)
	}
	return out
}

type partitioner struct {
	changelog string
	keyed     kgo.Partitioner
}

// ForTopic routes changelog records to the partition set on the record (the
// input partition they belong to) and every other record by key.
func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	if t == p.changelog {
		return kgo.ManualPartitioner().ForTopic(t)
	}
	return p.keyed.ForTopic(t)
}

func (in *Instance) setFatal(err error) {
	in.mu.Lock()
	if in.fatal == nil {
		in.fatal = err
	}
	cancel := in.cancel
	in.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// assigned restores each newly assigned partition before any of its input
// is processed. franz-go calls it before fetching those partitions.
func (in *Instance) assigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	// Fence first: a crashed predecessor's open transaction is aborted, so
	// the changelog's stable offset reaches its end. The callback's own
	// client, not in.sess: the group may assign partitions before
	// NewGroupTransactSession has returned.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		in.setFatal(fmt.Errorf("initializing the transactional producer: %w", err))
		return
	}
	in.crashPoint(crashAssigned)
	seen := map[int32]bool{}
	for _, ps := range assigned {
		for _, p := range ps {
			if seen[p] {
				continue
			}
			seen[p] = true
			if err := in.restore(ctx, p); err != nil {
				in.setFatal(err)
				return
			}
			in.mu.Lock()
			in.owned[p] = true
			in.mu.Unlock()
		}
	}
}

func (in *Instance) dropped(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	in.crashPoint(crashRevoked)
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, ps := range lost {
		for _, p := range ps {
			delete(in.owned, p)
		}
	}
}

// lost drops partitions taken away without a handover: the group removed
// this instance (silent longer than the session timeout: a stall, a
// network partition, a SIGSTOP), fenced it, or its coordinator died
// mid-join. An operator must see it: the new owner processes the records
// again from the last commit, and this instance's open transaction can no
// longer commit.
func (in *Instance) lost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	if len(lost) > 0 {
		in.log.Warn("partitions lost: the group took them without a handover (this instance was silent longer than the session timeout, was fenced, or lost its group coordinator); their owner goes on from the last commit and this instance's open transaction is aborted",
			"partitions", lost)
	}
	in.dropped(ctx, cl, lost)
}

func (in *Instance) owns(p int32) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.owned[p]
}

// ensureChangelog creates the store's compacted changelog topic when it is
// missing, with as many partitions as the inputs (restore and the changelog
// partitioner rely on that), and checks an existing one.
func (in *Instance) ensureChangelog(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cl, err := in.cfg.Kafka.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx, append([]string{in.cfg.Changelog}, in.st.inputs()...)...)
	if err != nil {
		return fmt.Errorf("describing the input topics %v: %w", in.st.inputs(), err)
	}
	parts := -1
	for _, t := range in.st.inputs() {
		td, ok := tds[t]
		if !ok || td.Err != nil {
			return fmt.Errorf("input topic %s does not exist: create it first ('usagestream run' creates the project's topics)", t)
		}
		if parts >= 0 && len(td.Partitions) != parts {
			return fmt.Errorf("input topics %v must be co-partitioned (same partition count)", in.st.inputs())
		}
		parts = len(td.Partitions)
	}
	if td, ok := tds[in.cfg.Changelog]; ok && td.Err == nil {
		if len(td.Partitions) != parts {
			return fmt.Errorf("changelog %s has %d partitions, the inputs %d: they must match", in.cfg.Changelog, len(td.Partitions), parts)
		}
		return nil
	}
	rf := int16(-1) // the broker's default replication
	resp, err := adm.CreateTopic(ctx, int32(parts), rf, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, in.cfg.Changelog)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating the changelog topic %s: %w", in.cfg.Changelog, err)
	}
	return topics.WaitVisible(ctx, adm, in.cfg.Changelog)
}

// ensureQuarantine creates the stage's quarantine topic when it is missing,
// with the inputs' partition count (any count works: records go by key) and
// the quarantine retention (topics.QuarantineSpec).
func (in *Instance) ensureQuarantine(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cl, err := in.cfg.Kafka.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	return topics.EnsureQuarantine(ctx, kadm.NewClient(cl), in.cfg.Quarantine, in.name, in.st.inputs()[0])
}

// Run consumes until ctx ends or Close is called. An instance runs once.
func (in *Instance) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A CPU profile of a process running several stages tells them apart:
	// go tool pprof -tagfocus stage=servicepoint (docs/performance.md).
	defer pprof.SetGoroutineLabels(ctx)
	ctx = pprof.WithLabels(ctx, pprof.Labels("stage", in.name))
	pprof.SetGoroutineLabels(ctx)
	in.mu.Lock()
	switch {
	case in.closed:
		in.mu.Unlock()
		return errors.New("the instance is closed: open a new one")
	case in.runDone != nil:
		in.mu.Unlock()
		return errors.New("the instance runs already: an instance runs once")
	}
	done := make(chan struct{})
	in.cancel, in.runDone = cancel, done
	in.mu.Unlock()
	defer close(done)
	in.log.Info("processor started", "group", in.cfg.Group, "inputs", in.st.inputs(), "changelog", in.cfg.Changelog)
	lastTick := time.Time{}
	for {
		pctx, pcancel := context.WithTimeout(ctx, in.cfg.WallClockTick)
		fs := in.sess.PollRecords(pctx, in.cfg.MaxPollRecords)
		pcancel()
		in.mu.Lock()
		fatal := in.fatal
		in.mu.Unlock()
		if ctx.Err() != nil && (fatal == nil || errors.Is(fatal, context.Canceled)) {
			// A restore interrupted by the shutdown is no failure.
			in.log.Info("processor stopping")
			return nil
		}
		if fatal != nil {
			return fatal
		}
		if fs.IsClientClosed() {
			return errors.New("the Kafka client closed")
		}
		in.logFetchErrors(fs)
		if fs.NumRecords() == 0 && firstFetchError(fs) == nil {
			in.caughtUp()
		}
		now := in.cfg.Now()
		in.updateBehind(fs, now)
		wallDue := now.Sub(lastTick) >= in.cfg.WallClockTick
		if fs.NumRecords() == 0 && !wallDue {
			continue
		}
		if wallDue {
			lastTick = now
		}
		batch := in.gather(ctx, fs)
		// The transaction in flight finishes even when a stop was asked
		// for meanwhile: a graceful stop commits what it processed.
		// Ending a transaction may wait out a rebalance (franz-go waits for
		// the group to settle before committing offsets), hence the bound.
		tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.RebalanceTimeout+2*in.cfg.TransactionTimeout)
		err := in.transaction(tctx, batch, wallDue, now)
		tcancel()
		if err != nil {
			// Not recycled: a record the failed transaction produced (a
			// quarantined one holds the input's bytes) may still be in
			// flight; the garbage collector takes them.
			return err
		}
		if in.pool != nil {
			recycle(batch)
		}
	}
}

// logFetchErrors logs what a poll reports and goes on: franz-go retries
// what can be retried and reports it there too, and a fatal client state
// surfaces as a closed client or a failed transaction.
func (in *Instance) logFetchErrors(fs kgo.Fetches) {
	fs.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			in.log.Warn("fetch error; retrying", "topic", t, "partition", p, "err", err)
		}
	})
}

// gather is the input of one transaction: the poll fs and, with a
// CommitInterval, the polls after it until the interval since fs has passed
// or MaxPollRecords have come. A stop asked meanwhile ends it early: the
// transaction commits what it has.
func (in *Instance) gather(ctx context.Context, fs kgo.Fetches) []kgo.Fetches {
	batch := []kgo.Fetches{fs}
	n := fs.NumRecords()
	if in.cfg.CommitInterval <= 0 || n == 0 {
		return batch
	}
	until := time.Now().Add(in.cfg.CommitInterval)
	for n < in.cfg.MaxPollRecords && ctx.Err() == nil {
		left := time.Until(until)
		if left <= 0 {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, left)
		more := in.sess.PollRecords(pctx, in.cfg.MaxPollRecords-n)
		cancel()
		if more.IsClientClosed() || more.NumRecords() == 0 {
			break // the next poll of Run says what a closed client means
		}
		in.logFetchErrors(more)
		in.updateBehind(more, in.cfg.Now())
		batch = append(batch, more)
		n += more.NumRecords()
	}
	return batch
}

// firstFetchError is the first error of fs that is not the poll's own
// deadline.
func firstFetchError(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(_ string, _ int32, err error) {
		if first == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			first = err
		}
	})
	return first
}

// txn is one transaction of the commit protocol: the write cache of the
// partitions it touched, the records it produces, and what producing them
// left (the first error, the changelog offsets reached).
type txn struct {
	parts map[int32]*partCache
	// outputs and quarantined are produced by the produce step, in the
	// order apply made them. Outputs stay Out values until then: most of a
	// stage's outputs may be coalesced away (coalesceOutputs), and a Kafka
	// record per output made before that was garbage the collector paid
	// for (docs/performance.md).
	outputs     []Out
	quarantined []*kgo.Record

	mu            sync.Mutex
	prodErr       error
	prodErrTopic  string          // the topic of the record prodErr is about
	changelogNext map[int32]int64 // next changelog offset per partition after this transaction
}

// entry is a key's state in the write cache.
type entry struct {
	state   any    // the decoded state; nil when deleted or never stored
	encoded []byte // the state as sent to the changelog (produce sets it; nil: deleted)
	dirty   bool   // changed in this transaction
	deleted bool
}

// timerID names one timer: a key has at most one of each kind.
type timerID struct {
	kind TimerKind
	key  string
}

// partCache is the write cache of one partition.
type partCache struct {
	states   map[string]*entry
	timers   map[timerID]int64 // fire time (Unix ms) of each timer set, cancelled (0) or fired in this transaction
	wm       int64             // event time; -1 until read from the store
	wmDirty  bool
	inOffset map[string]int64 // next input offset per topic
}

func newTxn() *txn {
	return &txn{parts: map[int32]*partCache{}, changelogNext: map[int32]int64{}}
}

func (t *txn) part(p int32) *partCache {
	pc := t.parts[p]
	if pc == nil {
		pc = &partCache{states: map[string]*entry{}, timers: map[timerID]int64{}, inOffset: map[string]int64{}, wm: -1}
		t.parts[p] = pc
	}
	return pc
}

// changelogPromise records where each changelog record landed: the offsets
// the persist step writes with the states.
func (t *txn) changelogPromise(r *kgo.Record, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.fail(r.Topic, err)
		return
	}
	if r.Offset+1 > t.changelogNext[r.Partition] {
		t.changelogNext[r.Partition] = r.Offset + 1
	}
}

func (t *txn) outputPromise(r *kgo.Record, err error) {
	if err != nil {
		t.mu.Lock()
		t.fail(r.Topic, err)
		t.mu.Unlock()
	}
}

// fail keeps the first produce error, or the first permanent one: once a
// record fails, franz-go fails the rest of the transaction's records too,
// with errors that say less. t.mu is held.
func (t *txn) fail(topic string, err error) {
	if t.prodErr == nil || (rejectionHint(t.prodErr, "") == "" && rejectionHint(err, "") != "") {
		t.prodErr, t.prodErrTopic = err, topic
	}
}

func (t *txn) produceErr() (topic string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.prodErrTopic, t.prodErr
}

// ErrRecordRejected is what a stage fails with when the broker (or the
// client, for its own limits) refuses a record of the transaction for good:
// a record over the size limits, a topic the client may not write. A
// restart would produce the same record again, so Supervise stops the
// stage instead, and the error says what to change.
var ErrRecordRejected = errors.New("a record of the transaction was rejected for good")

// rejectionHint says what to fix when err is a produce error no retry
// mends, and "" when a retry (a restart from the last commit) may succeed.
func rejectionHint(err error, topic string) string {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Sprintf("a record for %s is larger than the producer's batch limit (1 MB) or the topic's max.message.bytes allow: raise max.message.bytes of %s (and the broker's message.max.bytes), or find why the stage makes such a record", topic, topic)
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Sprintf("the client's principal may not write %s: grant it WRITE and DESCRIBE on the topic", topic)
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		return "the client's principal may not run transactions: grant it WRITE and DESCRIBE on the transactional ids usagestream-* (and IDEMPOTENT_WRITE on the cluster for old brokers)"
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.InvalidTopicException), errors.Is(err, kerr.PolicyViolation),
		errors.Is(err, kerr.UnsupportedForMessageFormat), errors.Is(err, kerr.UnsupportedCompressionType):
		return fmt.Sprintf("the broker refuses records for %s as they are; check the topic's configuration against the error", topic)
	}
	return ""
}

// permanent reports whether a stage's error would happen again after a
// restart, so restarting it is pointless.
func permanent(err error) bool {
	return errors.Is(err, ErrUndeclaredOutput) || errors.Is(err, ErrRecordRejected)
}

// Abort reasons, the reason label of
// usagestream_processor_transactions_aborted_total: a rebalance is routine
// (the records are processed again by their new owner); the others stop
// the instance.
const (
	abortRebalance    = "rebalance"
	abortProduceError = "produce_error"
	abortStageError   = "stage_error"
	abortDecode       = "decode_unavailable"
)

var abortReasons = []string{abortRebalance, abortProduceError, abortStageError, abortDecode}

// ErrDecodeUnavailable is what an instance stops with when
// Processor.Decode fails for a reason that is not the record's (the schema
// registry cannot be reached): the transaction is aborted, and Supervise
// starts the stage again after a back-off. The record is not at fault and
// is not quarantined.
var ErrDecodeUnavailable = errors.New("an input record could not be decoded for now")

// transaction runs the commit protocol (see the package doc) once, over one
// poll of input records (or the polls of a CommitInterval) and the timers due: apply, produce, commit,
// persist. An error stops the instance: one before the commit left nothing
// committed, and one after it leaves a store the changelog repairs on the
// next start.
func (in *Instance) transaction(ctx context.Context, batch []kgo.Fetches, fireWall bool, now time.Time) error {
	start := time.Now()
	if err := in.sess.Begin(); err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	t := newTxn()
	t.outputs = in.spareOutputs[:0]
	defer in.keepOutputs(t)
	if err := in.apply(ctx, t, batch, fireWall, now); err != nil {
		reason := abortStageError
		if errors.Is(err, ErrDecodeUnavailable) {
			reason = abortDecode
		}
		in.abort(ctx, reason)
		return err
	}
	if err := in.produce(ctx, t); err != nil {
		in.abort(ctx, abortStageError)
		return err
	}
	processed := time.Since(start)
	committed, err := in.commit(ctx, t)
	if err != nil || !committed {
		return err
	}
	in.crashPoint(crashCommitted)
	if err := in.persist(t); err != nil {
		return err
	}
	in.m.commits.WithLabelValues(in.name).Inc()
	in.m.processSeconds.WithLabelValues(in.name).Observe(processed.Seconds())
	in.m.commitSeconds.WithLabelValues(in.name).Observe((time.Since(start) - processed).Seconds())
	in.m.setStoreBytes(in, int64(in.store.DiskUsage()))
	return nil
}

// maxSpareOutputs bounds the outputs slice kept between transactions
// (88 bytes an output): a rare huge transaction does not pin its slice.
const maxSpareOutputs = 1 << 16

// keepOutputs keeps t's outputs slice for the next transaction, emptied so
// that it holds on to no key, value or encoder. By then the outputs are
// produced (the records hold their keys and values) or dropped.
func (in *Instance) keepOutputs(t *txn) {
	if cap(t.outputs) > maxSpareOutputs {
		in.spareOutputs = nil
		return
	}
	clear(t.outputs)
	in.spareOutputs = t.outputs[:0]
}

// abort ends the open transaction without committing it, counted under
// reason. Its error is not returned: the caller returns the error that made
// it abort, and an abort that fails leaves a transaction the broker times
// out or the next instance fences.
func (in *Instance) abort(ctx context.Context, reason string) {
	in.m.aborts.WithLabelValues(in.name, reason).Inc()
	_, _ = in.sess.End(ctx, kgo.TryAbort)
}

// apply is step 1 of the protocol: the processor runs over every polled
// record, then over the timers due, against the write cache of decoded
// states (read through to Pebble). Outputs and quarantined records are
// collected, not yet produced; nothing leaves the process.
func (in *Instance) apply(ctx context.Context, t *txn, batch []kgo.Fetches, fireWall bool, now time.Time) error {
	var err error
	for _, fs := range batch { // in poll order: each partition's records stay in order
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if err != nil || len(fp.Records) == 0 {
				return
			}
			err = in.applyRecords(ctx, t, fp)
		})
		if err != nil {
			return err
		}
	}
	if err := in.fireTimers(t, fireWall, now); err != nil {
		return err
	}
	if n := coalesceOutputs(t); n > 0 {
		in.m.coalesced.WithLabelValues(in.name).Add(float64(n))
	}
	return nil
}

// coalesceOutputs shortens each subject's series of outputs in the
// transaction to its net change (see Coalesce) and returns how many
// outputs it dropped. The others keep their order.
func coalesceOutputs(t *txn) int {
	type subject struct{ topic, key string }
	type series struct {
		before string
		last   int
	}
	var bySubject map[subject]*series
	for i, o := range t.outputs {
		c := o.Coalesce
		if c == nil {
			continue
		}
		if bySubject == nil {
			bySubject = map[subject]*series{}
		}
		k := subject{o.Topic, c.Key}
		if s := bySubject[k]; s != nil {
			s.last = i
		} else {
			bySubject[k] = &series{before: c.Before, last: i}
		}
	}
	if bySubject == nil {
		return 0
	}
	kept := t.outputs[:0]
	for i, r := range t.outputs {
		if c := r.Coalesce; c != nil {
			s := bySubject[subject{r.Topic, c.Key}]
			if s.last != i || c.After == s.before {
				continue
			}
		}
		kept = append(kept, r)
	}
	dropped := len(t.outputs) - len(kept)
	clear(t.outputs[len(kept):])
	t.outputs = kept
	return dropped
}

// applyRecords applies the records of one fetched partition in offset
// order, each decoded first (Processor.Decode) with the transaction's ctx.
func (in *Instance) applyRecords(ctx context.Context, t *txn, fp kgo.FetchTopicPartition) error {
	p := fp.Partition
	pc := t.part(p)
	// Counted once per fetched partition: a labelled lookup per record cost
	// 1% of the stages' CPU (docs/performance.md).
	in.m.recordsIn.WithLabelValues(in.name, fp.Topic).Add(float64(len(fp.Records)))
	for _, r := range fp.Records {
		if quarantine.SkipFor(in.name, r.Headers) {
			// A re-feed addressed to another consumer of this topic: this
			// stage processed the original already.
			in.m.skipped.WithLabelValues(in.name, r.Topic).Inc()
			pc.inOffset[r.Topic] = r.Offset + 1
			continue
		}
		rec := Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers}
		decoded, _, err := in.st.decode(ctx, rec)
		switch {
		case err != nil && quarantine.IsPoison(err):
			in.quarantine(t, r, err)
			pc.inOffset[r.Topic] = r.Offset + 1
			continue
		case err != nil:
			// Never the key or the value: they may hold personal data.
			in.log.Warn("an input record could not be decoded for now: the schema registry is unreachable or failing, not the record; the transaction is aborted and the stage retries after a back-off",
				"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			return fmt.Errorf("%w: stage %s decoding %s[%d]@%d: %w; check that the schema registry is up and reachable (the record is not at fault; nothing was committed, the stage retries)",
				ErrDecodeUnavailable, in.name, r.Topic, r.Partition, r.Offset, err)
		}
		if err := in.step(t, pc, p, r.Key, Input{Record: rec, Decoded: decoded}); err != nil {
			var pe poisonRecord
			if !errors.As(err, &pe) {
				return err
			}
			in.quarantine(t, r, pe.err)
		}
		pc.inOffset[r.Topic] = r.Offset + 1
	}
	last := fp.Records[len(fp.Records)-1]
	for _, r := range fp.Records {
		if ms := r.Timestamp.UnixMilli(); ms > in.streamMs[p] {
			in.streamMs[p] = ms
		}
	}
	lag := in.m.lag.WithLabelValues(in.name, fp.Topic, strconv.Itoa(int(p)))
	lag.Set(float64(fp.HighWatermark - last.Offset - 1))
	in.lagged[lag] = true
	return nil
}

// caughtUp sets the lag of every partition read so far to 0 after a poll
// that found nothing to read. The high watermark counts offsets a
// read_committed consumer never gets: the commit marker ending each
// transaction, aborted records. After the last record the lag so reads 1
// or more; a poll that brings nothing, a whole tick after that fetch, shows
// those offsets hold no record, so the partition is caught up.
func (in *Instance) caughtUp() {
	for g := range in.lagged {
		g.Set(0)
	}
	clear(in.lagged)
}

// updateBehind records, per input partition of a poll, whether its fetch
// left offsets after the last record read, and when. The high watermark
// also counts transaction markers, which a read_committed consumer never
// gets, and aborted records it skips: offsets left do not prove records
// left. So a partition counts as behind while its fetches leave offsets
// and it brought records within behindPatience; after that, an offset left
// is a marker (or an aborted record) and the partition has caught up. A
// wall-clock timer of a caught-up transactional input so fires at most
// behindPatience late; one of a partition still being read never early.
func (in *Instance) updateBehind(fs kgo.Fetches, now time.Time) {
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 || fp.Err != nil {
			return
		}
		tp := topicPartition{fp.Topic, fp.Partition}
		if left := fp.HighWatermark - fp.Records[len(fp.Records)-1].Offset - 1; left > 0 {
			in.behind[tp] = behindBy{left: left, since: now}
		} else {
			delete(in.behind, tp)
		}
	})
	for tp, b := range in.behind {
		if now.Sub(b.since) > in.behindPatience() {
			delete(in.behind, tp)
		}
	}
}

// behindPatience is how long a partition whose fetch left offsets counts
// as behind while polls bring it nothing.
func (in *Instance) behindPatience() time.Duration {
	return max(5*time.Second, 5*in.cfg.WallClockTick)
}

// wallClockAt is the time up to which partition p's wall-clock timers are
// due: now, or while p has unread input, the newest record timestamp read
// from it (see Instance.behind).
func (in *Instance) wallClockAt(p int32, now time.Time) int64 {
	for tp := range in.behind {
		if tp.p == p {
			return min(now.UnixMilli(), in.streamMs[p])
		}
	}
	return now.UnixMilli()
}

// produce is step 2: into the open transaction go the outputs, the
// quarantined records, and every state, timer and event time the
// transaction changed, to the changelog partition of the input partition it
// belongs to.
func (in *Instance) produce(ctx context.Context, t *txn) error {
	var (
		outTopic string
		outCount prometheus.Counter
	)
	// The values made now share one buffer. When it grows, the values
	// already made keep the array they were appended to, and stay valid.
	var buf []byte
	for i := range t.outputs {
		o := &t.outputs[i]
		v := o.Value
		if o.Encode != nil {
			if buf == nil {
				buf = make([]byte, 0, encodedGuess*encodedLeft(t.outputs[i:]))
			}
			start := len(buf)
			buf = o.Encode.AppendValue(buf)
			v = buf[start:len(buf):len(buf)]
		}
		r := &kgo.Record{Topic: o.Topic, Key: o.Key, Value: v}
		in.sess.Produce(ctx, r, t.outputPromise)
		if r.Topic != outTopic || outCount == nil {
			outTopic, outCount = r.Topic, in.m.recordsOut.WithLabelValues(in.name, r.Topic)
		}
		outCount.Inc()
	}
	for _, r := range t.quarantined {
		in.sess.Produce(ctx, r, t.outputPromise)
	}
	for p, pc := range t.parts {
		recs, err := changelogRecords(in.cfg.Changelog, p, pc, in.st.marshal)
		if err != nil {
			return err
		}
		for _, r := range recs {
			in.sess.Produce(ctx, r, t.changelogPromise)
		}
	}
	return nil
}

// encodedGuess is the bytes per value the buffer of a transaction's
// encoded outputs starts with: a membership takes 150 to 250.
const encodedGuess = 192

// encodedLeft counts the outputs encoded at produce time (Out.Encode).
func encodedLeft(outs []Out) int {
	n := 0
	for i := range outs {
		if outs[i].Encode != nil {
			n++
		}
	}
	return n
}

// commit is step 3: every record produced is flushed and checked, then the
// transaction commits together with the consumed input offsets (franz-go's
// GroupTransactSession). A record that failed aborts it, with an error; a
// rebalance since it began aborts it without one (committed is false): the
// cache is dropped and the records are read again by whoever owns them now.
func (in *Instance) commit(ctx context.Context, t *txn) (committed bool, err error) {
	if err := in.sess.Client().Flush(ctx); err != nil {
		return false, fmt.Errorf("flushing the transaction's records: %w", err)
	}
	if topic, err := t.produceErr(); err != nil {
		in.abort(ctx, abortProduceError)
		if hint := rejectionHint(err, topic); hint != "" {
			return false, fmt.Errorf("%w: producing a record of the transaction failed, so it was aborted (nothing committed): %w; %s. The stage is not restarted: it would make the same record again", ErrRecordRejected, err, hint)
		}
		return false, fmt.Errorf("producing a record of the transaction failed, so it was aborted (nothing committed; a restart goes on from the last commit): %w", err)
	}
	in.crashPoint(crashProduced)
	committed, err = in.sess.End(ctx, kgo.TryCommit)
	if err != nil {
		return false, fmt.Errorf("ending the transaction: %w", err)
	}
	if !committed {
		// Every record was produced (checked above), so only a rebalance
		// makes franz-go abort here.
		in.m.aborts.WithLabelValues(in.name, abortRebalance).Inc()
		in.log.Info("transaction aborted after a rebalance; its records will be processed again by the partitions' owner", "reason", abortRebalance)
	}
	return committed, nil
}

// persist is step 4, after the commit: the same changes go to Pebble in one
// batch, each partition's with the changelog offset and the input offsets
// they reflect. A crash before it is repaired from the changelog on start.
func (in *Instance) persist(t *txn) error {
	ws := make([]partitionWrite, 0, len(t.parts))
	for p, pc := range t.parts {
		w := partitionWrite{p: p, eventTime: -1, changelogNext: t.changelogNext[p], inputs: pc.inOffset}
		for k, e := range pc.states {
			if e.dirty {
				w.states = append(w.states, stateWrite{key: []byte(k), value: e.encoded})
			}
		}
		for id, at := range pc.timers {
			w.timers = append(w.timers, timerWrite{kind: id.kind, key: []byte(id.key), atMs: at})
		}
		if pc.wmDirty {
			w.eventTime = pc.wm
		}
		ws = append(ws, w)
	}
	return in.store.writePartitionsThen(ws, func(i int) {
		if i == len(ws)/2 {
			in.crashPoint(crashPersistMid)
		}
	})
}

// step processes one input for key in partition p against the cache.
func (in *Instance) step(t *txn, pc *partCache, p int32, key []byte, input Input) error {
	e, err := in.load(pc, p, key)
	if err != nil {
		return err
	}
	state := e.state
	if e.deleted || state == nil {
		state = in.st.newState()
	}
	res, err := in.st.process(state, input)
	where := func() string {
		if input.Timer != nil {
			return fmt.Sprintf("a %c timer of key %q", input.Timer.Kind, input.Timer.Key)
		}
		return fmt.Sprintf("%s[%d]@%d", input.Record.Topic, p, input.Record.Offset)
	}
	if err != nil && input.Timer == nil && quarantine.IsPoison(err) {
		// Nothing of this step is applied: the processor returns a poison
		// error before it changes the state (see Processor.Process).
		return poisonRecord{err}
	}
	if err != nil {
		return fmt.Errorf("processor %s failed on %s: %w; fix the input or the processor, then restart (nothing was committed)", in.name, where(), err)
	}
	for _, o := range res.outs {
		if !in.declared[o.Topic] {
			return fmt.Errorf("%w: stage %s wrote to topic %s (on %s), which is not among its declared outputs %q; the topology must declare %s as an output of %s (nothing was committed)",
				ErrUndeclaredOutput, in.name, o.Topic, where(), in.st.outputs(), o.Topic, in.name)
		}
	}
	switch {
	case res.del:
		e.state, e.deleted, e.dirty = nil, true, true
	case res.write:
		e.state, e.deleted, e.dirty = res.state, false, true
	}
	t.outputs = append(t.outputs, res.outs...)
	for _, tm := range res.timers {
		id := timerID{tm.Kind, string(tm.Key)}
		if tm.At.IsZero() {
			pc.timers[id] = 0
		} else {
			pc.timers[id] = tm.At.UnixMilli()
		}
	}
	et := res.eventTime
	if et.IsZero() && input.Timer == nil {
		et = input.Record.Timestamp
	}
	if ms := et.UnixMilli(); !et.IsZero() && ms > pc.wm {
		if pc.wm < 0 {
			stored, err := in.store.Watermark(p)
			if err != nil {
				return err
			}
			pc.wm = stored
		}
		if ms > pc.wm {
			pc.wm, pc.wmDirty = ms, true
		}
	}
	return nil
}

// ErrUndeclaredOutput is what a stage fails with when Process writes to a
// topic its Processor.Outputs does not list. It is a bug of the stage or of
// the topology, not of the input, so no restart mends it: Supervise stops
// the stage instead of restarting it.
var ErrUndeclaredOutput = errors.New("output to an undeclared topic")

// poisonRecord is what step returns for an input record the processor
// found poison: the caller quarantines it instead of failing.
type poisonRecord struct{ err error }

func (p poisonRecord) Error() string { return p.err.Error() }

// quarantine adds r to the records the transaction writes to the stage's
// quarantine topic, so it is committed together with r's input offset:
// exactly once, whatever crashes or rebalances happen.
func (in *Instance) quarantine(t *txn, r *kgo.Record, cause error) {
	src := quarantine.Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, SchemaID: quarantine.SchemaID(r.Value)}
	t.quarantined = append(t.quarantined, quarantine.Record(in.cfg.Quarantine, r, src, in.name, cause))
	in.m.quarantined.WithLabelValues(in.name, r.Topic).Inc()
	// Never the key or the value: they may hold personal data.
	in.log.Warn("record quarantined: it cannot be processed; the stage goes on without it (re-feed it with 'usagestream replay --quarantine "+in.name+"' once fixed)",
		"stage", in.name, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
		"schema_id", src.SchemaID, "quarantine_topic", in.cfg.Quarantine, "err", cause)
}

// load returns key's cache entry, reading it from Pebble the first time.
func (in *Instance) load(pc *partCache, p int32, key []byte) (*entry, error) {
	if e, ok := pc.states[string(key)]; ok {
		return e, nil
	}
	e := &entry{}
	b, ok, err := in.store.Get(p, key)
	if err != nil {
		return nil, err
	}
	if ok {
		v, err := in.st.unmarshal(b)
		if err != nil {
			return nil, fmt.Errorf("decoding the stored state of key %q in partition %d: %w", key, p, err)
		}
		e.state = v
	} else {
		e.deleted = true
	}
	pc.states[string(key)] = e
	return e, nil
}

// fireTimers fires due timers of the owned partitions in the transaction:
// event-time timers up to each partition's event time, and wall-clock
// timers up to now when fireWall.
func (in *Instance) fireTimers(t *txn, fireWall bool, now time.Time) error {
	for _, p := range in.Owned() {
		pc := t.part(p)
		wm := pc.wm
		if wm < 0 {
			stored, err := in.store.Watermark(p)
			if err != nil {
				return err
			}
			wm = stored
		}
		kinds := []struct {
			kind TimerKind
			at   int64
		}{{EventTime, wm}}
		if fireWall {
			kinds = append(kinds, struct {
				kind TimerKind
				at   int64
			}{WallClock, in.wallClockAt(p, now)})
		}
		for _, k := range kinds {
			if k.at <= 0 {
				continue
			}
			due, err := in.store.dueTimers(p, k.kind, k.at, 10_000)
			if err != nil {
				return err
			}
			for _, tm := range due {
				id := timerID{tm.Kind, string(tm.Key)}
				if at, changed := pc.timers[id]; changed && at != tm.At.UnixMilli() {
					continue // replaced or cancelled in this transaction
				}
				pc.timers[id] = 0 // fired: gone unless the processor sets it again
				rec := Record{Topic: in.cfg.Changelog, Partition: p}
				tmc := tm
				if err := in.step(t, pc, p, tm.Key, Input{Record: rec, Timer: &tmc}); err != nil {
					return err
				}
				in.m.timersFired.WithLabelValues(in.name, string(rune(tm.Kind))).Inc()
			}
		}
	}
	return nil
}

// restore catches partition p of the store up from the changelog.
func (in *Instance) restore(ctx context.Context, p int32) error {
	from, err := in.store.ChangelogOffset(p)
	if err != nil {
		return err
	}
	started := time.Now()
	cl, err := in.cfg.Kafka.NewClient(ctx,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{in.cfg.Changelog: {p: kgo.NewOffset().At(from)}}),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	end, err := stableEnd(ctx, cl, in.cfg.Changelog, p, 3*in.cfg.TransactionTimeout)
	if err != nil {
		return err
	}
	gauge := in.m.restoreRemaining.WithLabelValues(in.name, strconv.Itoa(int(p)))
	if end <= from {
		gauge.Set(0)
		return nil
	}
	// One offset past the store is, on every start after a clean stop,
	// the marker of the last transaction: worth no line at info (an
	// operator would read dozens of them on each start).
	level := slog.LevelInfo
	if end-from <= 1 {
		level = slog.LevelDebug
	}
	in.log.Log(ctx, level, "restoring partition from the changelog", "partition", p, "from", from, "to", end)
	applied, err := in.restoreTo(ctx, cl, p, from, end, gauge)
	if err != nil {
		return err
	}
	in.m.restored.WithLabelValues(in.name).Add(float64(applied))
	in.log.Log(ctx, level, "partition restored", "partition", p, "records", applied, "seconds", time.Since(started).Seconds())
	return nil
}

// restoreTo applies the changelog records cl reads for partition p, from
// offset from, until its read position reaches end; it returns how many
// state records it applied.
//
// The position is the offset after the last record read, control records
// included: a read_committed client drops aborted records but hands over
// their abort marker (kgo.KeepControlRecords), and that marker can sit at
// end itself (a transaction aborted while end was taken), so a loop that
// ignored records at or past end never reached it and waited forever.
// Every record read is applied, those past end too: the client returns only
// decided records, and a position moved past a committed record that was
// not applied would lose it.
func (in *Instance) restoreTo(ctx context.Context, cl *kgo.Client, p int32, from, end int64, gauge prometheus.Gauge) (int, error) {
	next := from
	applied := 0
	// One slice of state writes serves every poll: a write holds the
	// fetched keys and values only until it is stored, and growing a new
	// slice per poll cost a restore a seventh of its CPU.
	var states []stateWrite
	for next < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return applied, ctx.Err()
		}
		if err := fs.Err0(); err != nil {
			return applied, fmt.Errorf("reading changelog %s[%d]: %w", in.cfg.Changelog, p, err)
		}
		w := partitionWrite{p: p, eventTime: -1, states: slices.Grow(states[:0], fs.NumRecords())}
		var aerr error
		fs.EachRecord(func(r *kgo.Record) {
			if aerr != nil || r.Offset < next {
				return
			}
			if !r.Attrs.IsControl() {
				aerr = w.addChangelog(r.Key, r.Value)
				applied++
			}
			next = r.Offset + 1
		})
		if aerr != nil {
			return applied, fmt.Errorf("applying changelog %s[%d]: %w", in.cfg.Changelog, p, aerr)
		}
		w.changelogNext = next
		if err := in.store.writePartitions([]partitionWrite{w}); err != nil {
			return applied, err
		}
		states = w.states
		in.crashPoint(crashRestore)
		gauge.Set(float64(max(0, end-next)))
	}
	return applied, nil
}

// stableEnd returns the end offset of topic[p] once every transaction open
// on it when called has ended, so a restore sees all committed records.
func stableEnd(ctx context.Context, cl *kgo.Client, topic string, p int32, maxWait time.Duration) (int64, error) {
	hwm, err := listOffset(ctx, cl, topic, p, 0)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(maxWait)
	for {
		lso, err := listOffset(ctx, cl, topic, p, 1)
		if err != nil {
			return 0, err
		}
		if lso >= hwm {
			return hwm, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("a transaction on %s[%d] stays open past %s: is another instance stuck? ", topic, p, maxWait)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// listOffset is topic[p]'s high watermark (isolation 0) or last stable
// offset (isolation 1).
func listOffset(ctx context.Context, cl *kgo.Client, topic string, p int32, isolation int) (int64, error) {
	adm := kadm.NewClient(cl)
	var (
		l   kadm.ListedOffsets
		err error
	)
	if isolation == 0 {
		l, err = adm.ListEndOffsets(ctx, topic)
	} else {
		l, err = adm.ListCommittedOffsets(ctx, topic)
	}
	if err != nil {
		return 0, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	o, ok := l.Lookup(topic, p)
	if !ok {
		return 0, fmt.Errorf("topic %s has no partition %d: it must have as many partitions as the processor's inputs", topic, p)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("listing offsets of %s[%d]: %w", topic, p, o.Err)
	}
	return o.Offset, nil
}
