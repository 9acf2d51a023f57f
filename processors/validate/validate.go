// Package validate checks billing files offline: the same reader
// (producers/billing) and the same rules (processors/rules) as the streaming
// path, in batch, in the order of docs/data-contract.md §2.5, with no Kafka. It fills a
// report.Report and judges it against the policy's validation thresholds.
//
// State is kept in memory for small inputs and in a temporary Pebble store,
// with a bounded cache of decoded states, for large ones, so that memory does
// not grow with the number of service points.
package validate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"golang.org/x/sync/errgroup"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

// Where rule state is kept.
const (
	StoreAuto   = "auto"   // memory up to Options.PebbleAbove bytes of input, else Pebble
	StoreMemory = "memory" // every state in maps
	StorePebble = "pebble" // a temporary Pebble store with a bounded cache
)

// Defaults of Options.
const (
	// DefaultPebbleAbove: 5 MiB of gzip is about 300,000 full-layout rows,
	// whose decoded states take about 150 MB in memory; a million rows would
	// take 450 MB.
	DefaultPebbleAbove = 5 << 20
	// plainRatio is how much larger a plain file is than its gzip, for
	// comparing plain files with DefaultPebbleAbove.
	plainRatio         = 8
	DefaultCacheStates = 5000
)

// Options configures a validation run. The zero value, with a Policy, is
// usable.
type Options struct {
	Policy rules.Policy
	// Reader options; NetMetering is taken from the policy, as the rules do.
	Reader billing.Options
	// Interval is the interval reader's options. Interval files (named
	// interval<mm>, or any name off the convention when Interval.Minutes
	// is set) are read with it and run through the interval rules (I1-I3,
	// I5-I7), with the billing files of the run for the sum check (I6).
	Interval interval.Options
	// Store is StoreAuto (""), StoreMemory or StorePebble.
	Store string
	// PebbleAbove is the total size of the input files, in bytes of gzip or
	// zip (a plain file counts an eighth of its size), above which StoreAuto
	// uses Pebble; 0 means DefaultPebbleAbove.
	PebbleAbove int64
	// TempDir is where the Pebble store's temporary folder goes ("" is the
	// system's); it is removed at the end.
	TempDir string
	// CacheStates is how many states per stage the Pebble store keeps
	// decoded; 0 means DefaultCacheStates.
	CacheStates int
	// Examples is how many findings the report keeps per group (rule, kind
	// and code) and how many subjects per program it lists; 0 keeps all.
	Examples int
	// Progress, when set, is called after every batch of rows with the rows
	// read so far (all files).
	Progress func(rows int64)
	Logger   *slog.Logger
	// Version is the usagestream version the report names; PolicyFile the
	// policy file Policy was loaded from ("" for the built-in default),
	// whose name and SHA-256 the report names. Now is the clock of the
	// report's time (nil: time.Now).
	Version    string
	PolicyFile string
	Now        func() time.Time
	// Rejected, when set, is called for every rejected row, in file and
	// line order, with the file's name and layout (a RejectedWriter's
	// Write): the rows to send back, every one, not the report's examples.
	Rejected func(file, layout string, rj *records.Rejected)
	// Phase is PhaseSample (""), PhaseHistorical or PhaseIncremental: the
	// checks each phase adds to the policy's. StateFrom is the folder an
	// earlier run wrote with SaveState: an incremental run continues it.
	// SaveState is the folder to write this run's service point states to
	// (replaced whole).
	Phase     string
	StateFrom string
	SaveState string
	// serial runs every stage on one goroutine, row after row (tests).
	serial bool
}

// Run validates files, taken in the order of docs/data-contract.md §2.5. A file that
// cannot be read to its end is a finding of the report (it fails the "files"
// check); an error is returned only when the run itself cannot go on: a path
// that does not exist, a cancelled context, a failing temporary store.
func Run(ctx context.Context, paths []string, opts Options) (*report.Report, error) {
	if len(paths) == 0 {
		return nil, errors.New("validate: no files given; name one or more billing or interval files")
	}
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("validate: %w; check the path", err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("validate: %s is a folder; name the billing files in it", p)
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".gz", ".zip":
			total += st.Size()
		default:
			total += st.Size() / plainRatio
		}
	}
	if err := checkPhase(opts); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// The inputs are hashed beside the run: reading a file once more
	// costs little next to parsing it.
	var info report.RunInfo
	hashed := make(chan error, 1)
	infoOpts := opts // a copy: Run changes opts below
	go func() { hashed <- runInfo(&info, paths, infoOpts) }()
	opts.Reader.NetMetering = opts.Policy.NetMetering
	start := time.Now()
	r, err := validateFiles(ctx, paths, opts, total, true)
	if errors.Is(err, errStateDropped) {
		// A key came back after its state had left memory (the rows of a
		// service point, premise or customer apart in the file): the run
		// starts again, writing states out. Nothing was reported before,
		// and both ways give the same report.
		opts.Logger.Info("validate: a service point, premise or customer came back after its state left memory; validating again with states written to the temporary store (files grouped by service point do not need it)",
			"seconds", time.Since(start).Seconds())
		r, err = validateFiles(ctx, paths, opts, total, false)
	}
	if herr := <-hashed; err == nil {
		err = herr
	}
	if err != nil {
		return nil, err
	}
	r.rep.Run = info
	r.finish()
	opts.Logger.Debug("validated", "files", len(paths), "rows", r.rep.Lines, "store", r.rep.Store,
		"seconds", time.Since(start).Seconds(), "pass", r.rep.Pass)
	return r.rep, nil
}

