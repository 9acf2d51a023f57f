package gen

import (
	"archive/zip"
	"cmp"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/usagestream/usagestream/records"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// flushAt is the buffered size that triggers a write: large enough that
// Write calls cost nothing per row, small enough to stay in cache.
const flushAt = 64 << 10

// sink buffers one output file's text and counts its lines.
type sink struct {
	w    io.Writer
	name string // base name, for labels
	buf  []byte
	line int64 // lines written so far (header included)
	err  error
}

func newSink(w io.Writer, name string, l records.Layout) *sink {
	s := &sink{w: w, name: name, buf: make([]byte, 0, flushAt+16<<10)}
	s.buf = append(s.buf, records.HeaderLine(l)...)
	s.buf = append(s.buf, '\n')
	s.line = 1
	return s
}

func (s *sink) flush() error {
	if s.err == nil && len(s.buf) > 0 {
		if _, err := s.w.Write(s.buf); err != nil {
			s.err = fmt.Errorf("gen: writing %s: %w", s.name, err)
		}
	}
	s.buf = s.buf[:0]
	return s.err
}

func (s *sink) maybeFlush() error {
	if len(s.buf) >= flushAt {
		return s.flush()
	}
	return s.err
}

func (s *sink) rows() int64 { return s.line - 1 }

// WriteFull streams the full layout as plain TSV text (header included) to w.
// Memory stays flat whatever the size. Labels name the file Generate would
// write for cfg (FileName(cfg, records.LayoutFull)); callers that store the
// text under another name should rewrite Label.File.
func WriteFull(w io.Writer, cfg Config) (rows int64, labels []Label, err error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return 0, nil, err
	}
	s := newSink(w, FileName(g.cfg, records.LayoutFull), records.LayoutFull)
	if err := g.run(s, nil, nil); err != nil {
		return s.rows(), nil, err
	}
	return s.rows(), g.sortedLabels(nil), nil
}

