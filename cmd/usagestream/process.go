package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usagestream/usagestream/internal/httpserve"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/query"
	"github.com/usagestream/usagestream/processors/replay"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/producers/interval"
)

// processFlags are shared by process and run.
type processFlags struct {
	StateDir       string        `name:"state-dir" env:"USAGESTREAM_STATE_DIR" help:"Local state (Pebble) of the processors, rebuilt from the changelog topics when lost (default: <data-dir>/state for run, data/state for process)."`
	Policy         string        `name:"policy" env:"USAGESTREAM_POLICY" type:"existingfile" help:"Eligibility policy (YAML); default: the built-in default policy (processors/rules/default-policy.yaml)."`
	SessionTimeout time.Duration `name:"session-timeout" env:"USAGESTREAM_SESSION_TIMEOUT" default:"10s" help:"How long the group waits for a silent instance before others take its partitions."`
	// The interval stage holds records on intervals.v1 to the read
	// contract with the units the ways in allow (docs/intervals.md).
	Units          []string      `name:"units" env:"USAGESTREAM_UNITS" default:"KWH,WH,MWH,KVARH,THERM,CCF,HCF,CF,M3,GAL" help:"Allowed units of interval reads: the interval stage quarantines a record on intervals.v1 with others."`
	Instances      int           `name:"instances" env:"USAGESTREAM_INSTANCES" default:"1" help:"Instances of each stage in this process (1 to 16), sharing the stage's partitions through its consumer group as that many processes would: one stage's transactions then overlap, so a stage waiting for a commit leaves the machine to the others. Each keeps its state under --state-dir/instance-N (the first in --state-dir itself)."`
	MaxPollRecords int           `name:"max-poll-records" env:"USAGESTREAM_MAX_POLL_RECORDS" default:"5000" help:"Most input records in one transaction of a stage: more commit less often (a commit waits for the broker), fewer bound the work a failure repeats."`
	CommitInterval time.Duration `name:"commit-interval" env:"USAGESTREAM_COMMIT_INTERVAL" default:"100ms" help:"How long a stage's transaction keeps taking input records before it commits (up to --max-poll-records), as Kafka Streams commits every 100 ms under exactly-once; 0: a commit per poll. Longer: fewer transactions for the broker, later outputs."`
	CPUProfile     string        `name:"cpuprofile" env:"USAGESTREAM_CPUPROFILE" help:"Write a CPU profile (pprof) of the stages to this file until they stop; each stage's goroutines carry the label stage=<name> (docs/performance.md)."`
	StageLogEvery  time.Duration `name:"stage-log-every" env:"USAGESTREAM_STAGE_LOG_EVERY" default:"30s" help:"How often each stage that did something logs a line (records in, events out, quarantined, lag); a line per file ingested is logged too. 0: neither."`
	apiFlags                     // query API (cmd/usagestream/api.go)
}

// Validate checks the flags when the command line is parsed (a usage
// error), the query API's too.
func (f *processFlags) Validate() error {
	if f.Instances < 1 || f.Instances > maxInstances {
		return fmt.Errorf("--instances %d: give 1 to %d (instances beyond a stage's partitions stay idle)", f.Instances, maxInstances)
	}
	if f.CommitInterval < 0 || f.CommitInterval > maxCommitInterval {
		return fmt.Errorf("--commit-interval %s: give 0 to %s (a transaction open longer holds back every read_committed reader)", f.CommitInterval, maxCommitInterval)
	}
	return f.apiFlags.Validate()
}

func (f processFlags) policy() (rules.Policy, error) {
	if f.Policy == "" {
		return rules.DefaultPolicy(), nil
	}
	return rules.LoadPolicy(f.Policy)
}

type processCmd struct {
	connFlags
	processFlags
	HTTPAddr string `name:"http-addr" env:"USAGESTREAM_HTTP_ADDR" default:"127.0.0.1:8089" help:"Address of /healthz, /readyz and /metrics."`
}

func (c *processCmd) Run(ctx context.Context, g *Globals) error {
	if c.StateDir == "" {
		c.StateDir = filepath.Join("data", "state")
	}
	reg := newMetricsRegistry()
	ready := &atomic.Bool{}
	api := c.newAPI(g.Kafka, reg, g.log) // query API
	defer api.Close()
	set := &stageSet{}
	stop, err := serveHTTP(c.HTTPAddr, reg, ready, g.log, api, set.mount(c.APIToken))
	if err != nil {
		return err
	}
	defer stop()
	return runStages(ctx, g.Kafka, c.processFlags, reg, ready, g.log, set)
}

func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// runProcessors runs every stage of the pipeline until ctx ends. Each stage
// is supervised (runtime.Supervise): one that fails is started again after
// a back-off, saying why, while the others, the HTTP servers and the
// embedded broker and registry of run go on.
func runProcessors(ctx context.Context, kc kafkaconf.Config, f processFlags, reg prometheus.Registerer, ready *atomic.Bool, log *slog.Logger) error {
	return runStages(ctx, kc, f, reg, ready, log, nil)
}

