// Package greenbutton reads Green Button (NAESB ESPI) XML files: an Atom feed
// whose entries hold UsagePoint, MeterReading, ReadingType and IntervalBlock
// resources. Every IntervalReading becomes the same records.IntervalRead an
// Opower interval file row becomes (producers/interval), checked by the same
// rules (interval.Validator), or a records.Rejected naming the XML line of
// the IntervalReading and the element at fault. docs/intervals.md, section
// "Green Button XML", states the mapping.
//
// The file is read token by token (encoding/xml), except that an
// IntervalReading of the plain shape exporters write is read straight from
// the buffer (fast.go), the same way; memory does not grow with the file:
// what is kept is one small record per UsagePoint, MeterReading and
// ReadingType seen.
package greenbutton

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/ellipsis"
	"github.com/usagestream/usagestream/internal/fileopen"
	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

// Options configures a Reader.
type Options struct {
	// Check is the same acceptance settings the Opower interval reader uses
	// (units, service types, date window).
	interval.Check
	// Location is the utility's time zone: a reading's UTC end instant is
	// given its local date, time and offset there. nil: Check.Location, and
	// UTC when that is nil too.
	Location *time.Location
	// Minutes, when not 0, is the only interval length the file may hold
	// (from a file name saying interval<mm>); a reading of another length is
	// rejected, as an off-grid row of an interval<mm> file is (I1).
	Minutes int
	// MaxPending bounds the readings held while an IntervalBlock entry's
	// links are not yet read (its <link rel="self"> after its <content>).
	// 0: 1,000,000.
	MaxPending int
}

// Reader streams one Green Button file. Not safe for concurrent use, except
// CompressedBytesRead.
type Reader struct {
	name  string
	opts  Options
	loc   *time.Location
	data  *fileopen.File
	src   *source
	dec   *xml.Decoder
	valid *interval.Validator

	stack []frame // open elements
	text  []byte  // character data of the innermost leaf element

	entry entry
	// The resources blocks refer to, by the hash of their href (see key):
	// a file may hold a million UsagePoints, and their hrefs are long.
	up      map[uint64]string       // UsagePoint -> service type
	meters  map[uint64]uint64       // MeterReading -> its ReadingType
	types   map[uint64]*readingType // ReadingType
	parents map[uint64]uint64       // service point id -> the href before its "/UsagePoint/"
	rt      *readingType            // the ReadingType being read
	upKind  string                  // ServiceCategory kind of the UsagePoint being read
	block   *blockCtx               // the IntervalBlock being read (nil outside)
	reading rawReading              // the IntervalReading being read
	pending []rawReading            // readings of a block whose entry's links are not read yet

	// The fast path (fast.go): fastOK says the decoder holds no byte or
	// token back, so the next bytes of src are where it stands; skipped is
	// the newlines the fast path consumed, which the decoder never saw.
	noFast  bool
	fastOK  bool
	skipped int
	fast    int64 // readings the fast path read

	out      []interval.Record // records ready for Next
	outHead  int
	stats    filereader.Stats
	ord      int64 // readings returned so far
	sawRoot  bool
	readings int64
	warnings []string
	err      error // sticky
	closed   bool
}

type frame struct {
	name xml.Name
	line int
}

// entry is what one Atom entry's links say.
type entry struct {
	depth   int // depth of the <entry> element; 0 outside an entry
	self    string
	up      string
	related []string
	kind    string // the ESPI resource in its content
}

type readingType struct {
	line       int
	multiplier int
	uom        int
	uomSet     bool
	length     int // intervalLength, seconds; 0 when absent
	commodity  int
	flow       int
	bad        []records.Reason
}

// blockCtx is what every reading of one IntervalBlock shares.
type blockCtx struct {
	resolved    bool
	spid        string
	channel     string
	serviceType string
	rt          *readingType
	reasons     []records.Reason // why none of its readings can be accepted
}

// rawReading is an IntervalReading as written, before any check.
type rawReading struct {
	line                   int
	start, duration, value string
	hasStart, hasDuration  bool
	hasValue               bool
	qualities              []string
}