// validateFiles takes the files through the rules and returns the run, its
// report not finished. With mayDrop, a Pebble store lets states that leave
// memory go (openStateStores), when one billing file is read, no saved
// state is loaded (a second file, or loaded states, bring keys back by
// design) and no rejected row is handed out as it is found (a second run
// would hand it out again). A run that meets a dropped key fails with
// errStateDropped.
func validateFiles(ctx context.Context, paths []string, opts Options, total int64, mayDrop bool) (*run, error) {
	r := newRun(opts)
	chain := rules.NewChain(opts.Policy)
	r.chain = chain
	store := opts.Store
	if store == "" || store == StoreAuto {
		store = StoreMemory
		limit := opts.PebbleAbove
		if limit == 0 {
			limit = DefaultPebbleAbove
		}
		if total > limit {
			store = StorePebble
		}
	}
	r.rep.Store = store
	r.rep.Phase = cmp.Or(opts.Phase, PhaseSample)
	var billingPaths, intervalPaths []string
	for _, p := range records.Order(paths) {
		if isInterval(p, opts.Interval) {
			intervalPaths = append(intervalPaths, p)
		} else {
			billingPaths = append(billingPaths, p)
		}
	}
	if opts.SaveState != "" {
		saver, err := openStateSaver(opts.SaveState)
		if err != nil {
			return nil, err
		}
		r.saver = saver
		defer saver.close() // closed below with its error checked; again here after a failure
	}
	var finish func()
	switch store {
	case StoreMemory:
		sps := rules.NewMemoryStore[rules.ServicePoint]()
		chain.ServicePoints = sps
		finish = func() { sps.Each(func(k string, sp *rules.ServicePoint) { r.summarise(k, sp) }) }
	case StorePebble:
		dir, err := os.MkdirTemp(opts.TempDir, "usagestream-validate-")
		if err != nil {
			return nil, fmt.Errorf("validate: creating the temporary store (set --temp-dir to a writable folder): %w", err)
		}
		defer os.RemoveAll(dir)
		n := opts.CacheStates
		if n == 0 {
			n = DefaultCacheStates
		}
		drop := mayDrop && len(billingPaths) == 1 && opts.StateFrom == "" && opts.Rejected == nil
		st, err := openStateStores(dir, n, throwawayOptions, r.summarise, drop)
		if err != nil {
			return nil, err
		}
		defer st.close()
		chain.ServicePoints, chain.Sites, chain.Customers = st.sps, st.sites, st.custs
		finish = st.finish
	default:
		return nil, fmt.Errorf("validate: unknown store %q; use auto, memory or pebble", opts.Store)
	}
	if opts.StateFrom != "" {
		r.loaded = newHashTab[struct{}]()
		if err := r.loadState(opts.StateFrom, chain.ServicePoints); err != nil {
			return nil, err
		}
	}
	if len(intervalPaths) > 0 {
		r.iv = &intervals{points: map[string]*rules.IntervalPoint{}}
	}
	if err := r.files(ctx, billingPaths); err != nil {
		return nil, err
	}
	finish()
	if err := r.intervalFiles(ctx, intervalPaths); err != nil {
		return nil, err
	}
	if r.saver != nil {
		if err := r.saver.close(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// throwawayOptions tune Pebble for a store that lives for one run: a state
// is written once when evicted, and read back only when its key comes again
// (a later file; for one full file, never). There is no write-ahead log and
// no block compression: compressing every state as it is flushed and again
// as it is compacted was a tenth of the CPU of a 5-million-row run, for
// tables deleted at the end. Compactions stay: without them every flush
// adds a table that each read back must look into, which made a customer
// file followed by its usage file (every state read back once) take a
// quarter more CPU, and L0 would grow without bound on a long run.
func throwawayOptions() *pebble.Options {
	po := &pebble.Options{
		DisableWAL:   true, // nothing to recover after a crash
		Cache:        pebble.NewCache(8 << 20),
		MemTableSize: 8 << 20, // per store: validate opens three (openStateStores)
		Logger:       quietLogger{},
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10) // a state read back is looked up by key
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	return po
}

// quietLogger keeps Pebble's informational lines out of the report's output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...) // Pebble's contract: Fatalf does not return
}

// msg is what the reading goroutine hands to the rules: the start of a file,
// a batch of its records, or its end.
type msg struct {
	file     *report.File
	notTaken bool // the file could not be opened: no row of it read
	recs     []billing.Record
	rows     *rowBatch // what recs' rows were parsed into
	end      bool
	stats    filereader.Stats
	err      error // the file could not be read to its end
}

const batchRows = 1024

// rowBatch is a batch of records and the rows they were parsed into, which
// stage 1 gives back to the reading goroutine once it has applied them (no
// later stage sees a row): a new row for each of millions of lines was a
// third of the bytes a run allocated.
type rowBatch struct {
	recs []billing.Record
	rows [batchRows]records.BillingRow
}

// files runs four goroutines, one after the other like a pipeline, so
// that on two cores the work overlaps: one reads the files (decompression,
// parsing, distinct ids), one runs stage 1 (service points) and the report's
// bookkeeping of its events, one the premise stage, and one stage 2
// (customers), keeping the eligibility it produces. Each keeps its own
// part of the run (see run), and batches go between them in input order, so
// the result is the one of a single goroutine (filesSerial, which the tests
// compare it with).
func (r *run) files(ctx context.Context, paths []string) error {
	if r.opts.serial {
		return r.filesSerial(ctx, paths)
	}
	g, ctx := errgroup.WithContext(ctx)
	recs := make(chan msg, 8)
	r.freeRows = make(chan *rowBatch, cap(recs)+2)
	members := make(chan []rules.Membership, 8)
	// Batches of memberships go back to stage 1 once the later stages are
	// done with them: growing a new slice for every batch allocated more
	// than the rules did.
	free := make(chan []rules.Membership, cap(members)+2)
	g.Go(func() error {
		defer close(recs)
		return r.read(ctx, paths, recs)
	})
	g.Go(func() error {
		defer close(members)
		var cur *report.File
		for m := range recs {
			switch {
			case m.file != nil:
				cur, r.layout = m.file, m.file.Layout
			case m.end:
				r.endFile(cur, m.stats, m.err, m.notTaken)
			default:
				var out []rules.Membership
				select {
				case out = <-free:
				default:
				}
				for i := range m.recs {
					var err error
					if out, err = r.record(cur.Name, &m.recs[i], out); err != nil {
						return err
					}
				}
				if m.rows != nil {
					select {
					case r.freeRows <- m.rows:
					default:
					}
				}
				if r.opts.Progress != nil {
					r.opts.Progress(r.rows)
				}
				if len(out) == 0 {
					continue
				}
				if !send(ctx, members, out) {
					return ctx.Err()
				}
			}
		}
		return nil
	})
	// The premise stage's anomalies (C4) are found on its goroutine and
	// become findings after all are done: findings belong to stage 1's.
	var later []rules.Anomaly
	inputs := make(chan []rules.CustomerInput, 8)
	freeInputs := make(chan []rules.CustomerInput, cap(inputs)+2)
	g.Go(func() error {
		defer close(inputs)
		for ms := range members {
			var ins []rules.CustomerInput
			select {
			case ins = <-freeInputs:
			default:
			}
			var err error
			if ins, later, err = r.premiseStage(ms, ins, later); err != nil {
				return err
			}
			select {
			case free <- ms[:0]:
			default:
			}
			if len(ins) == 0 {
				continue
			}
			if !send(ctx, inputs, ins) {
				return ctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		for ins := range inputs {
			if err := r.customerStage(ins); err != nil {
				return err
			}
			clear(ins) // the states keep what they need; drop the rest
			select {
			case freeInputs <- ins[:0]:
			default:
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	r.stage1(rules.Stage1Output{Anomalies: later})
	return nil
}

// filesSerial takes each row through every stage before the next row: the
// simple form of files, the reference its pipeline is tested against.
func (r *run) filesSerial(ctx context.Context, paths []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recs := make(chan msg)
	read := make(chan error, 1)
	go func() {
		defer close(recs)
		read <- r.read(ctx, paths, recs)
	}()
	var (
		cur   *report.File
		ms    []rules.Membership
		ins   []rules.CustomerInput
		later []rules.Anomaly
		err   error
	)
	for m := range recs {
		switch {
		case m.file != nil:
			cur, r.layout = m.file, m.file.Layout
		case m.end:
			r.endFile(cur, m.stats, m.err, m.notTaken)
		default:
			for i := range m.recs {
				if ms, err = r.record(cur.Name, &m.recs[i], ms[:0]); err != nil {
					return err
				}
				if ins, later, err = r.premiseStage(ms, ins[:0], later); err != nil {
					return err
				}
				if err = r.customerStage(ins); err != nil {
					return err
				}
			}
		}
	}
	if err := <-read; err != nil {
		return err
	}
	r.stage1(rules.Stage1Output{Anomalies: later})
	return nil
}

// premiseStage runs memberships through the premise stage, in order, appending
// the stage 2 inputs they cause to ins and the premise's anomalies (C4) to
// later. With customerStage it is rules.Chain.ApplyMemberships cut in two:
// the premise stage touches only Sites and stage 2 only Customers, so the
// two run on goroutines of their own as long as stage 2 gets the inputs in
// order. The premise stage is the costliest of the rules (a snapshot and
// two fingerprints per membership), and one goroutine for both stages was
// the slowest of the pipeline.
func (r *run) premiseStage(ms []rules.Membership, ins []rules.CustomerInput, later []rules.Anomaly) ([]rules.CustomerInput, []rules.Anomaly, error) {
	c := r.chain
	for _, m := range ms {
		site, err := c.Sites.Load(m.PremiseID)
		if err != nil {
			return ins, later, fmt.Errorf("validate: %s line %d: load premise state: %w", m.Source.File, m.Source.Line, err)
		}
		so := site.Apply(c.Policy, m)
		later = append(later, so.Anomalies...)
		if err := c.Sites.Save(m.PremiseID, site); err != nil {
			return ins, later, fmt.Errorf("validate: %s line %d: save premise state: %w", m.Source.File, m.Source.Line, err)
		}
		ins = append(ins, so.Inputs...)
	}
	return ins, later, nil
}

// customerStage runs stage 2 inputs through the customer stage, in order,
// and keeps the eligibility they produce.
func (r *run) customerStage(ins []rules.CustomerInput) error {
	c := r.chain
	for i := range ins {
		in := &ins[i]
		cu, err := c.Customers.Load(in.CustomerID)
		if err != nil {
			return fmt.Errorf("validate: %s line %d: load customer state: %w", in.Cause.File, in.Cause.Line, err)
		}
		for _, e := range cu.Receive(c.Policy, *in, in.Cause) {
			r.eligibility(e)
		}
		if err := c.Customers.Save(in.CustomerID, cu); err != nil {
			return fmt.Errorf("validate: %s line %d: save customer state: %w", in.Cause.File, in.Cause.Line, err)
		}
	}
	return nil
}

// read reads every file in turn and sends its records in batches, each file
// between a message with its name and one with its counts.
func (r *run) read(ctx context.Context, paths []string, ch chan<- msg) error {
	for _, p := range paths {
		f := &report.File{Name: filepath.Base(p)}
		rd, err := billing.Open(p, r.opts.Reader)
		if err != nil {
			if !send(ctx, ch, msg{file: f}) || !send(ctx, ch, msg{end: true, err: err, notTaken: true}) {
				return ctx.Err()
			}
			continue
		}
		f.Layout, f.Warnings = string(rd.Layout()), rd.Warnings()
		if !send(ctx, ch, msg{file: f}) {
			rd.Close()
			return ctx.Err()
		}
		rb := r.rowBatch()
		for {
			rec, err := rd.NextInto(&rb.rows[len(rb.recs)])
			if err != nil {
				if len(rb.recs) > 0 && !send(ctx, ch, msg{recs: rb.recs, rows: rb}) {
					rd.Close()
					return ctx.Err()
				}
				if errors.Is(err, io.EOF) {
					err = nil
				}
				ok := send(ctx, ch, msg{end: true, stats: rd.Stats(), err: err})
				rd.Close()
				if !ok {
					return ctx.Err()
				}
				break
			}
			if row := rec.Row; row != nil {
				// Distinct ids are counted here, off the goroutines that
				// run the rules; the sets are read after the run.
				r.count(r.customers, &r.lastCustomer, row.CustomerID)
				r.count(r.premises, &r.lastPremise, row.PremiseID)
				r.count(r.accounts, &r.lastAcct, row.AccountID)
				r.count(r.points, &r.lastPoint, row.ServicePointID)
			}
			rb.recs = append(rb.recs, rec)
			if len(rb.recs) == batchRows {
				if !send(ctx, ch, msg{recs: rb.recs, rows: rb}) {
					rd.Close()
					return ctx.Err()
				}
				rb = r.rowBatch()
			}
		}
	}
	return nil
}

// rowBatch is an empty batch: one stage 1 gave back, else a new one.
func (r *run) rowBatch() *rowBatch {
	select {
	case rb := <-r.freeRows:
		rb.recs = rb.recs[:0]
		return rb
	default:
		return &rowBatch{recs: make([]billing.Record, 0, batchRows)}
	}
}

// run is one validation's accumulated findings and counts.
type run struct {
	opts Options
	// freeRows takes the batches stage 1 is done with back to the reader
	// (nil in the serial run: rowBatch then always makes a new one).
	freeRows chan *rowBatch
	chain    *rules.Chain
	layout   string     // of the file whose rows are being judged
	iv       *intervals // nil when the run has no interval file
	saver    *stateSaver
	// loaded holds the hashes of the service points an incremental run's
	// saved state gave (nil in other phases).
	loaded *hashTab[struct{}]
	// noUsage holds the service points with an account and no usage.
	noUsage *idList
	rep     *report.Report
	rows    int64

	seed                                  maphash.Seed
	customers, premises, accounts, points *hashTab[struct{}]
	lastCustomer, lastPremise, lastAcct   string
	lastPoint                             string

	first, last dates.Date
	months      monthCounts

	codeRule  map[string]string // reject code -> its rule, as the reader gave it
	groups    map[groupKey]*report.RuleFindings
	offenders map[string]*report.Offender
	// raised holds the anomalies raised and not cleared so far, by what a
	// clear names them by (openKey); resolvedShown counts Report.Resolved
	// entries per group, for the Examples cap.
	raised        map[openKey][]report.Finding
	resolvedShown map[groupKey]int

	// summaries of service point states, by hash of the id (see summarise),
	// and the ids of those short of history.
	history *hashTab[spSummary]
	short   *idList // months of history

	// pending is, per service point, the rejected row that its next
	// accepted row may show knock-on findings of (a gap where the
	// rejected period was).
	pending map[string]report.Cause
	// keptRejected locates the rejected-row findings the report keeps, by
	// row, to list under them the findings they lead to.
	keptRejected map[fileLine][]keptRef
	// ivRejected is, per service point and local day, a rejected interval
	// read: a gap found on that day follows from it.
	ivRejected map[spDay]report.Cause
	knockOns   map[[2]string]*report.KnockOn
	causes     map[fileLine]struct{} // rejected rows with knock-on findings
	// rowsWith are the rows with an error or a warning; offenderRows the
	// same per service point.
	rowsWith     map[fileLine]struct{}
	offenderRows map[string]map[fileLine]struct{}

	// Final eligibility by hash of (customer, premise): per program, a bit per
	// reason (reasonBits) and evalBit once evaluated.
	programs []string // rules.Programs(), in their order
	// subjects holds where in masks a subject's masks start: one flat
	// slice, no pointer per subject for the collector to follow.
	subjects   map[uint64]uint32
	masks      []uint32
	reasonBits map[[2]string]int
	reasonList [][2]string
	examples   []map[[2]string]report.Subject // by program
}

type keptRef struct {
	group groupKey
	i     int
}

// maxLedTo bounds the findings listed under one rejected row.
const maxLedTo = 20

type spDay struct {
	sp  string
	day dates.Date
}

type fileLine struct {
	file string
	line int64
}

type monthFuel struct {
	month int32 // year*12 + month-1
	fuel  string
}

// monthCounts counts rows by month and fuel: a slice per fuel (a file has
// a handful), indexed by month from the earliest seen, so that counting a
// row neither hashes nor looks up a map (a map was 2% of a run's CPU).
// Dates are checked by the reader, so the months span a few thousand at
// most.
type monthCounts struct {
	fuels   []string
	started bool
	base    int32     // the month of index 0
	n       [][]int64 // per fuel, per month from base
}

func (c *monthCounts) add(month int32, fuel string) {
	f := slices.Index(c.fuels, fuel)
	if f < 0 {
		f = len(c.fuels)
		c.fuels = append(c.fuels, fuel)
		c.n = append(c.n, nil)
	}
	if !c.started {
		c.base, c.started = month, true
	}
	if month < c.base {
		shift := int(c.base - month)
		for g := range c.n {
			c.n[g] = append(make([]int64, shift, shift+len(c.n[g])), c.n[g]...)
		}
		c.base = month
	}
	i := int(month - c.base)
	if i >= len(c.n[f]) {
		c.n[f] = append(c.n[f], make([]int64, i+1-len(c.n[f]))...)
	}
	c.n[f][i]++
}

// each calls fn for every month and fuel with a row.
func (c *monthCounts) each(fn func(k monthFuel, n int64)) {
	for f, ns := range c.n {
		for i, n := range ns {
			if n > 0 {
				fn(monthFuel{c.base + int32(i), c.fuels[f]}, n)
			}
		}
	}
}

type groupKey struct{ kind, rule, code string }

// openKey is what a cleared anomaly shares with the one it clears: its rule
// and code, and its service point; C4 is the premise's, and a different
// service point may clear it.
type openKey struct{ rule, code, scope string }

func openKeyOf(f report.Finding) openKey {
	if f.Code == rules.AnomalyTwoCustomersActive {
		return openKey{f.Rule, f.Code, "premise\x00" + f.PremiseID}
	}
	return openKey{f.Rule, f.Code, f.ServicePointID}
}

type spSummary struct {
	months   int32
	usage    bool
	inactive bool
}

const (
	evalBit  = 1 << 31
	otherBit = 30 // reasons past the 30th distinct (code, rule) pair share it
)

func newRun(opts Options) *run {
	r := &run{
		opts:      opts,
		rep:       &report.Report{ExamplesPerGroup: opts.Examples, OpenByServicePoint: map[string]map[string]int64{}},
		seed:      maphash.MakeSeed(),
		customers: newHashTab[struct{}](), premises: newHashTab[struct{}](),
		accounts: newHashTab[struct{}](), points: newHashTab[struct{}](),
		codeRule:      map[string]string{},
		groups:        map[groupKey]*report.RuleFindings{},
		raised:        map[openKey][]report.Finding{},
		resolvedShown: map[groupKey]int{},
		offenders:     map[string]*report.Offender{},
		history:       newHashTab[spSummary](),
		short:         newIDList(),
		noUsage:       newIDList(),
		pending:       map[string]report.Cause{},
		ivRejected:    map[spDay]report.Cause{},
		keptRejected:  map[fileLine][]keptRef{},
		knockOns:      map[[2]string]*report.KnockOn{},
		causes:        map[fileLine]struct{}{},
		rowsWith:      map[fileLine]struct{}{},
		offenderRows:  map[string]map[fileLine]struct{}{},
		programs:      rules.Programs(),
		subjects:      map[uint64]uint32{},
		reasonBits:    map[[2]string]int{},
	}
	r.examples = make([]map[[2]string]report.Subject, len(r.programs))
	for i := range r.examples {
		r.examples[i] = map[[2]string]report.Subject{}
	}
	return r
}

// count adds id to a distinct-count set. Sets hold 64-bit hashes, not the
// ids: memory stays at a few bytes per entity, and a collision among a
// million ids has a chance near 1 in 10^7.
func (r *run) count(set *hashTab[struct{}], last *string, id string) {
	if id == "" || id == *last {
		return
	}
	*last = id
	set.put(maphash.String(r.seed, id), struct{}{})
}

// record runs one record through stage 1 and keeps what the report needs of
// it, appending the memberships it caused, for the later stages, to ms.
func (r *run) record(file string, rec *billing.Record, ms []rules.Membership) ([]rules.Membership, error) {
	r.rows++
	if rj := rec.Rejected; rj != nil {
		r.rejected(file, rj)
		return ms, nil
	}
	row := rec.Row
	out, err := r.chain.ApplyRow(row, rules.Source{File: file, Line: row.Line})
	if err != nil {
		return ms, fmt.Errorf("validate: %s line %d: %w", file, row.Line, err)
	}
	if r.iv != nil {
		r.intervalBilling(file, row)
	}
	if row.Layout != records.LayoutCustomer {
		if start := row.PeriodStart(); r.first == 0 || start < r.first {
			r.first = start
		}
		r.last = max(r.last, row.DateTo)
		fuel := row.ServiceType
		if fuel == "" { // a usage row: the service point's type comes from its customer row
			sp, err := r.chain.ServicePoints.Load(row.ServicePointID)
			if err != nil {
				return ms, fmt.Errorf("validate: %s line %d: %w", file, row.Line, err)
			}
			fuel = sp.ServiceType
		}
		if fuel == "" {
			fuel = "?"
		}
		y, m, _ := row.DateTo.Civil()
		r.months.add(int32(y*12+int(m)-1), fuel)
	}
	r.stage1(out)
	if len(r.pending) > 0 {
		delete(r.pending, row.ServicePointID) // its next row has been judged
	}
	return append(ms, out.Memberships...), nil
}

// causeOf is the rejected row an anomaly follows from, if any: a gap (U2)
// at the first accepted row of a service point after one of its rows was
// rejected in the same file; a gap in interval reads (I3) on a day whose
// read was rejected.
func (r *run) causeOf(a *rules.Anomaly) *report.Cause {
	switch a.Code {
	case rules.AnomalyUsageGap:
		if c, ok := r.pending[a.ServicePointID]; ok && c.File == a.Source.File {
			return &c
		}
	case rules.AnomalyIntervalGap, rules.AnomalyIntervalGapDays:
		if len(r.ivRejected) == 0 {
			return nil
		}
		for d := a.EffectiveDate; d <= max(a.Until, a.EffectiveDate) && d < a.EffectiveDate+62; d++ {
			if c, ok := r.ivRejected[spDay{a.ServicePointID, d}]; ok {
				return &c
			}
		}
	}
	return nil
}

// rejected records a finding per reason of a rejected row.
func (r *run) rejected(file string, rj *records.Rejected) {
	if r.opts.Rejected != nil {
		r.opts.Rejected(file, r.layout, rj)
	}
	if rj.ServicePointID != "" && len(rj.Reasons) > 0 {
		r.pending[rj.ServicePointID] = report.Cause{File: file, Line: rj.Line, Rule: rj.Reasons[0].Rule, Code: rj.Reasons[0].Code}
	}
	for _, rs := range rj.Reasons {
		r.codeRule[rs.Code] = rs.Rule
		r.add(report.Finding{Kind: report.KindRejected, Rule: rs.Rule, Code: rs.Code, Severity: report.SeverityError,
			File: file, Line: rj.Line, ServicePointID: rj.ServicePointID, Field: rs.Field, Message: rs.Message})
	}
}

// valueCharge shows a period's usage and charge: a correction may change
// either, so a message names both.
func valueCharge(v float64, c records.NullFloat) string {
	if !c.Valid {
		return fmt.Sprintf("value %g, no charge", v)
	}
	return fmt.Sprintf("value %g, charge %g", v, c.Value)
}

func day(d dates.Date) string {
	if d == 0 {
		return ""
	}
	return d.Time().Format(time.DateOnly)
}

// stage1 turns stage 1 events into findings.
func (r *run) stage1(o rules.Stage1Output) {
	for _, c := range o.Corrections {
		r.add(report.Finding{Kind: report.KindCorrection, Rule: c.Rule, Code: c.Kind, Severity: report.SeverityWarning,
			File: c.Source.File, Line: c.Source.Line, ServicePointID: c.ServicePointID, Date: day(c.NewDateTo.AddDays(1 - int(c.NewDuration))),
			Message: fmt.Sprintf("usage of the %d days to %s (%s) replaced by %s over the %d days to %s",
				c.Duration, day(c.DateTo), valueCharge(c.OldValue, c.OldCharge), valueCharge(c.NewValue, c.NewCharge), c.NewDuration, day(c.NewDateTo))})
	}
	// A refused or changed account (A3, A5, A8) is both an account event
	// and an anomaly of the same rule at the same row: one finding, the
	// anomaly, whose clearing the report follows.
	type same struct {
		rule, sp, file string
		line           int64
	}
	var anomalies []same
	for _, a := range o.Anomalies {
		sev := report.SeverityWarning
		if a.Cleared {
			sev = report.SeverityInfo
		}
		f := report.Finding{Kind: report.KindAnomaly, Rule: a.Rule, Code: a.Code, Severity: sev, Cleared: a.Cleared,
			File: a.Source.File, Line: a.Source.Line, ServicePointID: a.ServicePointID, AccountID: a.AccountID,
			CustomerID: a.CustomerID, PremiseID: a.PremiseID, Date: day(a.EffectiveDate), Message: a.Message}
		if !a.Cleared {
			f.CausedBy = r.causeOf(&a)
		}
		if !a.Cleared {
			anomalies = append(anomalies, same{a.Rule, a.ServicePointID, a.Source.File, a.Source.Line})
		}
		r.add(f)
	}
	for _, e := range o.AccountEvents {
		sev := report.SeverityInfo
		switch e.Type {
		case rules.EventReactivationRefused, rules.EventDeletionRefused, rules.EventActiveDateChanged:
			sev = report.SeverityWarning
			if slices.Contains(anomalies, same{e.Rule, e.ServicePointID, e.Source.File, e.Source.Line}) {
				continue
			}
		}
		msg := e.Detail
		if msg == "" {
			msg = "account " + e.AccountID + " " + e.Type
		}
		r.add(report.Finding{Kind: report.KindAccount, Rule: e.Rule, Code: e.Type, Severity: sev,
			File: e.Source.File, Line: e.Source.Line, ServicePointID: e.ServicePointID, AccountID: e.AccountID,
			CustomerID: e.CustomerID, PremiseID: e.PremiseID, Date: day(e.Date), Message: msg})
	}
}

// add counts a finding in its group, keeps it while the group has room, and
// counts errors and warnings against its service point.
func (r *run) add(f report.Finding) {
	k := groupKey{f.Kind, f.Rule, f.Code}
	g := r.groups[k]
	if g == nil {
		g = &report.RuleFindings{Rule: f.Rule, Kind: f.Kind, Code: f.Code, Severity: f.Severity, Findings: []report.Finding{}}
		r.groups[k] = g
	}
	g.Count++
	if f.Cleared {
		g.Cleared++
		r.resolve(k, g, f)
	} else if f.Severity != report.SeverityInfo {
		g.Severity = f.Severity // a group of raised anomalies is a warning group
		g.Open++
		if f.Kind == report.KindAnomaly {
			ok := openKeyOf(f)
			r.raised[ok] = append(r.raised[ok], f)
		}
	}
	if r.opts.Examples == 0 || len(g.Findings) < r.opts.Examples {
		if f.Kind == report.KindRejected {
			// Kept, so the findings it leads to can be listed under it.
			at := fileLine{f.File, f.Line}
			r.keptRejected[at] = append(r.keptRejected[at], keptRef{k, len(g.Findings)})
		}
		g.Findings = append(g.Findings, f)
	}
	if f.Severity == report.SeverityInfo || f.Cleared {
		return
	}
	r.continuity(f)
	t := &r.rep.Totals
	if f.Severity == report.SeverityError {
		t.Errors++
	} else {
		t.Warnings++
	}
	at := fileLine{f.File, f.Line}
	r.rowsWith[at] = struct{}{}
	ob := r.rep.OpenByServicePoint[f.ServicePointID]
	if ob == nil {
		ob = map[string]int64{}
		r.rep.OpenByServicePoint[strings.Clone(f.ServicePointID)] = ob
	}
	ob[f.Rule]++
	if c := f.CausedBy; c != nil {
		for _, ref := range r.keptRejected[fileLine{c.File, c.Line}] {
			rf := &r.groups[ref.group].Findings[ref.i]
			if len(rf.LedTo) < maxLedTo {
				rf.LedTo = append(rf.LedTo, report.Ref{Rule: f.Rule, Code: f.Code, File: f.File, Line: f.Line, Date: f.Date})
			}
		}
		t.KnockOn++
		g.KnockOn++
		k := r.knockOns[[2]string{c.Rule, c.Code}]
		if k == nil {
			k = &report.KnockOn{Rule: c.Rule, Code: c.Code, ByRule: map[string]int64{}}
			r.knockOns[[2]string{c.Rule, c.Code}] = k
		}
		k.Findings++
		k.ByRule[f.Rule]++
		if cl := (fileLine{c.File, c.Line}); !has(r.causes, cl) {
			r.causes[cl] = struct{}{}
			k.Rows++
		}
	}
	if f.ServicePointID == "" {
		return
	}
	o := r.offenders[f.ServicePointID]
	if o == nil {
		o = &report.Offender{ServicePointID: f.ServicePointID, ByRule: map[string]int64{}}
		r.offenders[o.ServicePointID] = o
		r.offenderRows[o.ServicePointID] = map[fileLine]struct{}{}
	}
	o.Findings++
	o.ByRule[f.Rule]++
	if rows := r.offenderRows[o.ServicePointID]; !has(rows, at) {
		rows[at] = struct{}{}
		o.Rows++
	}
}

func has[K comparable](m map[K]struct{}, k K) bool {
	_, ok := m[k]
	return ok
}

// resolve pairs a cleared anomaly with the one it clears, raised earlier in
// the run: the one with the same effective date (gaps, overlaps and A3 keep
// it), else the earliest. The pair is no longer open, so no threshold
// counts it; it is listed apart. A clear with nothing raised in the run to
// pair with changes nothing.
func (r *run) resolve(k groupKey, g *report.RuleFindings, cleared report.Finding) {
	ok := openKeyOf(cleared)
	open := r.raised[ok]
	if len(open) == 0 {
		return
	}
	i := slices.IndexFunc(open, func(f report.Finding) bool { return f.Date == cleared.Date })
	if i < 0 {
		i = 0
	}
	raised := open[i]
	if open = slices.Delete(open, i, i+1); len(open) == 0 {
		delete(r.raised, ok)
	} else {
		r.raised[ok] = open
	}
	g.Open--
	g.Resolved++
	r.rep.Totals.Warnings--
	if ob := r.rep.OpenByServicePoint[raised.ServicePointID]; ob != nil {
		if ob[raised.Rule]--; ob[raised.Rule] <= 0 {
			delete(ob, raised.Rule)
		}
		if len(ob) == 0 {
			delete(r.rep.OpenByServicePoint, raised.ServicePointID)
		}
	}
	if r.opts.Examples == 0 || r.resolvedShown[k] < r.opts.Examples {
		r.resolvedShown[k]++
		r.rep.Resolved = append(r.rep.Resolved, report.Resolved{Raised: raised, Cleared: cleared})
	}
}

// eligibility records the latest reasons of a (customer, premise, program):
// after the last file, they are what a downstream consumer of eligibility.v1
// holds.
func (r *run) eligibility(e rules.EligibilityChanged) {
	pi := -1
	for i, p := range r.programs {
		if p == e.Program {
			pi = i
		}
	}
	if pi < 0 {
		return // a program this report does not know; rules.Programs() lists every one
	}
	key := [2]string{e.CustomerID, e.PremiseID}
	var mh maphash.Hash
	mh.SetSeed(r.seed)
	mh.WriteString(e.CustomerID)
	mh.WriteByte(0)
	mh.WriteString(e.PremiseID)
	h := mh.Sum64()
	at, ok := r.subjects[h]
	if !ok {
		at = uint32(len(r.masks))
		r.subjects[h] = at
		r.masks = append(r.masks, make([]uint32, len(r.programs))...)
	}
	s := r.masks[at : int(at)+len(r.programs)]
	mask := uint32(evalBit)
	for _, rs := range e.Reasons {
		mask |= 1 << r.reasonBit(rs.Code, rs.Rule)
	}
	s[pi] = mask
	ex := r.examples[pi]
	if e.Eligible {
		delete(ex, key)
		return
	}
	if _, ok := ex[key]; !ok && r.opts.Examples > 0 && len(ex) >= r.opts.Examples {
		return
	}
	sub := report.Subject{CustomerID: e.CustomerID, PremiseID: e.PremiseID, SecondaryID: e.SecondaryID}
	for _, rs := range e.Reasons {
		sub.Reasons = append(sub.Reasons, report.Reason{Code: rs.Code, Rule: rs.Rule, ServicePointID: rs.ServicePointID,
			Since: day(rs.EffectiveDate), Until: day(rs.Until), File: rs.Source.File, Line: rs.Source.Line})
	}
	ex[key] = sub
}

func (r *run) reasonBit(code, rule string) int {
	k := [2]string{code, rule}
	if b, ok := r.reasonBits[k]; ok {
		return b
	}
	if len(r.reasonList) == otherBit {
		return otherBit
	}
	r.reasonBits[k] = len(r.reasonList)
	r.reasonList = append(r.reasonList, k)
	return r.reasonBits[k]
}

// summarise keeps what the report needs of a service point's final state:
// its history length and whether it is active. The Pebble store calls it on
// eviction and for the states left at the end; a later call for the same
// service point replaces the earlier one.
func (r *run) summarise(id string, sp *rules.ServicePoint) {
	s := spSummary{}
	if len(sp.Periods) > 0 {
		s.usage = true
		s.months = int32(coveredMonths(r.opts.Policy, sp.Periods))
	}
	// The account on file is the last tenure not deleted; without one (a
	// usage file on its own carries no accounts) the service point counts as
	// active, since nothing says it ended.
	for i := len(sp.Tenures) - 1; i >= 0; i-- {
		if t := sp.Tenures[i]; !t.Deleted {
			s.inactive = t.InactiveDate != 0
			break
		}
		if i == 0 {
			s.inactive = true // every account deleted
		}
	}
	h := maphash.String(r.seed, id)
	r.history.put(h, s)
	if r.saver != nil {
		r.saver.save(id, sp)
	}
	if len(sp.Tenures) > 0 && !s.usage {
		r.noUsage.put(h, id, 0)
	} else if r.noUsage.len() > 0 {
		r.noUsage.del(h)
	}
	if need := r.opts.Policy.Validation.HistoryMonths; s.usage && !s.inactive && int(s.months) < need {
		r.short.put(h, id, int(s.months))
	} else if r.short.len() > 0 {
		r.short.del(h)
	}
}

// coveredMonths is the history of a timeline in months of 30.44 days (a
// year over twelve), rounded: thirteen monthly bills of 28 to 33 days are
// thirteen months, whichever day of the month the read cycle starts on. Only
// the days plausible periods cover count (U11): one 10,000-day period is no
// history, and neither is a gap.
func coveredMonths(p rules.Policy, ps []rules.Period) int {
	var days int
	var end dates.Date // the last day counted; periods are sorted by start
	for _, pe := range ps {
		if !p.PlausiblePeriod(int(pe.Duration())) || pe.DateTo <= end {
			continue
		}
		days += int(pe.DateTo - max(pe.Start, end+1) + 1)
		end = pe.DateTo
	}
	return int(math.Round(float64(days) / (365.25 / 12)))
}

// send passes v on ch unless ctx ends first, and says whether it did. A
// select with both cases ready picks either: ctx is checked first, so a
// cancelled run always stops.
func send[T any](ctx context.Context, ch chan<- T, v T) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}
