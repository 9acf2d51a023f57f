package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // --interval-tz works on machines without a zone database

	"github.com/schollz/progressbar/v3"

	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/producers/watch"
	"github.com/usagestream/usagestream/records"
)

// Exit statuses of ingest, documented in the README.
const (
	exitRejected = 3 // every file read to its end, some rows rejected
	exitFailed   = 4 // at least one file could not be read to its end
)

type ingestCmd struct {
	connFlags
	location *time.Location // from IntervalTZ
	bar      *progress      // the progress bar, when shown

	Files          []string      `arg:"" optional:"" type:"existingfile" help:"Billing and interval files (.gz, .zip, or plain .tsv/.txt), and Green Button XML (.xml, .xml.gz)."`
	Watch          string        `name:"watch" type:"existingdir" help:"Watch a drop folder: ingest complete files as they arrive, then move them to done/ or failed/."`
	Force          bool          `name:"force" help:"Ingest files again even when the same bytes were ingested before."`
	Layout         string        `name:"layout" enum:",full,customer,usage" default:"" help:"Layout of files whose name does not follow the convention: full, customer or usage."`
	Utility        string        `name:"utility" env:"USAGESTREAM_UTILITY" help:"Utility code of files whose name does not follow the convention."`
	NetMetering    bool          `name:"net-metering" env:"USAGESTREAM_NET_METERING" help:"Accept negative usage (rule U9)."`
	FutureDays     int           `name:"future-days" env:"USAGESTREAM_FUTURE_DAYS" default:"1" help:"Days a date_to or inactive_date may lie after the timestamp of the file's name before the row is rejected (DATE_AFTER_FILE); -1: no check."`
	ServiceTypes   []string      `name:"service-types" env:"USAGESTREAM_SERVICE_TYPES" default:"E,G,W" help:"Allowed service_type codes."`
	KeepPersonal   bool          `name:"keep-personal" env:"USAGESTREAM_KEEP_PERSONAL" help:"Keep names and addresses in the raw text of rejected rows (redacted by default)."`
	MaxRejects     int64         `name:"max-rejects" env:"USAGESTREAM_MAX_REJECTS" default:"1000" help:"Fail a file once more than this many rows are rejected and --max-reject-share is crossed too; the rest of the file is not read (-1: no limit)."`
	MaxRejectShare float64       `name:"max-reject-share" env:"USAGESTREAM_MAX_REJECT_SHARE" default:"0.5" help:"Fail a file once more than this share of the rows read so far is rejected and --max-rejects is crossed too (1: no limit)."`
	ChunkRows      int           `name:"chunk-rows" env:"USAGESTREAM_CHUNK_ROWS" default:"50000" help:"Rows per Kafka transaction; a rerun after a crash resumes at the last one."`
	Progress       string        `name:"progress" env:"USAGESTREAM_PROGRESS" enum:"auto,always,never" default:"auto" help:"Progress bar: auto shows it when stderr is a terminal."`
	Poll           time.Duration `name:"poll" env:"USAGESTREAM_WATCH_POLL" default:"2s" help:"With --watch: time between scans."`
	Settle         time.Duration `name:"settle" env:"USAGESTREAM_WATCH_SETTLE" default:"30s" help:"With --watch and --ready settle: how long a file's size and modification time must stay unchanged before it is taken (an SFTP upload can pause longer than a poll)."`
	Ready          string        `name:"ready" env:"USAGESTREAM_WATCH_READY" enum:"settle,marker" default:"settle" help:"With --watch: when a file is complete. settle: unchanged for --settle; marker: once the uploader wrote NAME--marker-suffix next to it."`
	MarkerSuffix   string        `name:"marker-suffix" env:"USAGESTREAM_WATCH_MARKER_SUFFIX" default:".done" help:"With --ready marker: the marker file's suffix."`
	Ignore         []string      `name:"ignore" env:"USAGESTREAM_WATCH_IGNORE" placeholder:"PATTERN" help:"With --watch: names never taken (shell patterns, case-insensitive), such as upload temporaries; default .*, *.tmp, *.part, *.partial, *.filepart."`
	DoneDir        string        `name:"done-dir" env:"USAGESTREAM_WATCH_DONE_DIR" help:"With --watch: where ingested files go (a real directory on the drop folder's file system; default DIR/done)."`
	FailedDir      string        `name:"failed-dir" env:"USAGESTREAM_WATCH_FAILED_DIR" help:"With --watch: where failed files and their NAME.error.txt go (default DIR/failed)."`
	MetricsAddr    string        `name:"metrics-addr" env:"USAGESTREAM_INGEST_METRICS_ADDR" placeholder:"HOST:PORT" help:"With --watch: serve /metrics, /healthz and /readyz here (127.0.0.1:8091, say); empty: not served."` // operator tools (ingestmetrics.go)

	IntervalTZ      string   `name:"interval-tz" env:"USAGESTREAM_INTERVAL_TZ" default:"UTC" help:"Time zone (IANA, e.g. America/New_York) of interval rows whose UTC_offset is empty (on its daylight-saving change days such rows are rejected), and of Green Button readings' local times."`
	IntervalMinutes int      `name:"interval-minutes" enum:"0,5,15,30,60,1440" default:"0" help:"Interval length of files whose name does not say interval<mm> (0: read such files as billing files)."`
	Units           []string `name:"units" env:"USAGESTREAM_UNITS" default:"KWH,WH,MWH,KVARH,THERM,CCF,HCF,CF,M3,GAL" help:"Allowed units of interval reads."`
}