// Open opens a Green Button file, plain, gzip or a zip of one file (told
// apart by content). The first element is read before Open returns; problems
// come back as *filereader.FileError.
func Open(path string, opts Options) (*Reader, error) {
	r, err := newReader(filepath.Base(path), opts)
	if err != nil {
		return nil, err
	}
	d, err := fileopen.Open(path, fileopen.Options{Kind: "Green Button"})
	if err != nil {
		return nil, r.fileErr(0, "", err)
	}
	return r.start(d)
}

// NewReader reads a Green Button file from rd, which it does not close;
// name is the file's base name, for messages. gzip is detected by content; a
// zip needs an io.ReaderAt with a Size method (see fileopen.New).
func NewReader(name string, rd io.Reader, opts Options) (*Reader, error) {
	r, err := newReader(filepath.Base(name), opts)
	if err != nil {
		return nil, err
	}
	d, err := fileopen.New(rd, fileopen.Options{Kind: "Green Button"})
	if err != nil {
		return nil, r.fileErr(0, "", err)
	}
	return r.start(d)
}

func newReader(name string, opts Options) (*Reader, error) {
	r := &Reader{name: name, opts: opts, loc: opts.Location,
		up: map[uint64]string{}, meters: map[uint64]uint64{}, types: map[uint64]*readingType{}, parents: map[uint64]uint64{},
		stats: filereader.Stats{RejectedByCode: map[string]int64{}}}
	if r.loc == nil {
		r.loc = opts.Check.Location
	}
	if r.loc == nil {
		r.loc = time.UTC
	}
	// The shared contract checks a read's local fields against its UTC end
	// in the utility's zone: the same zone the readings are given theirs in.
	opts.Check.Location = r.loc
	if r.opts.MaxPending <= 0 {
		r.opts.MaxPending = 1_000_000
	}
	if opts.Minutes != 0 && !records.ValidIntervalLength(opts.Minutes) {
		return nil, r.fileErr(0, "", fmt.Errorf("interval length %d minutes is not one of 5, 15, 30, 60, 1440", opts.Minutes))
	}
	v, err := interval.NewValidator(opts.Check)
	if err != nil {
		return nil, r.fileErr(0, "", err)
	}
	r.valid = v
	return r, nil
}

func (r *Reader) start(d *fileopen.File) (*Reader, error) {
	r.data = d
	r.src = &source{r: d.Lines(), buf: make([]byte, sourceBuf)}
	r.dec = xml.NewDecoder(r.src)
	// Strict: a malformed file is an error naming its line, never guessed at.
	r.dec.Strict = true
	if err := r.fill(true); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reader) fileErr(line int, field string, err error) *filereader.FileError {
	return &filereader.FileError{File: r.name, Line: int64(line), Field: field, Err: err}
}

// Warnings lists what the caller should log.
func (r *Reader) Warnings() []string { return r.warnings }

// Stats returns a copy of the counters so far: Lines counts IntervalReadings
// (Lines = Accepted + Rejected).
func (r *Reader) Stats() filereader.Stats {
	s := r.stats
	s.RejectedByCode = make(map[string]int64, len(r.stats.RejectedByCode))
	for k, v := range r.stats.RejectedByCode {
		s.RejectedByCode[k] = v
	}
	return s
}

// Ordinal is the number of readings Next has returned: the position a
// checkpoint resumes after, since several IntervalReadings may share an XML
// line.
func (r *Reader) Ordinal() int64 { return r.ord }

// CompressedBytesRead is the bytes consumed from the file, for progress.
func (r *Reader) CompressedBytesRead() int64 {
	if r.data == nil {
		return 0
	}
	return r.data.Consumed()
}

// Close releases the decompressor and, for Open, the file. Idempotent.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var err error
	if r.data != nil {
		err = r.data.Close()
	}
	if r.err == nil {
		r.err = r.fileErr(r.line(), "", errors.New("the reader is closed; open the file again to read more"))
	}
	return err
}

