// Package ingest publishes billing and interval files to Kafka: every data
// line becomes a BillingRow (or IntervalRead) record or a RejectedRow record, and every file leaves file events
// whose counts reconcile (rows read = published + rejected).
//
// Exactly once per file: rows are produced in Kafka transactions of a few
// thousand rows, and each transaction also carries a checkpoint (the next line
// to read) keyed by the file's SHA-256. A run killed mid-file is fenced by the
// next run (same transactional id), its open transaction aborted, and the new
// run resumes at the last committed checkpoint. Consumers read read_committed.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
	recavro "github.com/usagestream/usagestream/records/avro"
	"github.com/usagestream/usagestream/schemas"
)

// Config of an ingestion.
type Config struct {
	Topics topics.Names
	Reader billing.Options
	// Interval reads interval files (a name with interval<mm>, or any file
	// when Interval.Minutes is set and the name does not conform). Its
	// Check and Location also apply to Green Button files (.xml).
	Interval interval.Options
	// Utility names the utility when a file name does not follow the
	// convention (the name's code wins when it does).
	Utility string
	// Force ingests a file again even when the same bytes were ingested before.
	Force bool
	// ChunkRows and ChunkEvery bound a transaction: whichever comes first
	// commits. Smaller chunks resume closer to a crash; larger ones go faster.
	// Default: 50,000 rows and 1s.
	ChunkRows  int
	ChunkEvery time.Duration
	Workers    int          // Avro encoders. Default: GOMAXPROCS.
	Logger     *slog.Logger // Default: discard.
	// Progress, when set, is called after each batch of rows.
	Progress func(Progress)
	// RejectLimit fails a file that is mostly rejected rows. Default:
	// DefaultRejectLimit().
	RejectLimit *RejectLimit

	// afterCommit is a test hook run after each committed chunk; an error
	// stops the run there without aborting anything, like a crash would.
	afterCommit func(nextLine int64) error
	// beforeCommit runs after the chunk's records were flushed into the open
	// transaction and before it commits; an error stops the run with the
	// transaction left open, as a crash would.
	beforeCommit func(nextLine int64) error
	// beforeRecheck runs once the rows were read, before the file is checked
	// for changes since it was opened.
	beforeRecheck func()
}

// RejectLimit is when a file has too many rejected rows to go on: once more
// than MaxRows rows are rejected AND rejected rows are more than MaxShare of
// the rows read so far, the file fails there (both, so a large file with a
// few bad rows per thousand goes through, and so does a small file that is
// all bad rows but a handful). MaxRows < 0 or MaxShare >= 1: no limit.
type RejectLimit struct {
	MaxRows  int64
	MaxShare float64
}

// DefaultRejectLimit is the limit when none is given: a thousand rejected rows is more than anyone reads
// one by one, and a file more than half rejected is the wrong file, a wrong
// layout or a broken export, not a few bad rows.
func DefaultRejectLimit() RejectLimit { return RejectLimit{MaxRows: 1000, MaxShare: 0.5} }

// Progress reports how far a file is.
type Progress struct {
	File       string
	Bytes      int64 // compressed bytes consumed
	Size       int64 // file size
	Rows       int64 // data lines read so far
	Skipped    int64 // lines skipped because an earlier run committed them
	Generation int
}

// Status is the outcome of one file.
type Status string

const (
	Completed Status = "completed"
	Skipped   Status = "skipped" // same bytes already ingested; nothing published
	Failed    Status = "failed"  // the file itself is unreadable past some line
)

// Result is the outcome of one file.
type Result struct {
	Path        string
	File        string
	SHA256      string
	Size        int64
	Generation  int
	Status      Status
	Layout      records.Layout
	Read        int64
	Published   int64
	Rejected    int64
	ByCode      map[string]int64 // rejected rows per reason code (a row counts under each of its codes)
	ResumedFrom int64            // > 0: an earlier run had committed the lines before this one
	Err         error            // for Failed: what is wrong with the file, naming line and field
	Note        string           // for Skipped: when it was ingested before
	Elapsed     time.Duration
}

// Ingester publishes files. Create it once per command.
type Ingester struct {
	kc        kafkaconf.Config
	cfg       Config
	billing   int // schema ids
	intervals int
	rejected  *recavro.Writer[recavro.RejectedRow]
	files     *recavro.Writer[recavro.FileEvent]
}

