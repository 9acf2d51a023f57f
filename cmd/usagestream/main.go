// Command usagestream streams Opower billing files into Kafka as Avro records.
// Run `usagestream --help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/topology"
)

// Globals are flags every command has.
type Globals struct {
	Kafka     kafkaconf.Config `embed:""`
	LogLevel  string           `name:"log-level" env:"USAGESTREAM_LOG_LEVEL" enum:"debug,info,warn,error" default:"info" help:"Log level."`
	LogFormat string           `name:"log-format" env:"USAGESTREAM_LOG_FORMAT" enum:"auto,text,json" default:"auto" help:"Log format; auto is text on a terminal, JSON otherwise."`

	log *slog.Logger
}

type cli struct {
	Globals

	Run      runCmd      `cmd:"" help:"Serve the embedded broker and registry (when no --brokers are given) and create the topics."`
	Ingest   ingestCmd   `cmd:"" help:"Publish billing and interval files (or a watched drop folder) to Kafka."`
	Process  processCmd  `cmd:"" help:"Run the processors (stages ${stages}: usage timelines, accounts, interval coverage, eligibility) against the configured brokers."`
	Gen      genCmd      `cmd:"" help:"Generate realistic billing files with labelled anomalies."`
	Demo     demoCmd     `cmd:"" help:"Start the embedded default, generate sample files, ingest them and show what landed."`
	Validate validateCmd `cmd:"" help:"Check billing files offline (no Kafka) with the same reader and rules; report in the terminal, JSON and HTML; exit 2 when they fail the policy's thresholds."`
	Replay   replayCmd   `cmd:"" help:"Reset processor groups and rebuild their state and output, into the live topics (same event ids) or shadow topics."`
	Diff     diffCmd     `cmd:"" help:"Compare a shadow replay's eligibility with the live output: added, removed, changed per subject and program."`
	Tail     tailCmd     `cmd:"" help:"Print a topic's records as JSON lines (Avro decoded through the registry), filtered by key and time."`
	Override overrideCmd `cmd:"" help:"Write and list operator overrides (clear an anomaly, hold a program), audited with actor, reason and ticket; the stages apply them like their other input."`
	Sink     sinkCmd     `cmd:"" help:"Deliver the event topics to PostgreSQL (sink postgres), JSON Lines files (sink jsonl) or a webhook (sink webhook)."`
}

// exitError carries a process exit status with its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// kongOptions configure the command line; the help's ${stages} lists the
// topology's stages, so it cannot leave one out.
func kongOptions() []kong.Option {
	vars := kafkaconf.Vars()
	vars["data_dir"] = "data"
	vars["stages"] = strings.Join(topology.New("").StageNames(), ", ")
	vars["programs"] = strings.Join(rules.Programs(), ",")
	return []kong.Option{
		kong.Name("usagestream"),
		kong.Description("Stream Opower utility billing files and interval reads through Kafka: exactly-once processors keep usage timelines, accounts and eligibility, and emit eligibility changes, corrections and anomalies."),
		kong.UsageOnError(),
		kong.Vars(vars),
	}
}

func main() {
	var c cli
	kctx := kong.Parse(&c, kongOptions()...)
	c.log = newLogger(os.Stderr, c.LogLevel, c.LogFormat)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	kctx.BindTo(ctx, (*context.Context)(nil))
	err := kctx.Run(&c.Globals)
	var ee *exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, ee.msg)
		}
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "usagestream:", err)
		os.Exit(1)
	}
}