// Next returns the next IntervalReading as a Read or a Rejected record. It
// returns io.EOF at the end, or a *filereader.FileError when the file cannot
// be read further; both again on later calls. Records before a FileError
// stand.
func (r *Reader) Next() (interval.Record, error) {
	for r.outHead == len(r.out) {
		if r.err != nil {
			return interval.Record{}, r.err
		}
		r.out, r.outHead = r.out[:0], 0
		if err := r.fill(false); err != nil {
			r.err = err
		}
	}
	rec := r.out[r.outHead]
	r.out[r.outHead] = interval.Record{}
	r.outHead++
	r.ord++
	return rec, nil
}

func (r *Reader) line() int {
	if r.dec == nil {
		return 0
	}
	l, _ := r.dec.InputPos()
	return l + r.skipped
}

// fill reads tokens until a record is ready, or the end. first: stop after
// the root element's start (Open's check).
func (r *Reader) fill(first bool) error {
	for len(r.out) == r.outHead {
		if r.fastOK && r.block != nil && len(r.stack) > 0 && r.stack[len(r.stack)-1].name.Local == "IntervalBlock" && !r.noFast {
			ok, err := r.fastReading()
			if err != nil {
				return err
			}
			if ok {
				continue
			}
		}
		r.fastOK = false
		before := r.line()
		tok, err := r.dec.RawToken()
		if err != nil {
			return r.tokenErr(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := r.startElement(t); err != nil {
				return err
			}
			if first {
				return nil
			}
			// <a/> is returned as a start now and its end next.
			r.fastOK = !r.src.selfClosed()
		case xml.EndElement:
			if err := r.endElement(t); err != nil {
				return err
			}
			r.fastOK = true
		case xml.CharData:
			if len(r.stack) > 0 {
				r.text = append(r.text, t...)
			} else if s := strings.TrimSpace(strings.TrimPrefix(string(t), "\ufeff")); s != "" {
				at := before + strings.Count(string(t[:strings.Index(string(t), s)]), "\n")
				return r.fileErr(at, "", fmt.Errorf("text %q outside the root element; a Green Button file is one Atom <feed>", ellipsis.Clip(strings.TrimSpace(string(t)), 40)))
			}
		case xml.Directive:
			// A DOCTYPE: encoding/xml expands no entities from it, so it is harmless.
		}
	}
	return nil
}

// tokenErr turns what stopped the decoder into the error that ends the file.
func (r *Reader) tokenErr(err error) error {
	line := r.line()
	var se *xml.SyntaxError
	switch {
	case errors.Is(err, io.EOF) && len(r.stack) == 0 && r.sawRoot:
		if r.readings == 0 {
			r.warnings = append(r.warnings, "the file holds no IntervalReading: nothing to publish")
		}
		return io.EOF
	case errors.Is(err, io.EOF) && !r.sawRoot:
		return r.fileErr(line, "", errors.New("the file is empty or holds no XML element; send the Green Button export itself"))
	case len(r.stack) > 0 && (errors.Is(err, io.EOF) || errors.As(err, &se) && strings.Contains(se.Msg, "unexpected EOF")):
		open := r.stack[len(r.stack)-1]
		return r.fileErr(line, open.name.Local, fmt.Errorf("the file ends inside <%s> opened at line %d: it is probably a partial upload; the readings before stand, send the whole file again", open.name.Local, open.line))
	case errors.As(err, &se):
		return r.fileErr(max(int(se.Line)+r.skipped, 1), "", fmt.Errorf("the XML is not well-formed (%s); fix the export and send the file again", se.Msg))
	case r.src.err == nil || !errors.Is(err, r.src.err):
		// The decoder's own, such as an encoding other than UTF-8.
		return r.fileErr(max(line, 1), "", fmt.Errorf("the XML cannot be read (%w); send it as UTF-8 XML", err))
	case fileopen.IsCorruption(err):
		return r.fileErr(line, "", fmt.Errorf("the file is truncated or corrupt after line %d (%w); send the file again", line, err))
	default:
		return r.fileErr(line, "", fmt.Errorf("reading stopped after line %d (%w); check the storage or connection and run again", line, err))
	}
}

func (r *Reader) parent() string {
	if len(r.stack) < 2 {
		return ""
	}
	return r.stack[len(r.stack)-2].name.Local
}

func (r *Reader) startElement(t xml.StartElement) error {
	line := r.line()
	if r.sawRoot && len(r.stack) == 0 {
		return r.fileErr(line, t.Name.Local, fmt.Errorf("a second root element <%s> after the feed ended; a Green Button file is one Atom <feed>", ellipsis.Clip(t.Name.Local, 40)))
	}
	if !r.sawRoot {
		r.sawRoot = true
		if t.Name.Local != "feed" && t.Name.Local != "entry" {
			return r.fileErr(line, t.Name.Local, fmt.Errorf("the root element is <%s>, not an Atom <feed> or <entry>: this is not a Green Button file", ellipsis.Clip(t.Name.Local, 40)))
		}
	}
	r.stack = append(r.stack, frame{name: t.Name, line: line})
	r.text = r.text[:0]
	switch t.Name.Local {
	case "entry":
		if r.entry.depth != 0 {
			return r.fileErr(line, "entry", errors.New("an <entry> inside an <entry>; each resource is its own entry of the feed"))
		}
		r.entry = entry{depth: len(r.stack)}
	case "link":
		if r.entry.depth != 0 && r.parent() == "entry" {
			var rel, href string
			for _, a := range t.Attr {
				switch a.Name.Local {
				case "rel":
					rel = a.Value
				case "href":
					href = strings.TrimRight(a.Value, "/")
				}
			}
			switch rel {
			case "self":
				r.entry.self = href
			case "up":
				r.entry.up = href
			case "related":
				r.entry.related = append(r.entry.related, href)
			}
		}
	case "UsagePoint", "MeterReading":
		if r.parent() == "content" {
			r.entry.kind = t.Name.Local
			r.upKind = ""
		}
	case "ReadingType":
		if r.parent() == "content" {
			r.entry.kind = "ReadingType"
			r.rt = &readingType{line: line}
		}
	case "IntervalBlock":
		if r.parent() == "content" {
			r.entry.kind = "IntervalBlock"
			r.block = &blockCtx{}
			if err := r.resolveBlock(); err != nil {
				return err
			}
		}
	case "IntervalReading":
		if r.block != nil && r.parent() == "IntervalBlock" {
			r.reading = rawReading{line: line, qualities: r.reading.qualities[:0]}
		}
	}
	return nil
}

func (r *Reader) endElement(t xml.EndElement) error {
	if len(r.stack) == 0 {
		return r.fileErr(r.line(), t.Name.Local, fmt.Errorf("</%s> closes no open element", t.Name.Local))
	}
	top := r.stack[len(r.stack)-1]
	if top.name != t.Name {
		return r.fileErr(r.line(), t.Name.Local, fmt.Errorf("</%s> closes <%s> opened at line %d; the XML is not well-formed, fix the export", xmlName(t.Name), xmlName(top.name), top.line))
	}
	parent := r.parent()
	grand := ""
	if len(r.stack) >= 3 {
		grand = r.stack[len(r.stack)-3].name.Local
	}
	text := r.text
	r.stack = r.stack[:len(r.stack)-1]
	switch {
	case parent == "ServiceCategory" && t.Name.Local == "kind" && grand == "UsagePoint":
		r.upKind = strings.TrimSpace(string(text))
	case parent == "ReadingType" && r.rt != nil:
		r.readingTypeField(t.Name.Local, strings.TrimSpace(string(text)))
	case parent == "timePeriod" && grand == "IntervalReading" && r.block != nil:
		switch t.Name.Local {
		case "start":
			r.reading.start, r.reading.hasStart = strings.TrimSpace(string(text)), true
		case "duration":
			r.reading.duration, r.reading.hasDuration = strings.TrimSpace(string(text)), true
		}
	case parent == "IntervalReading" && t.Name.Local == "value" && r.block != nil:
		r.reading.value, r.reading.hasValue = strings.TrimSpace(string(text)), true
	case parent == "ReadingQuality" && t.Name.Local == "quality" && r.block != nil:
		r.reading.qualities = append(r.reading.qualities, strings.TrimSpace(string(text)))
	case t.Name.Local == "IntervalReading" && parent == "IntervalBlock" && r.block != nil:
		if err := r.endReading(); err != nil {
			return err
		}
	case t.Name.Local == "IntervalBlock" && parent == "content":
		if r.block != nil && r.block.resolved {
			r.block = nil
		}
	case t.Name.Local == "ReadingType" && parent == "content":
		// kept in r.rt until the entry ends: its self link may come after.
	case t.Name.Local == "entry" && len(r.stack)+1 == r.entry.depth:
		if err := r.endEntry(); err != nil {
			return err
		}
	}
	r.text = r.text[:0]
	return nil
}

// endReading files the IntervalReading just read (r.reading): a record, or
// held until its block's links are read.
func (r *Reader) endReading() error {
	r.readings++
	if !r.block.resolved {
		if len(r.pending) >= r.opts.MaxPending {
			return r.fileErr(r.reading.line, "link", fmt.Errorf("an IntervalBlock entry holds more than %d readings before its <link rel=\"self\">; put the entry's links before its content", r.opts.MaxPending))
		}
		rd := r.reading
		rd.qualities = append([]string(nil), rd.qualities...)
		r.pending = append(r.pending, rd)
		return nil
	}
	r.emit(&r.reading)
	return nil
}

func xmlName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// endEntry files the resource an entry defined, by its self link, and
// settles the readings of a block whose links came after its content.
func (r *Reader) endEntry() error {
	e := r.entry
	switch e.kind {
	case "UsagePoint":
		if e.self != "" {
			r.up[key(e.self)] = serviceKind(r.upKind)
		}
	case "MeterReading":
		if e.self != "" {
			for _, rel := range e.related {
				if strings.Contains(rel, "/ReadingType/") {
					r.meters[key(e.self)] = key(rel)
				}
			}
		}
	case "ReadingType":
		if e.self != "" && r.rt != nil {
			r.types[key(e.self)] = r.rt
		}
		r.rt = nil
	case "IntervalBlock":
		if r.block != nil && !r.block.resolved {
			if err := r.resolveBlock(); err != nil {
				return err
			}
			if !r.block.resolved { // still no link: say so on every reading
				r.block.resolved = true
				r.block.reasons = append(r.block.reasons, records.Reason{Field: "link", Code: records.CodeRequired, Rule: records.RuleIntervalColumns,
					Message: "the IntervalBlock's entry has no <link rel=\"self\"> or <link rel=\"up\"> naming its UsagePoint and MeterReading (…/UsagePoint/{id}/MeterReading/{id}/IntervalBlock); the service point is unknown"})
			}
			for i := range r.pending {
				r.emit(&r.pending[i])
			}
			r.pending = r.pending[:0]
		}
		r.block = nil
	}
	r.entry = entry{}
	return nil
}

// resolveBlock finds the UsagePoint, MeterReading and ReadingType of the
// block being read from its entry's links, once they are read.
func (r *Reader) resolveBlock() error {
	b := r.block
	href := r.entry.self
	if href == "" {
		href = r.entry.up
	}
	i := strings.LastIndex(href, "/IntervalBlock")
	if href == "" || i < 0 {
		return nil
	}
	b.resolved = true
	mr := href[:i]
	j := strings.LastIndex(mr, "/MeterReading/")
	k := strings.LastIndex(mr, "/UsagePoint/")
	if j < 0 || k < 0 || k+len("/UsagePoint/") > j {
		b.reasons = append(b.reasons, records.Reason{Field: "link", Code: records.CodeRequired, Rule: records.RuleIntervalColumns,
			Message: fmt.Sprintf("the IntervalBlock's link %q does not name …/UsagePoint/{id}/MeterReading/{id}/IntervalBlock; the service point is unknown", ellipsis.Clip(href, 120))})
		return nil
	}
	upHref := mr[:j]
	b.spid = upHref[k+len("/UsagePoint/"):]
	// The id alone is the service point: the same id under two parents
	// (two RetailCustomers of a bulk export) would merge two meters' reads.
	parent := key(upHref[:k])
	if p, ok := r.parents[key(b.spid)]; ok && p != parent {
		return r.fileErr(r.line(), "link", fmt.Errorf("UsagePoint %q appears under two different parents (this one %q): its reads would be mixed with another meter's under one service point id; export with UsagePoint ids unique in the file",
			ellipsis.Clip(b.spid, 60), ellipsis.Clip(upHref[:k], 120)))
	}
	r.parents[key(b.spid)] = parent
	b.serviceType = r.up[key(upHref)]
	rtKey, ok := r.meters[key(mr)]
	if !ok {
		b.reasons = append(b.reasons, records.Reason{Field: "MeterReading", Code: records.CodeRequired, Rule: records.RuleIntervalColumns,
			Message: fmt.Sprintf("no MeterReading entry %q with a related ReadingType link comes before this IntervalBlock; the unit and multiplier of its values are unknown, so put the MeterReading and ReadingType entries first", ellipsis.Clip(mr, 120))})
		return nil
	}
	rt, ok := r.types[rtKey]
	if !ok {
		b.reasons = append(b.reasons, records.Reason{Field: "ReadingType", Code: records.CodeRequired, Rule: records.RuleIntervalColumns,
			Message: fmt.Sprintf("the ReadingType of MeterReading %q is not in the file before this IntervalBlock; the unit and multiplier of its values are unknown, so put the ReadingType entry first", ellipsis.Clip(mr, 120))})
		return nil
	}
	b.rt = rt
	b.reasons = append(b.reasons, rt.bad...)
	if b.serviceType == "" {
		b.serviceType = commodityService(rt.commodity)
	}
	b.channel = flowChannel(rt.flow)
	return nil
}

func (r *Reader) readingTypeField(name, v string) {
	rt := r.rt
	num := func(lo, hi int) (int, bool) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			rt.bad = append(rt.bad, records.Reason{Field: "ReadingType/" + name, Code: records.CodeBadInteger, Rule: records.RuleIntervalColumns,
				Message: fmt.Sprintf("ReadingType %s %q (line %d) is not a whole number from %d to %d", name, ellipsis.Clip(v, 40), rt.line, lo, hi)})
			return 0, false
		}
		return n, true
	}
	switch name {
	case "powerOfTenMultiplier":
		rt.multiplier, _ = num(-12, 12)
	case "uom":
		rt.uom, rt.uomSet = num(0, 1<<16)
	case "intervalLength":
		rt.length, _ = num(1, 1<<31-1)
	case "commodity":
		rt.commodity, _ = num(0, 1<<16)
	case "flowDirection":
		rt.flow, _ = num(0, 1<<16)
	case "accumulationBehaviour":
		if n, ok := num(0, 1<<16); ok {
			if n != 0 && n != 4 {
				rt.bad = append(rt.bad, records.Reason{Field: "ReadingType/accumulationBehaviour", Code: records.CodeBadUnits, Rule: records.RuleIntervalColumns,
					Message: fmt.Sprintf("ReadingType accumulationBehaviour %d (line %d) is not 4 (deltaData): its values are register readings, not the usage of each interval", n, rt.line)})
			}
		}
	}
}