// withDefaults returns c with the defaults its fields' docs state in place
// of zero values.
func (c Config) withDefaults() Config {
	if c.ChunkRows <= 0 {
		c.ChunkRows = 50_000
	}
	if c.ChunkEvery <= 0 {
		c.ChunkEvery = time.Second
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RejectLimit == nil {
		lim := DefaultRejectLimit()
		c.RejectLimit = &lim
	}
	return c
}

// New registers the schemas and returns an Ingester.
func New(ctx context.Context, kc kafkaconf.Config, cfg Config) (*Ingester, error) {
	cfg = cfg.withDefaults()
	if s := cfg.RejectLimit.MaxShare; s < 0 || s > 1 || s != s {
		return nil, fmt.Errorf("reject share limit %g: give a share between 0 and 1 (0.5 is half the rows read)", s)
	}
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return nil, err
	}
	reg := serde.NewRegistry(rc)
	in := &Ingester{kc: kc, cfg: cfg}
	err = reg.RegisterAll(ctx,
		serde.Binding{Topic: cfg.Topics.Billing, Schema: schemas.MustText(schemas.BillingRow), Dst: &in.billing},
		serde.Binding{Topic: cfg.Topics.Intervals, Schema: schemas.MustText(schemas.IntervalRead), Dst: &in.intervals},
	)
	if err == nil {
		in.rejected, err = recavro.Register[recavro.RejectedRow](ctx, reg, cfg.Topics.Rejected)
	}
	if err == nil {
		in.files, err = recavro.Register[recavro.FileEvent](ctx, reg, cfg.Topics.Files)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (registry %s)", err, kc.RedactedRegistryURL())
	}
	return in, nil
}

