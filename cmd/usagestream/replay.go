package main

// replay: flags and output; the replay itself is processors/replay.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/usagestream/usagestream/processors/replay"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/producers/interval"
)

type replayCmd struct {
	connFlags
	Stages      []string      `arg:"" optional:"" help:"Stages to replay, by name (${stages}); default: every stage."`
	To          string        `name:"to" default:"earliest" help:"Where the input is read again from: earliest, or a time (RFC 3339, YYYY-MM-DD, or a duration back from now such as 24h)."`
	Offsets     []string      `name:"offsets" placeholder:"[TOPIC:]PARTITION:OFFSET" help:"Explicit start offsets in the inputs of the one stage given (repeatable; TOPIC, with or without the prefix, is needed when the stage reads several); partitions not named keep their committed offset."`
	State       string        `name:"state" enum:"recompute,restore,keep" default:"recompute" help:"recompute: delete the stage's state (tombstones on its changelog, so every instance drops it) and rebuild it from the input; restore: wipe the local store in --state-dir and restore it from the changelog; keep: leave the state as it is."`
	Output      string        `name:"output" enum:"same,shadow" default:"same" help:"same: write into the live topics again (event ids as before, so consumers can drop duplicates); shadow: write to topics <prefix>shadow-<name>. (live topics untouched), to compare with 'usagestream diff'."`
	Shadow      string        `name:"shadow" default:"default" help:"Name of the shadow (with --output shadow): its topics are <prefix>shadow-<name>.*; they are deleted and created again."`
	Policy      string        `name:"policy" env:"USAGESTREAM_POLICY" type:"existingfile" help:"Eligibility policy (YAML) the replay runs with; default: the built-in policy. A shadow replay with another policy answers 'what would it change?'."`
	StateDir    string        `name:"state-dir" env:"USAGESTREAM_STATE_DIR" help:"State directory the replay's processors use (give the stopped instance's own to leave it up to date; required by --state restore). Default: a temporary directory, removed afterwards."`
	Force       bool          `name:"force" help:"Remove the members still registered in the groups (a stopped instance stays a member for its session timeout) instead of refusing. Never while processors run."`
	Pause       string        `name:"pause" placeholder:"URL" help:"Pause the processors of the run (or process) serving URL (http://127.0.0.1:8088) for the replay and resume them after, instead of asking for them to be stopped (POST /v1/processors/pause and /resume)."`
	APIToken    string        `name:"api-token" env:"USAGESTREAM_API_TOKEN" help:"Bearer token of the run or process given with --pause."`
	ForcePolicy bool          `name:"force-policy" help:"Write the live topics with a policy other than the one the live processors published (their events and the replay's then mix)."`
	Yes         bool          `name:"yes" short:"y" help:"Do not ask for confirmation."`
	DryRun      bool          `name:"dry-run" help:"Show what would be done, and do nothing."`
	NoRun       bool          `name:"no-run" help:"Only reset offsets and state; the processors redo the work when started again. Default: the replay runs the stages until they reach the input's end as it was at the start, then exits."`
	Timeout     time.Duration `name:"timeout" default:"2h" help:"Give up when the stages have not caught up by then."`
	Quarantine  string        `name:"quarantine" placeholder:"STAGE" help:"Instead of a replay: re-feed the records stage STAGE (or sink-NAME, a sink) quarantined, from its quarantine topic <prefix>quarantine-STAGE.v1 back to their source topics, addressed to that stage only; each record is re-fed once (progress in group <prefix>refeed-STAGE). With --dry-run: list them."`
	Since       string        `name:"since" placeholder:"WHEN" help:"With --quarantine: re-feed only records quarantined since then (RFC 3339, YYYY-MM-DD, or a duration back such as 24h); never one re-fed already."`
	MetricsAddr string        `name:"metrics-addr" env:"USAGESTREAM_REPLAY_METRICS_ADDR" placeholder:"HOST:PORT" help:"Serve the processors' Prometheus metrics on http://HOST:PORT/metrics while the replay runs (127.0.0.1:8090, say); empty: not served."`
	Units       []string      `name:"units" env:"USAGESTREAM_UNITS" default:"KWH,WH,MWH,KVARH,THERM,CCF,HCF,CF,M3,GAL" help:"Allowed units of interval reads, as for process: the interval stage quarantines a record on intervals.v1 with others."`
}

func (c *replayCmd) Run(ctx context.Context, g *Globals) error {
	return c.run(ctx, g, os.Stdin, os.Stdout)
}

func (c *replayCmd) policy() (rules.Policy, error) {
	if c.Policy == "" {
		return rules.DefaultPolicy(), nil
	}
	return rules.LoadPolicy(c.Policy)
}

// options turns the flags into the replay's options.
func (c *replayCmd) options(g *Globals) (replay.Options, error) {
	opts := replay.Options{Kafka: g.Kafka, Stages: c.Stages, Offsets: c.Offsets, State: replay.State(c.State),
		PolicyName: c.Policy, StateDir: c.StateDir, Force: c.Force, NoRun: c.NoRun, Log: g.log,
		ReadContract: interval.Check{Units: c.Units}}
	if c.Output == "shadow" {
		opts.Shadow = c.Shadow
	}
	if c.To != "earliest" {
		at, err := parseWhen(c.To, time.Now())
		if err != nil {
			return opts, fmt.Errorf("--to: %w (or earliest)", err)
		}
		opts.At = at
	}
	var err error
	opts.Policy, err = c.policy()
	return opts, err
}