// emit turns one IntervalReading into a Read or a Rejected record.
func (r *Reader) emit(raw *rawReading) {
	b := r.block
	rd := &records.IntervalRead{Line: int64(raw.line), ServicePointID: b.spid, Channel: b.channel, ServiceType: b.serviceType}
	reasons := append([]records.Reason(nil), b.reasons...)
	add := func(field, code, rule, format string, args ...any) {
		reasons = append(reasons, records.Reason{Field: field, Code: code, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	var start, dur int64
	okStart, okDur := false, false
	if !raw.hasStart {
		add("timePeriod/start", records.CodeRequired, records.RuleIntervalColumns, "the IntervalReading has no timePeriod start; it is required")
	} else if n, err := strconv.ParseInt(raw.start, 10, 64); err != nil || n < 0 || n > 1<<40 {
		add("timePeriod/start", records.CodeBadTime, records.RuleIntervalColumns, "timePeriod start %q is not a time in whole seconds since 1970-01-01 UTC", ellipsis.Clip(raw.start, 40))
	} else {
		start, okStart = n, true
	}
	if !raw.hasDuration && b.rt != nil && b.rt.length > 0 {
		// A reading that does not say its length has its ReadingType's.
		dur, okDur = int64(b.rt.length), true
	} else if !raw.hasDuration {
		add("timePeriod/duration", records.CodeRequired, records.RuleIntervalColumns, "the IntervalReading has no timePeriod duration and its ReadingType no intervalLength; one is required")
	} else if n, err := strconv.ParseInt(raw.duration, 10, 64); err != nil || n <= 0 || n > 2*86400 {
		add("timePeriod/duration", records.CodeBadDuration, records.RuleIntervalColumns, "timePeriod duration %q is not a positive whole number of seconds up to two days", ellipsis.Clip(raw.duration, 40))
	} else {
		dur, okDur = n, true
	}
	var value int64
	okValue := false
	if !raw.hasValue {
		add("value", records.CodeRequired, records.RuleIntervalColumns, "the IntervalReading has no value; it is required")
	} else if n, err := strconv.ParseInt(raw.value, 10, 64); err != nil {
		add("value", records.CodeBadNumber, records.RuleIntervalColumns, "value %q is not a whole number (ESPI values are integers scaled by the ReadingType's powerOfTenMultiplier)", ellipsis.Clip(raw.value, 40))
	} else {
		value, okValue = n, true
	}
	rd.Estimate = records.EstimateActual
	for _, q := range raw.qualities {
		e, ok := quality(q)
		if !ok {
			add("ReadingQuality/quality", records.CodeBadEstimate, records.RuleIntervalColumns, "ReadingQuality quality %q is not a QualityOfReading code (0, 7 to 19)", ellipsis.Clip(q, 40))
			continue
		}
		if e != records.EstimateActual && rd.Estimate == records.EstimateActual {
			rd.Estimate = e
		}
	}
	if rt := b.rt; rt != nil {
		unit, exp, ok := uomUnit(rt.uom)
		switch {
		case !rt.uomSet:
			add("ReadingType/uom", records.CodeRequired, records.RuleIntervalColumns, "the ReadingType (line %d) has no uom; the unit of the values is unknown", rt.line)
		case !ok:
			add("ReadingType/uom", records.CodeBadUnits, records.RuleIntervalColumns, "ReadingType uom %d (line %d) is not a unit of usage this pipeline takes (72 Wh, 73 VArh, 169 therm, 119 ft3, 42 m3, 128 US gal)", rt.uom, rt.line)
		case okValue:
			rd.Units = unit
			rd.Value = scale(value, rt.multiplier+exp)
		}
	}
	if okStart && okDur {
		end := time.Unix(start+dur, 0).In(r.loc)
		rd.Minutes = r.minutes(start, dur)
		if rd.Minutes == 0 {
			add("timePeriod/duration", records.CodeBadLength, records.RuleI1, "timePeriod duration %d s is not an interval length of 5, 15, 30, 60 minutes or one local day", dur)
		} else if r.opts.Minutes != 0 && int(rd.Minutes) != r.opts.Minutes {
			add("timePeriod/duration", records.CodeOffGrid, records.RuleI1, "a %d-minute reading in a file named interval%d; all intervals of a file have one length (I1), so send other lengths in their own file", rd.Minutes, r.opts.Minutes)
		}
		// The same derivation as an RFC 3339 end on the NDJSON path: the
		// local wall clock and offset of the instant in the utility's zone.
		_, off := end.Zone()
		rd.EndMillis = (start + dur) * 1000
		rd.LocalDate = dates.FromCivil(end.Date())
		rd.LocalTime = int16(end.Hour()*60 + end.Minute())
		rd.OffsetMinutes = int16(off / 60)
		if end.Second() != 0 || off%60 != 0 {
			add("timePeriod/start", records.CodeBadTime, records.RuleIntervalColumns, "the reading ends at %s, not on a whole minute", end.Format(time.RFC3339))
		}
	}
	if len(reasons) == 0 {
		for _, rs := range r.valid.Validate(rd) {
			rs.Field = xmlField(rs.Field)
			reasons = append(reasons, rs)
		}
	}
	if len(reasons) > 0 {
		rj := &records.Rejected{Line: int64(raw.line), Raw: raw.render(), Reasons: reasons}
		if b.spid != "" && validID(b.spid) {
			rj.ServicePointID = b.spid
		}
		r.stats.Lines++
		r.stats.Rejected++
		seen := map[string]bool{}
		for _, rs := range reasons {
			if !seen[rs.Code] {
				seen[rs.Code] = true
				r.stats.RejectedByCode[rs.Code]++
			}
		}
		r.out = append(r.out, interval.Record{Rejected: rj})
		return
	}
	r.stats.Lines++
	r.stats.Accepted++
	r.out = append(r.out, interval.Record{Read: rd})
}

// minutes is the interval length of a reading: its duration, except that a
// daily reading spanning one local day (23 or 25 hours on a daylight-saving
// change) is 1440 minutes. 0: not an interval length.
func (r *Reader) minutes(start, dur int64) int16 {
	if dur%60 == 0 && records.ValidIntervalLength(int(dur/60)) {
		return int16(dur / 60)
	}
	s, e := time.Unix(start, 0).In(r.loc), time.Unix(start+dur, 0).In(r.loc)
	midnight := func(t time.Time) bool { return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 }
	if midnight(s) && midnight(e) &&
		dates.FromCivil(e.Date()) == dates.FromCivil(s.Date()).AddDays(1) {
		return 1440
	}
	return 0
}

// render is the rejected reading's raw text: its parts as read, in one line.
func (raw *rawReading) render() string {
	var b strings.Builder
	b.WriteString("<IntervalReading>")
	if raw.hasStart {
		b.WriteString(" start=" + ellipsis.Clip(strings.ToValidUTF8(raw.start, "\uFFFD"), 40))
	}
	if raw.hasDuration {
		b.WriteString(" duration=" + ellipsis.Clip(strings.ToValidUTF8(raw.duration, "\uFFFD"), 40))
	}
	if raw.hasValue {
		b.WriteString(" value=" + ellipsis.Clip(strings.ToValidUTF8(raw.value, "\uFFFD"), 40))
	}
	for _, q := range raw.qualities {
		b.WriteString(" quality=" + ellipsis.Clip(strings.ToValidUTF8(q, "\uFFFD"), 40))
	}
	return b.String()
}

// xmlField names the Green Button element behind a field the shared
// validator names by its Opower column.
func xmlField(f string) string {
	switch f {
	case "service_point_id":
		return "UsagePoint"
	case "usage_value":
		return "value"
	case "minutes":
		return "timePeriod/duration"
	case "time", "date", "UTC_offset":
		return "timePeriod/start"
	case "units":
		return "ReadingType/uom"
	case "is_estimate":
		return "ReadingQuality/quality"
	case "service_type":
		return "ServiceCategory/kind"
	case "service_quantity_identifier":
		return "ReadingType/flowDirection"
	}
	return f
}

func validID(s string) bool {
	return len(s) <= 256 && strings.ToValidUTF8(s, "") == s && !strings.ContainsFunc(s, func(c rune) bool { return c < 0x20 || c == 0x7f })
}

// key is a 64-bit FNV-1a hash of an href: two hrefs of one file colliding
// is a chance of about n²/2⁶⁵ (10⁻⁸ for a million UsagePoints), and it
// keeps the memory per UsagePoint to a few dozen bytes.
func key(href string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(href); i++ {
		h ^= uint64(href[i])
		h *= 1099511628211
	}
	return h
}
