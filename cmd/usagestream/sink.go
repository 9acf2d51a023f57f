package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/supervise"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/sinks/jsonl"
	"github.com/usagestream/usagestream/sinks/postgres"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/webhook"
)

// Flags of each sink, shared by `sink NAME` and by `run`, which starts every
// sink whose destination is set.

type postgresFlags struct {
	PostgresURL string `name:"postgres-url" env:"USAGESTREAM_POSTGRES_URL" placeholder:"URL" help:"PostgreSQL sink: postgres://user:password@host:5432/db?sslmode=... (prefer the environment variable: it holds a password)."`
}

type jsonlFlags struct {
	JSONLDir     string        `name:"jsonl-dir" env:"USAGESTREAM_JSONL_DIR" placeholder:"DIR" help:"JSON Lines sink: directory of the files (one per topic partition, rotated)."`
	JSONLMaxMB   int64         `name:"jsonl-max-mb" env:"USAGESTREAM_JSONL_MAX_MB" default:"64" help:"JSON Lines sink: rotate a file at this size (MiB)."`
	JSONLMaxAge  time.Duration `name:"jsonl-max-age" env:"USAGESTREAM_JSONL_MAX_AGE" default:"1h" help:"JSON Lines sink: rotate a file this long after its first line."`
	JSONLMaxSize int64         `name:"jsonl-max-bytes" hidden:"" help:"Rotation size in bytes (tests)."`
}

type webhookFlags struct {
	WebhookURL        string        `name:"webhook-url" env:"USAGESTREAM_WEBHOOK_URL" placeholder:"URL" help:"Webhook sink: URL that receives POSTed batches."`
	WebhookSecret     string        `name:"webhook-secret" env:"USAGESTREAM_WEBHOOK_SECRET" help:"Webhook sink: shared secret of the HMAC-SHA256 signature header (prefer the environment variable)."`
	WebhookTimeout    time.Duration `name:"webhook-timeout" env:"USAGESTREAM_WEBHOOK_TIMEOUT" default:"10s" help:"Webhook sink: timeout of one POST."`
	WebhookRetryFor   time.Duration `name:"webhook-retry-for" env:"USAGESTREAM_WEBHOOK_RETRY_FOR" default:"1m" help:"Webhook sink: retry budget of a batch, after which it goes to the dead-letter topic."`
	WebhookBatch      int           `name:"webhook-batch" env:"USAGESTREAM_WEBHOOK_BATCH" default:"500" help:"Webhook sink: most events in one POST."`
	WebhookDeadLetter string        `name:"webhook-dead-letter-topic" env:"USAGESTREAM_WEBHOOK_DEAD_LETTER_TOPIC" help:"Webhook sink: dead-letter topic (default <prefix>sink-webhook-dead-letter.v1)."`
}

// sinkFlags are the flags of run that start sinks beside the processors.
type sinkFlags struct {
	postgresFlags `group:"Sinks (started when their destination is set)"`
	jsonlFlags    `group:"Sinks (started when their destination is set)"`
	webhookFlags  `group:"Sinks (started when their destination is set)"`
	SinkBatch     int `name:"sink-batch" env:"USAGESTREAM_SINK_BATCH" default:"5000" group:"Sinks (started when their destination is set)" help:"Most events the PostgreSQL and JSON Lines sinks write at once."`
}

// sinkCommon are the flags of every `sink NAME` command.
type sinkCommon struct {
	HTTPAddr   string `name:"http-addr" env:"USAGESTREAM_HTTP_ADDR" default:"127.0.0.1:8090" help:"Address of /healthz, /readyz and /metrics."`
	Group      string `name:"group" env:"USAGESTREAM_SINK_GROUP" help:"Consumer group (default <prefix>sink-NAME); instances with the same group share the partitions."`
	Batch      int    `name:"batch" env:"USAGESTREAM_SINK_BATCH" default:"5000" help:"Most events written at once (the webhook sink: --webhook-batch)."`
	InstanceID string `name:"instance-id" env:"USAGESTREAM_SINK_INSTANCE_ID" help:"Static group membership: a restarted instance with the same id gets its partitions back at once. Give each running instance its own."`
}

type sinkCmd struct {
	connFlags
	Postgres sinkPostgresCmd `cmd:"" help:"Eligibility (current and history), corrections, account events and anomalies into PostgreSQL tables (migrated on start)."`
	JSONL    sinkJSONLCmd    `cmd:"" name:"jsonl" help:"Every event as a JSON line in files per topic partition, rotated by size or age."`
	Webhook  sinkWebhookCmd  `cmd:"" help:"Batches of events POSTed to a URL, signed, retried, dead-lettered after the retry budget."`
}

type sinkPostgresCmd struct {
	postgresFlags
	sinkCommon
}

type sinkJSONLCmd struct {
	jsonlFlags
	sinkCommon
}

type sinkWebhookCmd struct {
	webhookFlags
	sinkCommon
}

func (c *sinkPostgresCmd) Run(ctx context.Context, g *Globals) error {
	if c.PostgresURL == "" {
		return errors.New("no PostgreSQL URL: set USAGESTREAM_POSTGRES_URL or --postgres-url (postgres://user:password@host:5432/db)")
	}
	return serveSinks(ctx, g, c.sinkCommon, sinkFlags{postgresFlags: c.postgresFlags, SinkBatch: c.Batch})
}

func (c *sinkJSONLCmd) Run(ctx context.Context, g *Globals) error {
	if c.JSONLDir == "" {
		return errors.New("no directory: set USAGESTREAM_JSONL_DIR or --jsonl-dir")
	}
	return serveSinks(ctx, g, c.sinkCommon, sinkFlags{jsonlFlags: c.jsonlFlags, SinkBatch: c.Batch})
}

