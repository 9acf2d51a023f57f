package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

// Exit status of validate when the files fail the policy's thresholds (0:
// they pass; 1: the run could not go on).
const exitValidationFailed = 2

type validateCmd struct {
	Files           []string `arg:"" help:"Billing and interval files (.gz, .zip, or plain .tsv/.txt), taken in the order of docs/data-contract.md §2.5 (interval files after the billing files, for the sum check I6)."`
	Policy          string   `name:"policy" env:"USAGESTREAM_POLICY" type:"existingfile" help:"Policy (YAML) with the validation thresholds; default: the built-in default policy."`
	JSON            string   `name:"json" placeholder:"FILE" help:"Write the report as JSON to FILE (- for standard output)."`
	HTML            string   `name:"html" placeholder:"FILE" help:"Write the report as a self-contained HTML page to FILE."`
	Quiet           bool     `name:"quiet" short:"q" help:"No terminal summary; the exit status says pass (0) or fail (2)."`
	Examples        int      `name:"examples" default:"200" help:"Findings kept per rule and code, and subjects listed per program, in the reports (0: all)."`
	Store           string   `name:"store" enum:"auto,memory,pebble" default:"auto" help:"Rule state: memory, a temporary Pebble store with a bounded cache (for large files), or auto (Pebble above --pebble-above)."`
	PebbleAbove     int64    `name:"pebble-above" default:"5242880" help:"With --store auto: total size of the input in bytes of gzip (plain files count an eighth) above which Pebble is used."`
	CacheStates     int      `name:"cache-states" default:"5000" help:"With Pebble: states per stage kept decoded in memory."`
	TempDir         string   `name:"temp-dir" env:"USAGESTREAM_TEMP_DIR" help:"Folder for the temporary Pebble store (default: the system's); removed at the end."`
	Layout          string   `name:"layout" enum:",full,customer,usage" default:"" help:"Layout of files whose name does not follow the convention: full, customer or usage."`
	ServiceTypes    []string `name:"service-types" env:"USAGESTREAM_SERVICE_TYPES" default:"E,G,W" help:"Allowed service_type codes."`
	FutureDays      int      `name:"future-days" env:"USAGESTREAM_FUTURE_DAYS" default:"1" help:"Days a date_to or inactive_date may lie after the timestamp of the file's name before the row is rejected (DATE_AFTER_FILE); -1: no check."`
	IntervalTZ      string   `name:"interval-tz" env:"USAGESTREAM_INTERVAL_TZ" default:"UTC" help:"Time zone (IANA, e.g. America/New_York) of interval rows whose UTC_offset is empty."`
	IntervalMinutes int      `name:"interval-minutes" enum:"0,5,15,30,60,1440" default:"0" help:"Interval length of files whose name does not say interval<mm> (0: read such files as billing files)."`
	Units           []string `name:"units" env:"USAGESTREAM_UNITS" default:"KWH,WH,MWH,KVARH,THERM,CCF,HCF,CF,M3,GAL" help:"Allowed units of interval reads."`
	Compare         []string `name:"compare" placeholder:"PREVIOUS.json" type:"existingfile" help:"Compare with the JSON report of the previous round: findings fixed, new and persisting by rule and service point, and the trend over the rounds (repeat the flag, oldest first, to give rounds whose reports carry no trend)."`
	ExportRejected  string   `name:"export-rejected" placeholder:"FILE" help:"Write every rejected row to FILE as TSV, one line per reason: file, line, service point, column, value, rule, code, reason, how to fix; personal columns redacted."`
	IncludePersonal bool     `name:"include-personal" help:"Keep names and addresses in the rejected rows: the export's values then show them, and so may the reports' messages. For sending back to the utility that owns the data only."`
	Summary         string   `name:"summary" placeholder:"FILE" help:"Write a one-page Markdown summary for the utility's engineers to FILE: verdict, checks, what to fix and how, history, the change since the previous round."`
	Phase           string   `name:"phase" enum:"sample,historical,incremental" default:"sample" help:"Phase of the data transfer: sample (the policy's checks), historical (also: usage for every active and inactive account, and the months of history the policy needs), incremental (also: continuity with --state-from)."`
	StateFrom       string   `name:"state-from" placeholder:"DIR" type:"existingdir" help:"With --phase incremental: the state the run of the files already loaded saved with --save-state; a gap after that history or a changed active date is reported."`
	SaveState       string   `name:"save-state" placeholder:"DIR" help:"Save the service points' state after this run to DIR (replaced whole), for a later --phase incremental --state-from DIR."`
	Progress        string   `name:"progress" enum:"auto,always,never" default:"auto" help:"Rows and rows/s while it runs: auto shows them when stderr is a terminal."`
	CPUProfile      string   `name:"cpuprofile" placeholder:"FILE" help:"Write a CPU profile (pprof) of the run to FILE (docs/performance.md)."`
}