func (c *ingestCmd) config(g *Globals, out io.Writer) ingest.Config {
	cfg := ingest.Config{
		Topics:    topics.NewNames(g.Kafka.TopicPrefix),
		Utility:   c.Utility,
		Force:     c.Force,
		ChunkRows: c.ChunkRows,
		Logger:    g.log,
		// Both limits from the flags, so --max-rejects 0 means no rejected
		// row at all (past the share), not the default.
		RejectLimit: &ingest.RejectLimit{MaxRows: c.MaxRejects, MaxShare: c.MaxRejectShare},
		Reader: billing.Options{
			Layout:       records.Layout(c.Layout),
			ServiceTypes: c.ServiceTypes,
			NetMetering:  c.NetMetering,
			KeepPersonal: c.KeepPersonal,
			FutureDays:   &c.FutureDays,
		},
	}
	cfg.Interval = interval.Options{Check: interval.Check{Units: c.Units, ServiceTypes: c.ServiceTypes, Location: c.location}, Minutes: c.IntervalMinutes}
	if c.Progress == "always" || (c.Progress == "auto" && isTerminal(os.Stderr)) {
		c.bar = newProgress(out)
		cfg.Progress = c.bar.update
	}
	return cfg
}

func (c *ingestCmd) Run(ctx context.Context, g *Globals) error {
	if c.Watch == "" && len(c.Files) == 0 {
		return errors.New("name the files to ingest, or a drop folder with --watch DIR")
	}
	if c.MaxRejectShare < 0 || c.MaxRejectShare > 1 {
		return fmt.Errorf("--max-reject-share %g: give a share between 0 and 1 (0.5 is half the rows read; 1 is no limit)", c.MaxRejectShare)
	}
	loc, err := time.LoadLocation(c.IntervalTZ)
	if err != nil {
		return fmt.Errorf("--interval-tz %q: %w; give an IANA zone name such as America/New_York", c.IntervalTZ, err)
	}
	c.location = loc
	in, err := ingest.New(ctx, g.Kafka, c.config(g, os.Stderr))
	if err != nil {
		return err
	}
	if c.Watch != "" {
		return c.watch(ctx, g, in)
	}
	results, runErr := in.Run(ctx, c.Files)
	c.bar.done()
	printSummary(os.Stdout, results)
	if runErr != nil {
		return runErr
	}
	return exitStatus(results)
}

func (c *ingestCmd) watch(ctx context.Context, g *Globals, in *ingest.Ingester) error {
	g.log.Info("watching a drop folder; stop with Ctrl-C", "dir", c.Watch)
	// Metrics of a long-running watch (ingestmetrics.go).
	var m *ingestMetrics
	if c.MetricsAddr != "" {
		reg := newMetricsRegistry()
		m = newIngestMetrics(reg)
		stop, err := serveMetrics(c.MetricsAddr, reg, g.log)
		if err != nil {
			return err
		}
		defer stop()
	}
	return watch.Run(ctx, c.Watch, watchHandler(g, in, m, os.Stdout), watch.Options{Poll: c.Poll, Settle: c.Settle, Ready: watch.Ready(c.Ready), MarkerSuffix: c.MarkerSuffix,
		Ignore: c.Ignore, DoneDir: c.DoneDir, FailedDir: c.FailedDir, Logger: g.log})
}

// watchHandler ingests one file of the drop folder and tells the watcher
// where it goes: a file's own fault (bad content, a name that cannot be read,
// a file that changed while it was read) is Failed and moved to failed/ once;
// anything else (Kafka down, say) is Retry, since the file is not to blame.
func watchHandler(g *Globals, in *ingest.Ingester, m *ingestMetrics, out io.Writer) watch.Handler {
	return func(ctx context.Context, path string) (watch.Outcome, string) {
		res, err := in.File(ctx, path)
		if err != nil {
			// Not the file's fault (Kafka down, say): leave it and retry.
			g.log.Error("ingestion interrupted; the file stays in the drop folder and is retried", "file", watch.DisplayName(res.File), "err", err)
			m.retry()
			return watch.Retry, ""
		}
		m.observe(res)
		printSummary(out, []ingest.Result{res})
		if res.Status == ingest.Failed {
			return watch.Failed, res.Err.Error()
		}
		return watch.Done, ""
	}
}