// Run ingests files in the order of docs/data-contract.md §2.5 (see records.Order). It stops
// at the first error that is not the file's own fault (Kafka unreachable, a
// fenced producer): files already done stay done, and a rerun resumes.
func (in *Ingester) Run(ctx context.Context, paths []string) ([]Result, error) {
	var results []Result
	for _, p := range records.Order(paths) {
		res, err := in.File(ctx, p)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// FileSHA256 hashes a file's bytes as received.
func FileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// File ingests one file. A problem with the file's content is a Failed
// result, not an error; an error means the run cannot go on.
func (in *Ingester) File(ctx context.Context, path string) (Result, error) {
	start := time.Now()
	res := Result{Path: path, File: filepath.Base(path)}

	// The name first: it costs nothing, and a file whose utility is unknown
	// is the file's own fault, failed once rather than an error that stops a
	// run (and makes the watcher retry and re-hash it every poll). Nothing is
	// published for it: every record names its utility.
	name, nameErr := records.ParseFileName(res.File)
	utility := in.cfg.Utility
	if nameErr == nil && name.Conforms {
		utility = name.Utility
	}
	if utility == "" {
		res.Status, res.Elapsed = Failed, time.Since(start)
		res.Err = fmt.Errorf("%s: the name does not follow opwr_<utility>_<population>_<version>_<kind>_<yyyyMMddHHmmss>, so the utility is unknown: rename the file or pass --utility (and --layout)", res.File)
		// Debug: the Result says it, and the caller reports each file once.
		in.cfg.Logger.Debug("file failed: its name does not say its utility", "file", res.File)
		return res, nil
	}

	f, err := receive(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	sha, size := f.sha256, f.size
	res.SHA256, res.Size = sha, size

	src := source{utility: utility, file: res.File, sha256: sha}
	log := in.cfg.Logger.With("file", res.File, "sha256", sha[:12])

	cl, err := in.kc.NewClient(ctx,
		kgo.TransactionalID("usagestream-ingest-"+sha[:40]),
		kgo.TransactionTimeout(60*time.Second),
		kgo.MaxBufferedRecords(20_000),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	// Fence: a run of this file killed mid-transaction is aborted now, before
	// its checkpoint is read, so what is read is exactly what was committed.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return res, fmt.Errorf("initializing the transactional producer for %s: %w", res.File, err)
	}
	cp, err := loadCheckpoint(ctx, in.kc, in.cfg.Topics.IngestCheckpoints, sha)
	if err != nil {
		return res, err
	}

	st := &state{generation: 1, byCode: map[string]int64{}}
	switch {
	case cp == nil:
	case cp.Status == statusCompleted && !in.cfg.Force:
		res.Status, res.Generation = Skipped, cp.Generation
		res.Read, res.Published, res.Rejected, res.ByCode = cp.Read, cp.Published, cp.Rejected, cp.RejectedByCode
		res.Note = fmt.Sprintf("the same bytes were ingested on %s (%d published, %d rejected); nothing published; use --force to ingest them again",
			cp.Updated.UTC().Format(time.RFC3339), cp.Published, cp.Rejected)
		res.Elapsed = time.Since(start)
		log.Debug("file already ingested; skipped", "generation", cp.Generation) // the caller reports the Result
		return res, nil
	case cp.Status == statusCompleted:
		st.generation = cp.Generation + 1
	default: // running or failed: resume after what was committed
		st.generation = cp.Generation
		st.resumeLine = cp.NextLine
		st.published, st.rejected = cp.Published, cp.Rejected
		for k, v := range cp.RejectedByCode {
			st.byCode[k] = v
		}
		log.Info("resuming an interrupted ingestion", "after_line", cp.NextLine-1, "published", cp.Published, "rejected", cp.Rejected)
	}
	res.Generation = st.generation

	tx := &txn{in: in, cl: cl, src: src, st: st, name: name, size: size, log: log}
	if in.isInterval(name, nameErr) {
		tx.layout = string(records.LayoutInterval) // the RECEIVED event is sent before the file is opened
	}
	if err := cl.BeginTransaction(); err != nil {
		return res, fmt.Errorf("beginning a transaction: %w", err)
	}
	if st.resumeLine == 0 {
		if err := tx.fileEvent(ctx, "RECEIVED", ""); err != nil {
			return res, err
		}
	}

	rd, layout, openErr := in.open(f, name, nameErr)
	if openErr != nil {
		if !isFileError(openErr) {
			_ = cl.EndTransaction(ctx, kgo.TryAbort)
			return res, openErr
		}
		tx.layout = string(layout)
		return tx.finish(ctx, res, start, 0, in.recheck(f, openErr))
	}
	defer rd.Close()
	res.Layout = layout
	tx.layout = string(layout)
	for _, w := range rd.Warnings() {
		log.Warn(w)
	}

	lines, endErr, err := tx.pump(ctx, rd, path)
	if err != nil {
		return res, err
	}
	if endErr == nil && lines != st.published+st.rejected {
		endErr = fmt.Errorf("counts do not reconcile: %d lines read, %d published + %d rejected; this is a bug, please report it", lines, st.published, st.rejected)
	}
	if hook := in.cfg.beforeRecheck; hook != nil {
		hook()
	}
	return tx.finish(ctx, res, start, lines, in.recheck(f, endErr))
}

// recheck fails a file that changed since it was opened (still being
// written, or replaced), whatever else ended it: its rows as published are
// not the file's content, so it must not be reported completed. endErr, what
// had ended the file otherwise, is kept in the message, since a partial
// upload often also ends in a truncated line or gzip stream.
func (in *Ingester) recheck(f *received, endErr error) error {
	how, err := f.changed()
	if err != nil {
		// The check itself could not be made (the storage failed): do not
		// vouch for the file.
		how = err.Error()
	}
	if how == "" {
		return endErr
	}
	msg := fmt.Sprintf("%s changed while it was read (%s): it is probably still being uploaded; the rows published so far are marked FAILED, "+
		"so upload it again under a temporary name (such as NAME.part) and rename it when complete, or use --ready marker", f.base, how)
	if endErr != nil {
		return fmt.Errorf("%s; reading it had ended with: %w", msg, endErr)
	}
	return errors.New(msg)
}

// state is what one file's ingestion has accounted for so far.
type state struct {
	generation int
	resumeLine int64 // lines before this were committed by an earlier run
	nextLine   int64
	published  int64
	rejected   int64
	byCode     map[string]int64
}

// txn drives the transactions of one file.
type txn struct {
	in      *Ingester
	cl      *kgo.Client
	src     source
	st      *state
	name    records.FileName
	layout  string
	size    int64
	log     *slog.Logger
	sinceTx int
	lastTx  time.Time

	errMu     sync.Mutex
	prodErr   error
	promiseFn func(*kgo.Record, error)

	// free holds the slabs of batches whose records a commit flushed;
	// produced, the batches produced since the last commit (see slab).
	free     chan *slab
	produced []*batch
	kept     int // bytes of the slabs of produced
}

// recycle hands the slabs of the batches produced before a commit to later
// batches: the commit flushed their records, so the producer holds none.
func (t *txn) recycle() {
	for _, b := range t.produced {
		select {
		case t.free <- b.mem:
		default: // enough are free; the collector takes this one
		}
	}
	clear(t.produced)
	t.produced, t.kept = t.produced[:0], 0
}

func (t *txn) promise(_ *kgo.Record, err error) {
	if err != nil {
		t.errMu.Lock()
		if t.prodErr == nil {
			t.prodErr = err
		}
		t.errMu.Unlock()
	}
}

func (t *txn) produce(ctx context.Context, r *kgo.Record) {
	if t.promiseFn == nil {
		t.promiseFn = t.promise // once: a method value passed on allocates each time
	}
	t.cl.Produce(ctx, r, t.promiseFn)
}

func (t *txn) fileEvent(ctx context.Context, status, errText string) error {
	e := fileEvent{
		Status: status, Generation: t.st.generation, Name: t.name, Layout: t.layout, Size: t.size,
		Time: time.Now(), Published: t.st.published, Rejected: t.st.rejected,
		Read: t.st.published + t.st.rejected, ByCode: t.st.byCode, ResumedFrom: t.st.resumeLine, Err: errText,
	}
	if e.Layout == "" {
		e.Layout = string(t.name.Layout)
	}
	v, err := t.in.files.Append(nil, fileEventRecord(e, t.src))
	if err != nil {
		return err
	}
	t.produce(ctx, &kgo.Record{Topic: t.in.cfg.Topics.Files, Key: []byte(t.src.sha256), Value: v})
	return nil
}

// commit ends the open transaction with a checkpoint, then opens the next
// one unless final.
func (t *txn) commit(ctx context.Context, status, errText string, final bool) error {
	cp := Checkpoint{
		SHA256: t.src.sha256, File: t.src.file, Generation: t.st.generation, Status: status,
		NextLine: t.st.nextLine, Read: t.st.published + t.st.rejected, Published: t.st.published,
		Rejected: t.st.rejected, RejectedByCode: t.st.byCode, Error: errText, Updated: time.Now().UTC(),
	}
	v, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	t.produce(ctx, &kgo.Record{Topic: t.in.cfg.Topics.IngestCheckpoints, Key: []byte(t.src.sha256), Value: v})
	flushStart := time.Now()
	if err := t.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flushing records to Kafka: %w", err)
	}
	t.errMu.Lock()
	perr := t.prodErr
	t.errMu.Unlock()
	if perr != nil {
		_ = t.cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("Kafka refused records of %s; the transaction was aborted and a rerun resumes after line %d: %w", t.src.file, t.st.resumeLine, perr)
	}
	if hook := t.in.cfg.beforeCommit; hook != nil {
		if err := hook(t.st.nextLine); err != nil {
			return err
		}
	}
	if err := t.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("committing the transaction for %s up to line %d: %w; a rerun resumes from the last commit", t.src.file, t.st.nextLine-1, err)
	}
	t.log.Debug("chunk committed", "next_line", t.st.nextLine, "rows", t.sinceTx,
		"chunk_time", time.Since(t.lastTx), "flush_and_commit_time", time.Since(flushStart))
	t.sinceTx, t.lastTx = 0, time.Now()
	t.recycle()
	if hook := t.in.cfg.afterCommit; hook != nil {
		if err := hook(t.st.nextLine); err != nil {
			return err
		}
	}
	if final {
		return nil
	}
	if err := t.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	return nil
}

// finish commits the last chunk with the final file event.
func (t *txn) finish(ctx context.Context, res Result, start time.Time, lines int64, endErr error) (Result, error) {
	status, cpStatus, errText := "COMPLETED", statusCompleted, ""
	if endErr != nil {
		status, cpStatus, errText = "FAILED", statusFailed, endErr.Error()
		res.Err = endErr
	}
	if err := t.fileEvent(ctx, status, errText); err != nil {
		return res, err
	}
	if err := t.commit(ctx, cpStatus, errText, true); err != nil {
		return res, err
	}
	res.Status = Completed
	if endErr != nil {
		res.Status = Failed
		t.log.Debug("file failed", "err", endErr, "published", t.st.published, "rejected", t.st.rejected) // the caller reports the Result
	}
	res.Read, res.Published, res.Rejected, res.ByCode = lines, t.st.published, t.st.rejected, t.st.byCode
	if res.Read == 0 {
		res.Read = t.st.published + t.st.rejected
	}
	res.ResumedFrom = t.st.resumeLine
	res.Elapsed = time.Since(start)
	return res, nil
}

// batch is a run of consecutive lines, encoded by a worker. A billing file
// comes as raw lines (text and lines: the worker parses them, see
// billingLines); the other kinds as parsed items (recs).
type batch struct {
	mem   *slab
	recs  []item
	text  string    // the raw lines of a billing batch, one string
	lines []rawLine // where each raw line is in text
	read  int64     // data lines read when the batch was complete

	// Filled by the worker, one per line: the record to produce (nil for a
	// line an earlier run committed) and what the line was.
	out      []*kgo.Record
	meta     []lineMeta
	firstErr error
	done     chan struct{}
}

// rawLine is one billing line as read: text[off:end], or the rejected row
// the reader made of a blank or over-long line.
type rawLine struct {
	off, end int
	line     int64
	rej      *records.Rejected
}

// lineMeta is what the committing loop needs of a line once encoded.
type lineMeta struct {
	line, pos int64             // its line, and its position for checkpoints (see item)
	rejected  *records.Rejected // nil for a published row
}

const batchLines = 512

// slab is the memory a batch's records are carved from. Once a commit has
// flushed every record of a batch, its slab is taken again by a later batch
// (txn.recycle): allocating it afresh per batch made the garbage collector
// run every few megabytes, a fifth of ingest's CPU.
type slab struct {
	recs  []kgo.Record
	buf   []byte
	out   []*kgo.Record
	meta  []lineMeta
	lines []rawLine
}

// maxKept and maxKeptBytes bound the batches kept for their slabs until a
// commit (128 batches of the bench file's lines are about 65,000 lines and
// 45 MB): a larger chunk, or longer lines, let the rest go to the collector.
const (
	maxKept      = 128
	maxKeptBytes = 48 << 20
)

// size is about the bytes of s's buffers.
func (s *slab) size() int {
	return cap(s.buf) + cap(s.recs)*int(reflect.TypeFor[kgo.Record]().Size()) + cap(s.lines)*int(reflect.TypeFor[rawLine]().Size())
}

// getSlab is a slab from free, or a new one.
func getSlab(free chan *slab) *slab {
	select {
	case s := <-free:
		return s
	default:
		return &slab{}
	}
}

// pump reads, encodes (in parallel, order kept) and produces the rows,
// committing a chunk whenever one is due. It returns the data lines read and
// the error that ended the file (nil at a clean end), or an error that stops
// the run.
//
// Three stages run at once, joined by bounded channels: one goroutine reads
// (decompresses and cuts lines), Workers goroutines parse and encode whole
// batches, and this one produces them in file order and commits. A billing
// line is parsed by the worker, not the reader, since parsing and checking
// cost more than reading; the reader only copies the lines of a batch into
// one string.
func (t *txn) pump(ctx context.Context, rd lineReader, path string) (lines int64, endErr error, err error) {
	// rctx stops the reader and encoders on an early return; records are
	// produced with ctx, since they outlive this function in the transaction.
	rctx, cancel := context.WithCancel(ctx)
	// Deep enough for the reader and workers to go on for the few
	// milliseconds a commit waits for the broker (about 10,000 lines).
	depth := 8*t.in.cfg.Workers + 4
	order := make(chan *batch, depth)
	work := make(chan *batch, depth)
	var readEnd error

	// As many slabs as the batches of a transaction and those in the
	// channels and workers: so many are in use before a commit frees any.
	t.free = make(chan *slab, min(t.in.cfg.ChunkRows/batchLines, maxKept)+2*depth+t.in.cfg.Workers+4)
	bl, raw := rd.(billingLines)
	parsers := make([]*billing.Parser, t.in.cfg.Workers)
	if raw {
		for i := range parsers {
			parsers[i] = bl.NewParser() // before the reader starts: it reads r's settings
		}
	}

	go func() {
		defer close(order)
		defer close(work)
		var read int64
		textSize := 64 << 10
		for {
			b := &batch{done: make(chan struct{}), mem: getSlab(t.free)}
			var rerr error
			if raw {
				rerr = bl.readBatch(b, textSize)
				textSize = max(textSize, len(b.text)+len(b.text)/8)
				read += int64(len(b.lines))
			} else {
				b.recs = make([]item, 0, batchLines)
				for len(b.recs) < batchLines {
					r, e := rd.next()
					if e != nil {
						rerr = e
						break
					}
					b.recs = append(b.recs, r)
				}
				read += int64(len(b.recs))
			}
			b.read = read
			if rerr != nil {
				readEnd = rerr // read by the consumer only after order is closed
			}
			if len(b.recs) > 0 || len(b.lines) > 0 {
				select {
				case order <- b:
				case <-rctx.Done():
					return
				}
				select {
				case work <- b:
				case <-rctx.Done():
					return
				}
			}
			if rerr != nil {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	// Cancel before waiting: on an early return the reader may be blocked
	// handing over a batch, and the workers end only once it has.
	defer func() { cancel(); wg.Wait() }()
	for i := 0; i < t.in.cfg.Workers; i++ {
		wg.Add(1)
		go func(p *billing.Parser) {
			defer wg.Done()
			enc := t.newEncoder(p)
			for b := range work {
				enc.encode(b)
				close(b.done)
			}
		}(parsers[i])
	}

	t.lastTx = time.Now()
	var skipped int64
	for b := range order {
		select {
		case <-b.done:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
		if b.firstErr != nil {
			_ = t.cl.EndTransaction(ctx, kgo.TryAbort)
			return 0, nil, b.firstErr
		}
		// One create timestamp per batch, taken here so that it never goes
		// back from one batch to the next: the client would otherwise read
		// the clock for every record.
		now := time.Now().Truncate(time.Millisecond)
		for i, r := range b.out {
			m := &b.meta[i]
			if r == nil { // committed by an earlier run
				skipped++
				continue
			}
			r.Timestamp = now
			t.produce(ctx, r)
			t.sinceTx++
			if m.rejected == nil {
				t.st.published++
			} else {
				t.st.rejected++
				for _, code := range reasonCodes(m.rejected) {
					t.st.byCode[code]++
				}
			}
			t.st.nextLine = m.pos + 1
			if m.rejected != nil {
				if err := t.overRejectLimit(m.line); err != nil {
					// Stop here: the lines after are not read, nor counted.
					// What was read reconciles and is committed with the
					// FAILED event; a rerun with raised limits resumes here.
					return t.st.published + t.st.rejected, err, nil
				}
			}
			if t.sinceTx >= t.in.cfg.ChunkRows {
				if err := t.commit(ctx, statusRunning, "", false); err != nil {
					return 0, nil, err
				}
			}
		}
		if n := b.mem.size(); len(t.produced) < maxKept && t.kept+n <= maxKeptBytes {
			t.produced = append(t.produced, b)
			t.kept += n
		} // else the collector takes it: memory stays bounded whatever --chunk-rows
		if p := t.in.cfg.Progress; p != nil {
			p(Progress{File: t.src.file, Bytes: rd.CompressedBytesRead(), Size: t.size, Rows: b.read, Skipped: skipped, Generation: t.st.generation})
		}
		if t.sinceTx > 0 && time.Since(t.lastTx) >= t.in.cfg.ChunkEvery {
			if err := t.commit(ctx, statusRunning, "", false); err != nil {
				return 0, nil, err
			}
		}
	}
	if errors.Is(readEnd, io.EOF) {
		readEnd = nil
	}
	if readEnd != nil && !isFileError(readEnd) {
		// Not the file's content: an I/O error on this machine.
		_ = t.cl.EndTransaction(ctx, kgo.TryAbort)
		return 0, nil, fmt.Errorf("reading %s: %w", path, readEnd)
	}
	return rd.lines(), readEnd, nil
}

// overRejectLimit fails the file once both limits of RejectLimit are
// crossed: a tiny gzip of blank lines would otherwise become millions of
// rejected records, burying whatever else the rejected topic says.
func (t *txn) overRejectLimit(line int64) error {
	lim := t.in.cfg.RejectLimit
	read := t.st.published + t.st.rejected
	if lim.MaxRows < 0 || t.st.rejected <= lim.MaxRows || float64(t.st.rejected) <= lim.MaxShare*float64(read) {
		return nil
	}
	return fmt.Errorf("file %s: %d of %d rows rejected (over --max-rejects %d and --max-reject-share %g); fix the file or raise the limits "+
		"(reading stopped after line %d: the lines after it were not read; a rerun of the same file with raised limits resumes there)",
		t.src.file, t.st.rejected, read, lim.MaxRows, lim.MaxShare, line)
}

func reasonCodes(rj *records.Rejected) []string {
	seen := make([]string, 0, len(rj.Reasons))
outer:
	for _, r := range rj.Reasons {
		for _, s := range seen {
			if s == r.Code {
				continue outer
			}
		}
		seen = append(seen, r.Code)
	}
	return seen
}

// encoder is one worker's: its billing Parser (nil for other kinds) and the
// row it parses every line into.
type encoder struct {
	t   *txn
	p   *billing.Parser
	row records.BillingRow
	src recavro.BillingSource
}

func (t *txn) newEncoder(p *billing.Parser) *encoder {
	return &encoder{t: t, p: p, src: recavro.BillingSource{Utility: t.src.utility, File: t.src.file, SHA256: t.src.sha256}}
}

// encode makes the records of a batch. The records and their keys and
// values are carved from one allocation each per batch (recs, buf): a
// record is produced into the open transaction and lives until the broker
// has it, so nothing here is reused across batches.
func (e *encoder) encode(b *batch) {
	t := e.t
	n := len(b.recs) + len(b.lines)
	m := b.mem
	b.out = grow(m.out, n)
	b.meta = grow(m.meta, n)
	recs := grow(m.recs, n)
	// The Avro of a billing row is about its line plus the source's names.
	buf := m.buf[:0]
	if size := len(b.text) + n*(len(e.src.File)+len(e.src.SHA256)+len(e.src.Utility)+48); cap(buf) < size {
		buf = make([]byte, 0, size+size/4) // room for the next batches' sizes
	}
	defer func() { m.out, m.meta, m.recs, m.buf = b.out, b.meta, recs, buf }()
	for i := range n {
		var it item
		if b.lines != nil {
			l := &b.lines[i]
			it.rejected = l.rej
			if l.rej == nil {
				it.row = &e.row
				it.row.Line = l.line
			}
		} else {
			it = b.recs[i]
		}
		line := it.line()
		b.meta[i] = lineMeta{line: line, pos: it.position()}
		if b.meta[i].pos < t.st.resumeLine {
			continue
		}
		if b.lines != nil && it.rejected == nil {
			l := &b.lines[i]
			if rej := e.p.Parse(&e.row, b.text[l.off:l.end], l.line); rej != nil {
				it.row, it.rejected = nil, rej
			}
		}
		b.meta[i].rejected = it.rejected
		r := &recs[i]
		var (
			err        error
			start, key = len(buf), ""
		)
		switch {
		case it.row != nil:
			r.Topic, key = t.in.cfg.Topics.Billing, it.row.ServicePointID
			buf, err = recavro.AppendBillingRow(buf, t.in.billing, it.row, e.src)
		case it.read != nil:
			r.Topic, key = t.in.cfg.Topics.Intervals, it.read.ServicePointID
			buf, err = interval.AppendAvro(buf, t.in.intervals, it.read,
				interval.Origin{Utility: t.src.utility, Kind: interval.OriginFile, Name: t.src.file, SHA256: t.src.sha256})
		default:
			r.Topic, key = t.in.cfg.Topics.Rejected, it.rejected.ServicePointID
			if key == "" {
				key = t.src.sha256
			}
			buf, err = t.in.rejected.Append(buf, rejectedRecord(it.rejected, t.layout, t.src))
		}
		if err != nil {
			b.firstErr = fmt.Errorf("%s line %d: %w; this is a bug, please report it", t.src.file, line, err)
			return
		}
		// Full slice expressions: a later append to buf never writes
		// into a record's bytes.
		r.Value = buf[start:len(buf):len(buf)]
		start = len(buf)
		buf = append(buf, key...)
		r.Key = buf[start:len(buf):len(buf)]
		b.out[i] = r
	}
}

// grow is s with length n, zeroed.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