func (c *validateCmd) Run(ctx context.Context, g *Globals) error {
	policy := rules.DefaultPolicy()
	if c.Policy != "" {
		p, err := rules.LoadPolicy(c.Policy)
		if err != nil {
			return err
		}
		policy = p
	}
	if c.Examples < 0 {
		return fmt.Errorf("--examples is %d; give 0 (all) or more", c.Examples)
	}
	loc, err := time.LoadLocation(c.IntervalTZ)
	if err != nil {
		return fmt.Errorf("--interval-tz %q: %w; give an IANA zone name such as America/New_York", c.IntervalTZ, err)
	}
	tuneGC()
	if c.CPUProfile != "" {
		stop, err := startCPUProfile(c.CPUProfile)
		if err != nil {
			return err
		}
		defer stop(g.log)
	}
	start := time.Now()
	var (
		progress func(int64)
		bar      *progressbar.ProgressBar
	)
	if c.Progress == "always" || (c.Progress == "auto" && isTerminal(os.Stderr)) {
		bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
		progress = func(rows int64) {
			bar.Describe(fmt.Sprintf("%d rows, %.0f rows/s", rows, float64(rows)/time.Since(start).Seconds()))
			_ = bar.Set64(rows)
		}
	}
	var (
		export     *validate.RejectedWriter
		exportFile *os.File
		onRejected func(file, layout string, rj *records.Rejected)
	)
	if c.ExportRejected != "" {
		f, err := os.Create(c.ExportRejected + ".tmp")
		if err != nil {
			return fmt.Errorf("--export-rejected: %w; check the folder exists and is writable", err)
		}
		defer os.Remove(f.Name()) // after a failure; renamed away on success
		defer f.Close()
		exportFile, export = f, validate.NewRejectedWriter(f)
		onRejected = export.Write
	}
	rep, err := validate.Run(ctx, c.Files, validate.Options{
		Rejected:  onRejected,
		Phase:     c.Phase,
		StateFrom: c.StateFrom,
		SaveState: c.SaveState,
		Policy:    policy,
		Reader:    billing.Options{Layout: records.Layout(c.Layout), ServiceTypes: c.ServiceTypes, FutureDays: &c.FutureDays, KeepPersonal: c.IncludePersonal},
		Interval: interval.Options{Check: interval.Check{Units: c.Units, ServiceTypes: c.ServiceTypes, Location: loc},
			Minutes: c.IntervalMinutes},
		Store:       c.Store,
		PebbleAbove: c.PebbleAbove,
		CacheStates: c.CacheStates,
		TempDir:     c.TempDir,
		Examples:    c.Examples,
		Progress:    progress,
		Logger:      g.log,
		Version:     version(debug.ReadBuildInfo()),
		PolicyFile:  c.Policy,
	})
	if bar != nil {
		_ = bar.Finish() // clears its line before the summary
	}
	if err != nil {
		return err
	}
	if len(c.Compare) > 0 {
		var prev *report.Report
		var rounds []report.Round
		for _, p := range c.Compare {
			r, err := report.ReadJSON(p)
			if err != nil {
				return err
			}
			rounds, prev = append(rounds, report.RoundOf(r)), r
		}
		if len(prev.Rounds) == 0 && len(rounds) > 1 {
			prev.Rounds = rounds
		}
		report.Compare(prev, rep)
	}
	if export != nil {
		if err := export.Close(); err != nil {
			return err
		}
		if err := exportFile.Close(); err != nil {
			return fmt.Errorf("--export-rejected: %w", err)
		}
		if err := os.Rename(exportFile.Name(), c.ExportRejected); err != nil {
			return fmt.Errorf("--export-rejected: %w", err)
		}
	}
	if c.Summary != "" {
		if err := writeOut(c.Summary, func(b *bytes.Buffer) error { return report.WriteSummary(b, rep) }); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	if c.JSON != "" {
		if err := writeOut(c.JSON, func(b *bytes.Buffer) error { return report.WriteJSON(b, rep) }); err != nil {
			return err
		}
	}
	if c.HTML != "" {
		if err := writeOut(c.HTML, func(b *bytes.Buffer) error { return report.WriteHTML(b, rep) }); err != nil {
			return err
		}
	}
	if !c.Quiet && c.JSON != "-" {
		color := isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == ""
		if err := report.WriteTextWith(os.Stdout, rep, report.TextOptions{Color: color}); err != nil {
			return err
		}
		fmt.Printf("\n%d rows in %.1f s (%.0f rows/s), state in %s\n", rep.Lines, elapsed.Seconds(), float64(rep.Lines)/elapsed.Seconds(), rep.Store)
	}
	// A file that cannot be taken is not a failed validation: the run
	// did not see its rows. Exit 1, with the flag that fixes it.
	for _, f := range rep.Files {
		if f.NotTaken {
			return fmt.Errorf("%s could not be taken: %s; if its name does not follow the convention, give its layout with --layout full|customer|usage (or --interval-minutes for an interval file); if the layout is wrong, fix the header or the name", f.Name, f.Error)
		}
	}
	if !rep.Pass {
		return &exitError{code: exitValidationFailed, msg: "validation failed: see the checks marked FAIL"}
	}
	return nil
}

// writeOut renders a report into memory and writes it to path, or to
// standard output for "-"; the file is written whole or not at all.
func writeOut(path string, render func(*bytes.Buffer) error) error {
	var b bytes.Buffer
	if err := render(&b); err != nil {
		return err
	}
	if path == "-" {
		_, err := os.Stdout.Write(b.Bytes())
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the report %s: %w; check the folder exists and is writable", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing the report %s: %w", path, err)
	}
	return nil
}

// tuneGC trades memory the validator does not use for fewer collections:
// the rules allocate a little per row while the live heap stays small (the
// Pebble store bounds it), so the default GOGC=100 collects very often; 200 halves that. A
// soft limit of 350 MiB keeps the process under 512 MB however the heap
// grows. GOGC and GOMEMLIMIT in the environment win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(350 << 20)
	}
}