func (c *sinkWebhookCmd) Run(ctx context.Context, g *Globals) error {
	if c.WebhookURL == "" {
		return errors.New("no webhook URL: set USAGESTREAM_WEBHOOK_URL or --webhook-url")
	}
	return serveSinks(ctx, g, c.sinkCommon, sinkFlags{webhookFlags: c.webhookFlags})
}

// serveSinks is `usagestream sink NAME`: health and metrics, and the sink
// until stopped.
func serveSinks(ctx context.Context, g *Globals, c sinkCommon, f sinkFlags) error {
	reg := newMetricsRegistry()
	ready := &atomic.Bool{}
	stop, err := serveHTTP(c.HTTPAddr, reg, ready, g.log, nil)
	if err != nil {
		return err
	}
	defer stop()
	sctx, sinks, err := startSinks(ctx, g.Kafka, f, reg, g.log, c.Group, c.InstanceID)
	if err != nil {
		return err
	}
	defer sinks.wait()
	ready.Store(true)
	<-sctx.Done()
	return nil
}

// runSink runs one sink until ctx ends, starting it again after a failure.
// It resumes from its committed offsets: the batch that failed is delivered
// again, and the Writers drop what they already have.
func runSink(ctx context.Context, cfg sink.Config, w sink.Writer, m *sink.Metrics, log *slog.Logger) {
	supervise.Run(ctx, supervise.Config{Name: "sink " + cfg.Name, Logger: log, Restarted: func() { m.Restarted(cfg.Name) }},
		func(ctx context.Context) error { return sink.Run(ctx, cfg, w) })
}

// runningSinks are sinks started in the background.
type runningSinks struct {
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closes    []func()
	closeOnce sync.Once
}

// wait stops the sinks (if they still run), waits for them and closes their
// destinations.
func (r *runningSinks) wait() {
	if r == nil {
		return
	}
	r.cancel()
	r.wg.Wait()
	r.closeOnce.Do(func() {
		for _, c := range r.closes {
			c()
		}
	})
}

// startSinks opens every sink whose destination f sets and runs each in its
// own consumer group, supervised: a sink that fails (a destination that
// refuses a batch, a lost broker) is started again after a back-off, saying
// why, and never stops the others, the processors or the embedded broker
// and registry of run. The returned context ends when ctx does.
func startSinks(ctx context.Context, kc kafkaconf.Config, f sinkFlags, reg prometheus.Registerer, log *slog.Logger, group, instanceID string) (context.Context, *runningSinks, error) {
	type started struct {
		cfg sink.Config
		w   sink.Writer
	}
	var all []started
	r := &runningSinks{}
	fail := func(err error) (context.Context, *runningSinks, error) {
		for _, c := range r.closes {
			c()
		}
		return nil, nil, err
	}
	names := topics.NewNames(kc.TopicPrefix)
	lm := sink.NewMetrics(reg)
	base := func(name string) sink.Config {
		g := group
		if g == "" {
			g = sink.GroupFor(kc.TopicPrefix, name)
		}
		return sink.Config{Name: name, Kafka: kc, Group: g, InstanceID: instanceID, MaxBatch: f.SinkBatch, Logger: log, Metrics: lm}
	}
	if f.PostgresURL != "" {
		s, err := postgres.Open(ctx, postgres.Config{URL: f.PostgresURL, Topics: names, Logger: log, Metrics: postgres.NewMetrics(reg)})
		if err != nil {
			return fail(err)
		}
		r.closes = append(r.closes, s.Close)
		all = append(all, started{base("postgres"), s})
	}
	if f.JSONLDir != "" {
		maxBytes := f.JSONLMaxMB << 20
		if f.JSONLMaxSize > 0 {
			maxBytes = f.JSONLMaxSize
		}
		s, err := jsonl.Open(jsonl.Config{Dir: f.JSONLDir, MaxBytes: maxBytes, MaxAge: f.JSONLMaxAge, Logger: log, Metrics: jsonl.NewMetrics(reg)})
		if err != nil {
			return fail(err)
		}
		r.closes = append(r.closes, func() {
			if err := s.Close(); err != nil {
				log.Error("finishing the JSON Lines files", "err", err)
			}
		})
		cfg := base("jsonl")
		cfg.Format = sink.JSON
		all = append(all, started{cfg, s})
	}
	if f.WebhookURL != "" {
		wc := webhook.Config{URL: f.WebhookURL, Secret: f.WebhookSecret, Timeout: f.WebhookTimeout, RetryFor: f.WebhookRetryFor,
			DeadLetterTopic: f.WebhookDeadLetter, Kafka: kc, Logger: log, Metrics: webhook.NewMetrics(reg)}
		s, err := webhook.Open(ctx, wc)
		if err != nil {
			return fail(err)
		}
		r.closes = append(r.closes, s.Close)
		cfg := base("webhook")
		cfg.Format = sink.JSON
		cfg.MaxBatch = f.WebhookBatch
		// A batch may retry for the whole budget: the loop must wait for it.
		cfg.WriteTimeout = wc.WithDefaults().WriteTimeout()
		cfg.RebalanceTimeout = cfg.WriteTimeout + time.Minute
		all = append(all, started{cfg, s})
	}
	sctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	for _, s := range all {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			runSink(sctx, s.cfg, s.w, lm, log)
		}()
	}
	if len(all) > 0 {
		names := make([]string, len(all))
		for i, s := range all {
			names[i] = s.cfg.Name
		}
		log.Info("sinks running", "sinks", names)
	}
	return sctx, r, nil
}
