// Command usagestream streams Opower billing files into Kafka as Avro records.
// Run `usagestream --help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/topology"
)

// Globals are flags every command has, and what main sets up from them.
type Globals struct {
	LogLevel  string           `name:"log-level" env:"USAGESTREAM_LOG_LEVEL" enum:"debug,info,warn,error" default:"info" help:"Level of usagestream's own log lines, not the Kafka client's."`
	LogFormat string           `name:"log-format" env:"USAGESTREAM_LOG_FORMAT" enum:"auto,text,json" default:"auto" help:"Log format; auto is text on a terminal, JSON otherwise."`
	Version   kong.VersionFlag `name:"version" help:"Print the version and the commit it was built from, and exit."`

	// Kafka is the connection of the command run: its connection flags
	// (connFlags) when it has them, the embedded default otherwise.
	Kafka kafkaconf.Config `kong:"-"`

	log *slog.Logger
}

// connFlags are the connection flags (brokers, registry, TLS, SASL, topic
// prefix, the Kafka client's log level), grouped in the help; only the
// commands that talk to Kafka embed them, so `gen --help` and `validate
// --help` do not list them.
type connFlags struct {
	Conn kafkaconf.Config `embed:"" group:"connection"`
}

func (c *connFlags) connection() kafkaconf.Config { return c.Conn }

// selectedConnection is the connection flags of the command kctx selected,
// or of the command it is a subcommand of (override clear, sink jsonl).
func selectedConnection(kctx *kong.Context) (kafkaconf.Config, bool) {
	for n := kctx.Selected(); n != nil; n = n.Parent {
		if !n.Target.IsValid() || !n.Target.CanAddr() {
			continue
		}
		if c, ok := n.Target.Addr().Interface().(interface{ connection() kafkaconf.Config }); ok {
			return c.connection(), true
		}
	}
	return kafkaconf.Config{}, false
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
	Topics   topicsCmd   `cmd:"" help:"List the topics of the prefix: partitions, replication, retention, cleanup policy, records."`
	Status   statusCmd   `cmd:"" help:"Show each stage and sink: its group's state and members, its lag, its quarantined records."`
	Tail     tailCmd     `cmd:"" help:"Print a topic's records as JSON lines (Avro decoded through the registry), filtered by key and time."`
	Override overrideCmd `cmd:"" help:"Write and list operator overrides (clear an anomaly, hold a program), audited with actor, reason and ticket; the stages apply them like their other input."`
	Sink     sinkCmd     `cmd:"" help:"Deliver the event topics to PostgreSQL (sink postgres), JSON Lines files (sink jsonl) or a webhook (sink webhook)."`

	Completion completionCmd `cmd:"" help:"Print a shell completion script: source <(usagestream completion bash)."`
}

// exitUsage is the exit status of a command line that cannot be parsed (an
// unknown command or flag, a missing argument, a value out of its set):
// sysexits' EX_USAGE, apart from every status a command returns.
const exitUsage = 64

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
	vars["version"] = version(debug.ReadBuildInfo())
	vars["stages"] = strings.Join(topology.New("").StageNames(), ", ")
	vars["programs"] = strings.Join(rules.Programs(), ",")
	return []kong.Option{
		kong.Name("usagestream"),
		kong.Description("Stream Opower utility billing files and interval reads through Kafka: exactly-once processors keep usage timelines, accounts and eligibility, and emit eligibility changes, corrections and anomalies."),
		kong.Vars(vars),
		kong.ExplicitGroups([]kong.Group{{Key: "connection", Title: "Kafka and schema registry connection:"}}),
	}
}

// parse reads the command line. A usage error prints a short message and
// where to find the help, not the whole help, and returns exitUsage.
func parse(c *cli, args []string, stdout, stderr io.Writer, exit func(int)) (*kong.Context, int) {
	opts := append(kongOptions(), kong.Writers(stdout, stderr), kong.Exit(exit))
	k, err := kong.New(c, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "usagestream:", err)
		return nil, 1
	}
	kctx, err := k.Parse(args)
	if err != nil {
		cmd := "usagestream"
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil && pe.Context.Selected() != nil {
			cmd += " " + pe.Context.Selected().Path()
		}
		fmt.Fprintf(stderr, "usagestream: %v\nRun '%s --help' for usage.\n", err, cmd)
		return nil, exitUsage
	}
	if kc, ok := selectedConnection(kctx); ok {
		c.Kafka = kc
	}
	return kctx, 0
}

func main() {
	var c cli
	kctx, code := parse(&c, os.Args[1:], os.Stdout, os.Stderr, os.Exit)
	if kctx == nil {
		os.Exit(code)
	}
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