// run generates every premise into full, or into cust and usage.
func (g *generator) run(full, cust, usage *sink) error {
	for p := int64(0); p < g.np; p++ {
		g.loadPremise(p)
		for _, fuel := range [2]byte{'E', 'G'} {
			if fuel == 'G' && !g.prem.hasGas {
				break
			}
			g.buildSP(fuel)
			if full != nil {
				g.emitFull(full)
				if err := full.maybeFlush(); err != nil {
					return err
				}
				continue
			}
			g.emitSplit(cust, usage)
			if err := cust.maybeFlush(); err != nil {
				return err
			}
			if err := usage.maybeFlush(); err != nil {
				return err
			}
		}
	}
	for _, s := range [...]*sink{full, cust, usage} {
		if s != nil {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *generator) emitFull(s *sink) {
	dec := g.dec()
	b := s.buf
	for i := range g.rows {
		r := &g.rows[i]
		st := &g.rendered[r.state]
		b = append(b, g.arena[st.off:st.end]...)
		b = append(b, '\t')
		b = appendUsage(b, r, dec)
		s.line++
		if r.label >= 0 {
			g.resolve(r.label, s)
		}
	}
	s.buf = b
}

// emitSplit writes one customer-file row per account state, in the order the
// states arose (a clean service point has exactly one), and one usage row per
// period.
func (g *generator) emitSplit(cust, usage *sink) {
	b := cust.buf
	for i := range g.rendered {
		st := &g.rendered[i]
		b = append(b, g.arena[st.off:st.end]...)
		b = append(b, '\n')
		cust.line++
		if st.label >= 0 {
			g.resolve(st.label, cust)
		}
	}
	cust.buf = b

	dec := g.dec()
	b = usage.buf
	for i := range g.rows {
		r := &g.rows[i]
		if r.fullOnly {
			continue
		}
		st := &g.rendered[r.state]
		b = append(b, g.arena[st.spOff:st.spEnd]...)
		b = append(b, '\t')
		b = appendUsage(b, r, dec)
		usage.line++
		if r.label >= 0 && !g.pend[r.label].inCustomer {
			g.resolve(r.label, usage)
		}
	}
	usage.buf = b
}

func (g *generator) resolve(i int, s *sink) {
	l := g.pend[i].label
	l.File, l.Line = s.name, s.line
	g.labels = append(g.labels, l)
}

// sortedLabels orders labels by file (in the order given) then line.
func (g *generator) sortedLabels(files []string) []Label {
	out := g.labels
	if out == nil {
		out = []Label{}
	}
	slices.SortStableFunc(out, func(a, b Label) int {
		return cmp.Or(cmp.Compare(slices.Index(files, a.File), slices.Index(files, b.File)), cmp.Compare(a.Line, b.Line))
	})
	return out
}

// appendUsage writes usage_value, date_to, duration, is_estimate and
// usage_charge, then the line end; r.bad breaks one of them on purpose.
func appendUsage(b []byte, r *row, dec int) []byte {
	switch r.bad {
	case badNullValue:
		b = append(b, nullTokens[r.token]...)
	case badThousands:
		b = appendFixed(b, r.value, dec, true)
	default:
		b = appendFixed(b, r.value, dec, false)
	}
	b = append(b, '\t')
	if r.bad == badDate {
		b = appendBadDate(b, r.end)
	} else {
		b = appendDate(b, r.end)
	}
	b = append(b, '\t')
	if r.bad == badDuration {
		b = append(b, '0')
	} else {
		b = appendPadded(b, int64(r.end-r.start+1), 1)
	}
	b = append(b, '\t', r.est)
	if r.bad != badFieldCount {
		b = append(b, '\t')
	}
	switch {
	case r.bad == badNullCharge:
		b = append(b, nullTokens[r.token]...)
	case r.noCharge:
	default:
		b = appendFixed(b, r.charge, 2, false)
	}
	return append(b, '\n')
}

// Generate writes the billing file(s) for cfg into dir (created if needed),
// compressed as cfg.Compression says, and labels.json, a JSON array of the
// labels. On error the files written so far are removed.
func Generate(dir string, cfg Config) (res Result, err error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return Result{}, err
	}
	c := g.cfg
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("gen: creating output folder: %w", err)
	}

	layouts := []records.Layout{records.LayoutFull}
	if c.Split {
		layouts = []records.Layout{records.LayoutCustomer, records.LayoutUsage}
	}
	outs := make([]*output, 0, len(layouts))
	defer func() {
		if err != nil {
			for _, o := range outs {
				o.abort()
			}
		}
	}()
	for _, l := range layouts {
		o, err := createOutput(dir, c, l)
		if err != nil {
			return Result{}, err
		}
		outs = append(outs, o)
	}

	if c.Split {
		err = g.run(nil, outs[0].sink, outs[1].sink)
	} else {
		err = g.run(outs[0].sink, nil, nil)
	}
	if err != nil {
		return Result{}, err
	}

	res.RowsByFile = make(map[string]int64, len(outs))
	names := make([]string, len(outs))
	for i, o := range outs {
		if err := o.close(); err != nil {
			return Result{}, err
		}
		res.Files = append(res.Files, o.path)
		res.RowsByFile[o.sink.name] = o.sink.rows()
		res.Rows += o.sink.rows()
		names[i] = o.sink.name
	}
	res.Labels = g.sortedLabels(names)

	js, err := json.MarshalIndent(res.Labels, "", "  ")
	if err != nil {
		return Result{}, fmt.Errorf("gen: encoding labels: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "labels.json"), append(js, '\n'), 0o644); err != nil {
		return Result{}, fmt.Errorf("gen: writing labels.json: %w", err)
	}
	return res, nil
}

// output is one file being written: the file, its compressor, the sink.
type output struct {
	path   string
	f      *os.File
	closer []io.Closer // compressors, innermost first
	sink   *sink
}

func createOutput(dir string, c Config, l records.Layout) (*output, error) {
	name := FileName(c, l)
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("gen: creating %s: %w", path, err)
	}
	o := &output{path: path, f: f}
	var w io.Writer = f
	switch c.Compression {
	case "gzip":
		zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed) // the level is valid
		// Fixed header fields keep the bytes a function of Config alone.
		zw.Name = innerName(c, l)
		zw.ModTime = c.Now
		w, o.closer = zw, []io.Closer{zw}
	case "zip":
		zw := zip.NewWriter(f)
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(out, flate.BestSpeed)
		})
		// One file, no folders (data contract 2.1).
		ew, err := zw.CreateHeader(&zip.FileHeader{Name: innerName(c, l), Method: zip.Deflate, Modified: c.Now})
		if err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("gen: starting zip %s: %w", path, err)
		}
		w, o.closer = ew, []io.Closer{zw}
	}
	o.sink = newSink(w, name, l)
	return o, nil
}

func (o *output) close() error {
	var errs []error
	for _, c := range o.closer {
		errs = append(errs, c.Close())
	}
	errs = append(errs, o.f.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gen: finishing %s: %w", o.path, err)
	}
	return nil
}

func (o *output) abort() {
	o.f.Close()
	os.Remove(o.path)
}
