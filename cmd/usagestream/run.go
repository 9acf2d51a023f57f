package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/usagestream/usagestream/internal/embedded"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/topology"
	"github.com/usagestream/usagestream/schemas"
)

type runCmd struct {
	connFlags
	DataDir      string `name:"data-dir" env:"USAGESTREAM_DATA_DIR" default:"${data_dir}" help:"Where the embedded broker and registry keep their data."`
	KafkaPort    int    `name:"kafka-port" env:"USAGESTREAM_KAFKA_PORT" default:"9092" help:"Embedded broker port on 127.0.0.1."`
	RegistryPort int    `name:"registry-port" env:"USAGESTREAM_REGISTRY_PORT" default:"8081" help:"Embedded registry port on 127.0.0.1."`
	HTTPAddr     string `name:"http-addr" env:"USAGESTREAM_HTTP_ADDR" default:"127.0.0.1:8088" help:"Address of /healthz, /readyz and /metrics."`
	Partitions   int32  `name:"partitions" env:"USAGESTREAM_PARTITIONS" default:"6" help:"Partitions of topics created here."`
	Replication  int16  `name:"replication" env:"USAGESTREAM_REPLICATION" default:"1" help:"Replication factor of topics created here (real clusters: 3)."`
	NoProcess    bool   `name:"no-process" env:"USAGESTREAM_NO_PROCESS" help:"Serve the broker and registry only, without the processors."`
	// Retention is per topic; the defaults are processors/topology's.
	Retention []string `name:"retention" env:"USAGESTREAM_RETENTION" placeholder:"TOPIC=DURATION" help:"Retention of a topic created here, TOPIC=DURATION (billing.v1=forever, eligibility.v1=30d, 720h); repeatable. Defaults: inputs forever, events 90 days. Existing topics keep theirs."`
	processFlags
	sinkFlags     // sinks (issue 8), see sink.go
	intervalFlags // POST /v1/intervals, see intervals.go
}

// stack is what run (and demo) bring up: the embedded broker and registry
// when no brokers are configured, and the topics and schemas in either case.
type stack struct {
	kc       kafkaconf.Config
	embedded *embedded.Stack
}

func (s *stack) Close() {
	if s.embedded != nil {
		s.embedded.Close()
	}
}

// stackOptions says how startStack sets up the embedded broker and registry
// (when the configuration has no brokers) and the topics.
type stackOptions struct {
	DataDir                 string // the embedded broker's data
	KafkaPort, RegistryPort int    // 0: a free port
	Partitions              int32  // of topics created now
	Replication             int16  // of topics created now
	Retention               []string
}

func startStack(ctx context.Context, g *Globals, o stackOptions) (*stack, error) {
	dataDir, partitions, replication := o.DataDir, o.Partitions, o.Replication
	ms, err := topology.ParseRetention(o.Retention, topology.New(g.Kafka.TopicPrefix))
	if err != nil {
		return nil, err
	}
	s := &stack{kc: g.Kafka}
	if g.Kafka.Embedded() {
		st, err := embedded.Start(ctx, embedded.Config{DataDir: dataDir, KafkaPort: o.KafkaPort, RegistryPort: o.RegistryPort, Partitions: partitions, Logger: g.log})
		if err != nil {
			return nil, err
		}
		s.embedded = st
		s.kc.Brokers = st.BrokerAddrs()
		if s.kc.Registry == "" {
			s.kc.Registry = st.RegistryURL()
		}
		g.log.Info("embedded broker and registry started", "brokers", st.BrokerAddrs(), "registry", s.kc.RedactedRegistryURL(), "data_dir", dataDir)
	}
	if err := ensureTopicsAndSchemas(ctx, s.kc, partitions, replication, ms); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ensureTopicsAndSchemas creates missing topics and registers every schema,
// so consumers can decode before the first record arrives.
func ensureTopicsAndSchemas(ctx context.Context, kc kafkaconf.Config, partitions int32, replication int16, retentionMs map[string]string) error {
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	topo := topology.New(kc.TopicPrefix).WithRetention(retentionMs)
	adm := kadm.NewClient(cl)
	if err := topics.Ensure(ctx, adm, topo.Specs(), partitions, replication); err != nil {
		return err
	}
	// Topics that existed keep their partition counts: a join on topics
	// made by hand with other counts would silently miss records.
	tds, err := adm.ListTopics(ctx, topo.OfKind(topology.Input, topology.Repartition)...)
	if err != nil {
		return fmt.Errorf("describing the topics: %w", err)
	}
	counts := map[string]int32{}
	for _, td := range tds {
		if td.Err == nil {
			counts[td.Topic] = int32(len(td.Partitions))
		}
	}
	if err := topo.CheckPartitions(counts); err != nil {
		return err
	}
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return err
	}
	reg := serde.NewRegistry(rc)
	for _, t := range topo.Topics {
		if t.Schema == "" {
			continue
		}
		if _, err := reg.Register(ctx, serde.SubjectFor(t.Name), schemas.MustText(t.Schema)); err != nil {
			return err
		}
	}
	return nil
}