// runStages is runProcessors with the stage set that the pause and resume
// endpoints act on (nil: a set of its own).
func runStages(ctx context.Context, kc kafkaconf.Config, f processFlags, reg prometheus.Registerer, ready *atomic.Bool, log *slog.Logger, set *stageSet) error {
	policy, err := f.policy()
	if err != nil {
		return err
	}
	if f.CPUProfile != "" {
		stop, err := startCPUProfile(f.CPUProfile)
		if err != nil {
			return err
		}
		defer stop(log)
	}
	p, err := pipeline.New(ctx, kc, policy, pipeline.ReadContract(interval.Check{Units: f.Units}))
	if err != nil {
		return err
	}
	warnRetention(ctx, kc, p.Topology(), log)
	// The policy, by file and hash, where a replay into the live topics
	// looks before it writes them with another one.
	host, _ := os.Hostname()
	pi := replay.PolicyInfo{File: f.Policy, SHA256: replay.PolicyHash(policy), Host: host, At: time.Now().UTC()}
	if err := replay.PublishPolicy(ctx, kc, pi); err != nil {
		log.Warn("could not publish the policy; a replay cannot check it against these processors'", "err", err)
	}
	m := runtime.NewMetrics(reg)
	for _, s := range p.Topology().Stages {
		m.Declare(s.Name, s.Inputs, s.Outputs)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var names []string
	for _, st := range p.Stages() {
		names = append(names, runtime.StageName(st))
	}
	if set == nil {
		set = &stageSet{}
	}
	set.mu.Lock()
	set.parent, set.kc, set.log = ctx, kc, log
	// Callers that build processFlags themselves (demo) leave it 0: one.
	instances := max(f.Instances, 1)
	set.start = func(ctx context.Context, started func(*runtime.Instance)) ([]func(), error) {
		var waits []func()
		for k := range instances {
			for _, st := range p.Stages() {
				cfg := runtime.Config{Kafka: kc, DataDir: instanceDir(f.StateDir, k), Logger: log, Metrics: m, SessionTimeout: f.SessionTimeout, MaxPollRecords: f.MaxPollRecords,
					CommitInterval: f.CommitInterval}
				// The query API reads each instance's state, the restarted ones too.
				wait, err := runtime.Supervise(ctx, cfg, st, runtime.SuperviseConfig{Started: func(in *runtime.Instance) {
					started(in)
					f.attach(ctx, in)
				}})
				if err != nil {
					return waits, err
				}
				waits = append(waits, wait)
			}
		}
		return waits, nil
	}
	set.mu.Unlock()
	// Stopped before returning, a start error included: every stage
	// started is stopped and closed before run closes the broker.
	defer set.stop()
	if err := set.run(); err != nil {
		return err
	}
	ready.Store(true)
	log.Info("processors running", "stages", names, "instances", instances, "state_dir", f.StateDir)
	if g, ok := reg.(prometheus.Gatherer); ok && f.StageLogEvery > 0 {
		var wg sync.WaitGroup
		wg.Go(func() { logStageProgress(ctx, g, f.StageLogEvery, log) })
		wg.Go(func() { logFileEvents(ctx, kc, log) })
		defer wg.Wait()
	}
	<-ctx.Done()
	return nil
}

// serveMetrics serves the metrics (and health, ready at once) of a command
// that runs long without processors of its own: ingest --watch, replay.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ready := &atomic.Bool{}
	ready.Store(true)
	return serveHTTP(addr, reg, ready, log, nil)
}

// serveHTTP serves health and metrics; readyz answers 200 once ready is set.
func serveHTTP(addr string, reg *prometheus.Registry, ready *atomic.Bool, log *slog.Logger, api *query.Server, mounts ...func(*http.ServeMux)) (stop func(), err error) {
	mux := http.NewServeMux()
	for _, m := range mounts {
		m(mux)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on --http-addr %s (in use? choose another): %w", addr, err)
	}
	mountAPI(mux, api, ln.Addr().String())
	limits := httpserve.Defaults()
	ln = httpserve.Limit(ln, limits)
	srv := httpserve.Server(mux, limits)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	log.Info("serving health and metrics", "url", "http://"+ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(*slog.Logger), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile file given by --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the CPU profile (--cpuprofile %s): %w", path, err)
	}
	return func(log *slog.Logger) {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("the CPU profile could not be written", "file", path, "err", err)
			return
		}
		log.Info("CPU profile written: go tool pprof -tags usagestream "+path, "file", path)
	}, nil
}

// maxCommitInterval bounds --commit-interval well inside the transaction
// timeout (60 s) the broker allows.
const maxCommitInterval = 10 * time.Second

// maxInstances bounds --instances: each instance of each stage is a Kafka
// client, a consumer group member and a Pebble store of its own.
const maxInstances = 16

// instanceDir is where instance k of the stages keeps its state: the first
// in stateDir itself, as a single instance always did, so a process run
// again with another --instances keeps the state it has.
func instanceDir(stateDir string, k int) string {
	if k == 0 {
		return stateDir
	}
	return filepath.Join(stateDir, fmt.Sprintf("instance-%d", k))
}