func (c *replayCmd) run(ctx context.Context, g *Globals, stdin *os.File, out io.Writer) error {
	if c.Quarantine != "" {
		return c.requeue(ctx, g.Kafka, out) // requeue.go
	}
	if c.Since != "" {
		return errors.New("--since applies to --quarantine; a replay starts --to a time")
	}
	if c.Output == "shadow" && c.State != "recompute" {
		return errors.New("--output shadow always recomputes the state (the shadow starts empty): drop --state")
	}
	if c.State == "restore" && c.StateDir == "" {
		return errors.New("--state restore wipes the local store of an instance: give its --state-dir")
	}
	if c.Output == "shadow" && !replay.ValidShadowName(c.Shadow) {
		return fmt.Errorf("--shadow %q: use letters, digits, '-' and '_' only", c.Shadow)
	}
	opts, err := c.options(g)
	if err != nil {
		return err
	}
	cl, err := g.Kafka.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	if c.Pause != "" && opts.Shadow != "" {
		return errors.New("--pause: a shadow replay runs beside the live processors; drop --pause")
	}
	if c.Pause != "" && !c.DryRun {
		// Resumed whatever happens, the replay's failure included, and a
		// pause that stopped the stages but then failed (resuming processors
		// that are not paused does nothing).
		var pauseErr error
		defer func() {
			var ue *unreachableError
			if errors.As(pauseErr, &ue) {
				return // nothing was paused
			}
			if err := callProcessors(context.WithoutCancel(ctx), c.Pause, resumePath, c.APIToken); err != nil {
				fmt.Fprintf(out, "could not resume the processors: %v; restart them\n", err)
				return
			}
			fmt.Fprintf(out, "resumed the processors of %s\n", c.Pause)
		}()
		if pauseErr = callProcessors(ctx, c.Pause, pausePath, c.APIToken); pauseErr != nil {
			return pauseErr
		}
		fmt.Fprintf(out, "paused the processors of %s\n", c.Pause)
	}

	plan, err := replay.NewPlan(ctx, adm, opts)
	if err != nil {
		return err
	}
	fmt.Fprint(out, plan)
	refusals := c.refusals(plan)
	if c.DryRun {
		for _, r := range refusals {
			fmt.Fprintf(out, "The real run would be refused: %s.\n", r)
		}
		if c.Pause != "" {
			fmt.Fprintf(out, "The real run pauses the processors of %s first, and resumes them at the end.\n", c.Pause)
		}
		if len(refusals) == 0 && !c.Yes && (stdin == nil || !isTerminal(stdin)) {
			fmt.Fprintln(out, "The real run needs --yes (stdin is not a terminal).")
		}
		fmt.Fprintln(out, "Dry run: nothing was changed.")
		return nil
	}
	if len(refusals) > 0 {
		return &exitError{code: 2, msg: "refusing to replay: " + refusals[0]}
	}
	if !c.Yes {
		ok, err := confirm(stdin, out, "Proceed? [y/N] ")
		if err != nil {
			return err
		}
		if !ok {
			return &exitError{code: 1, msg: "replay cancelled: nothing was changed"}
		}
	}
	if err := plan.Apply(ctx, adm); err != nil {
		return err
	}
	if c.NoRun {
		fmt.Fprintln(out, "Offsets and state reset; start the processors to reprocess.")
		return nil
	}
	reg := newMetricsRegistry()
	m := runtime.NewMetrics(reg)
	if c.MetricsAddr != "" {
		stop, err := serveMetrics(c.MetricsAddr, reg, g.log)
		if err != nil {
			return err
		}
		defer stop()
	}
	res, err := plan.Run(ctx, replay.RunOptions{StateDir: c.StateDir, Timeout: c.Timeout, Metrics: m, Progress: out})
	if errors.Is(err, replay.ErrTimeout) {
		return fmt.Errorf("the stages did not catch up within --timeout %s", c.Timeout)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, res)
	if opts.Shadow != "" {
		fmt.Fprintf(out, "compare with: usagestream diff --shadow %s\n", c.Shadow)
	}
	return nil
}

// refusals are the reasons the replay would not go on, each with what to do.
func (c *replayCmd) refusals(plan *replay.Plan) []string {
	var out []string
	if m := plan.PolicyMismatch(); m != "" && !c.ForcePolicy {
		out = append(out, m+"; --force-policy writes them all the same")
	}
	if live := plan.Members(); len(live) > 0 && !c.Force && !(c.DryRun && c.Pause != "") {
		out = append(out, fmt.Sprintf("groups have members: %s. Stop the processors of these stages first (a stopped instance stays a member for its --session-timeout, 10s by default), or pass --force to remove members that are gone", strings.Join(live, "; ")))
	}
	return out
}

// confirm asks on a terminal; elsewhere --yes is required, so that a
// script never replays by accident.
func confirm(stdin *os.File, out io.Writer, prompt string) (bool, error) {
	if stdin == nil || !isTerminal(stdin) {
		return false, &exitError{code: 2, msg: "replay needs confirmation and stdin is not a terminal: pass --yes (or --dry-run to see the plan)"}
	}
	fmt.Fprint(out, prompt)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}