func (r *runCmd) Run(ctx context.Context, g *Globals) error {
	s, err := startStack(ctx, g, stackOptions{DataDir: r.DataDir, KafkaPort: r.KafkaPort, RegistryPort: r.RegistryPort,
		Partitions: r.Partitions, Replication: r.Replication, Retention: r.Retention})
	if err != nil {
		return err
	}
	defer s.Close()
	reg := newMetricsRegistry()
	ready := &atomic.Bool{}
	api := r.newAPI(s.kc, reg, g.log) // query API
	defer api.Close()
	ivs, err := newIntervalEndpoint(ctx, s.kc, r.intervalFlags, r.APIToken, g.log) // POST /v1/intervals
	if err != nil {
		return err
	}
	defer ivs.Close()
	set := &stageSet{} // paused and resumed by replay --pause (pause.go)
	mounts := []func(*http.ServeMux){ivs.mount}
	if !r.NoProcess {
		mounts = append(mounts, set.mount(r.APIToken))
	}
	stop, err := serveHTTP(r.HTTPAddr, reg, ready, g.log, api, mounts...)
	if err != nil {
		return err
	}
	defer stop()
	g.log.Info("usagestream is running; stop with Ctrl-C",
		"brokers", s.kc.BrokerList(), "registry", s.kc.RedactedRegistryURL(), "topic_prefix", s.kc.TopicPrefix)
	// Sinks (issue 8): those whose destination is set run beside the
	// processors, supervised like them: one that fails restarts after a
	// back-off and stops nothing else.
	ctx, sinks, err := startSinks(ctx, s.kc, r.sinkFlags, reg, g.log, "", "")
	if err != nil {
		return err
	}
	// Deferred after the broker's Close: the sinks stop first.
	defer sinks.wait()
	if r.NoProcess {
		ready.Store(true)
		<-ctx.Done()
		return nil
	}
	f := r.processFlags
	if f.StateDir == "" {
		f.StateDir = filepath.Join(r.DataDir, "state")
	}
	err = runStages(ctx, s.kc, f, reg, ready, g.log, set)
	g.log.Info("stopping")
	return err
}

// warnRetention logs a warning for each existing topic whose retention or
// cleanup policy defeats replay or restore (topology.RetentionWarnings):
// the broker's 7-day default on an input makes "replay from the earliest
// offset" silently start a week back. A topic's settings are the
// operator's: this says what is lost and what to change, and goes on.
func warnRetention(ctx context.Context, kc kafkaconf.Config, topo topology.Topology, log *slog.Logger) {
	cl, err := kc.NewClient(ctx)
	if err != nil {
		log.Warn("could not check the topics' retention", "err", err)
		return
	}
	defer cl.Close()
	configs, err := topo.DescribeRetention(ctx, kadm.NewClient(cl))
	if err != nil {
		log.Warn("could not check the topics' retention", "err", err)
		return
	}
	for _, w := range topo.RetentionWarnings(configs) {
		log.Warn("topic setting defeats replay: " + w)
	}
}