func exitStatus(results []ingest.Result) error {
	var rejected, failed int64
	for _, r := range results {
		if r.Status == ingest.Skipped {
			// Nothing was published now: its counts are the earlier run's,
			// which reported them with its own exit status.
			continue
		}
		rejected += r.Rejected
		if r.Status == ingest.Failed {
			failed++
		}
	}
	switch {
	case failed > 0:
		return &exitError{code: exitFailed, msg: fmt.Sprintf("%d file(s) failed (unreadable, misnamed, changed while read, or too many rows rejected): see the errors above", failed)}
	case rejected > 0:
		return &exitError{code: exitRejected}
	}
	return nil
}

// printSummary writes one block per file and a total: rows read, published,
// rejected by reason, so an operator can check that the counts reconcile.
func printSummary(w io.Writer, results []ingest.Result) {
	var read, pub, rej int64
	for _, r := range results {
		read += r.Read
		pub += r.Published
		rej += r.Rejected
		rate := ""
		if r.Elapsed > 0 && r.Status != ingest.Skipped && r.Read > r.ResumedFrom {
			rate = fmt.Sprintf(", %.0f rows/s", float64(r.Read-r.ResumedFrom)/r.Elapsed.Seconds())
		}
		if r.Status == ingest.Skipped {
			fmt.Fprintf(w, "%s: skipped: %s\n", watch.DisplayName(r.File), watch.OneLine(r.Note))
			continue
		}
		// Names are quoted when they hold control characters: a file name
		// must not be able to send escape sequences to the terminal.
		layout := ""
		if r.Layout != "" { // a file failed before it was opened has none
			layout = string(r.Layout) + " layout, "
		}
		fmt.Fprintf(w, "%s: %s (%s%s%s)\n", watch.DisplayName(r.File), r.Status, layout, r.Elapsed.Round(time.Millisecond), rate)
		fmt.Fprintf(w, "  rows read %d = published %d + rejected %d\n", r.Read, r.Published, r.Rejected)
		if r.ResumedFrom > 0 {
			fmt.Fprintf(w, "  resumed after line %d, committed by an earlier run\n", r.ResumedFrom-1)
		}
		if len(r.ByCode) > 0 {
			fmt.Fprintf(w, "  rejected by reason: %s\n", formatCounts(r.ByCode))
		}
		if r.Err != nil {
			fmt.Fprintf(w, "  error: %s\n", watch.OneLine(r.Err.Error()))
		}
	}
	if len(results) > 1 {
		fmt.Fprintf(w, "total: %d files, rows read %d = published %d + rejected %d\n", len(results), read, pub, rej)
	}
}

func formatCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// progress draws one bar per file: the share of the file's bytes read, the
// rows read, and the rows per second over the rows read since the bar's
// first report (the first report comes after a whole batch: a rate from the
// file's start would divide thousands of rows by microseconds).
type progress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	file  string
	start time.Time // the first report of the file
	rows0 int64     // rows read by then
	now   func() time.Time
}

// minRateWindow is how long the rows must be counted before a rate is shown.
const minRateWindow = 500 * time.Millisecond

func newProgress(w io.Writer) *progress { return &progress{w: w, now: time.Now} }

func (p *progress) update(u ingest.Progress) {
	if p.bar == nil || p.file != u.File {
		p.done()
		p.file, p.start, p.rows0 = u.File, p.now(), u.Rows
		p.bar = progressbar.NewOptions64(u.Size,
			progressbar.OptionSetDescription(p.describe(u)),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetPredictTime(true),
		)
	}
	// The share first: each call draws the bar (at most every 100 ms), and
	// Describe would draw the old share. The first drawing has both (the
	// description is set when the bar is made).
	_ = p.bar.Set64(min(u.Bytes, u.Size))
	p.bar.Describe(p.describe(u))
}

func (p *progress) describe(u ingest.Progress) string {
	d := fmt.Sprintf("%s %d rows", u.File, u.Rows)
	if el := p.now().Sub(p.start); el >= minRateWindow {
		d += fmt.Sprintf(" %.0f rows/s", float64(u.Rows-p.rows0)/el.Seconds())
	}
	return d
}

// done completes the current file's bar (100%) and clears it; the summary
// follows.
func (p *progress) done() {
	if p == nil || p.bar == nil {
		return
	}
	_ = p.bar.Finish()
	p.bar = nil
}
