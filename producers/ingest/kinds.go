package ingest

import (
	"errors"
	"strings"

	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/producers/greenbutton"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

// item is one data line of either file kind: exactly one of row, read or
// rejected is set. Ingest treats both kinds alike but for the topic and the
// encoding of accepted lines.
type item struct {
	row      *records.BillingRow
	read     *records.IntervalRead
	rejected *records.Rejected
	// ord, when set, is the item's position for checkpoints instead of its
	// line: several IntervalReadings of a Green Button file may share an
	// XML line, so a resume after a line could skip some of them.
	ord int64
}

// position is what a checkpoint counts: the line, or ord when set.
func (it item) position() int64 {
	if it.ord != 0 {
		return it.ord
	}
	return it.line()
}

func (it item) line() int64 {
	switch {
	case it.row != nil:
		return it.row.Line
	case it.read != nil:
		return it.read.Line
	}
	return it.rejected.Line
}

// lineReader is what ingest needs of a file reader.
type lineReader interface {
	next() (item, error)
	lines() int64
	CompressedBytesRead() int64
	Warnings() []string
	Close() error
}

// billingLines reads a billing file. pump reads it as raw lines
// (readBatch) that its workers parse, each with its own billing.Parser;
// next is for other callers.
type billingLines struct{ *billing.Reader }

func (b billingLines) next() (item, error) {
	r, err := b.Next()
	return item{row: r.Row, rejected: r.Rejected}, err
}

// readBatch reads up to batchLines lines into b: their text into one
// string, grown to size bytes to begin with. It returns the error that
// ended the file, if it did.
func (b billingLines) readBatch(dst *batch, size int) error {
	var text strings.Builder
	text.Grow(size)
	dst.lines = dst.mem.lines[:0]
	defer func() { dst.mem.lines = dst.lines }()
	for len(dst.lines) < batchLines {
		line, n, rej, err := b.NextLine()
		if err != nil {
			dst.text = text.String()
			return err
		}
		off := text.Len()
		text.Write(line)
		dst.lines = append(dst.lines, rawLine{off: off, end: text.Len(), line: n, rej: rej})
	}
	dst.text = text.String()
	return nil
}

func (b billingLines) lines() int64 { return b.Stats().Lines }

type intervalLines struct{ *interval.Reader }

func (b intervalLines) next() (item, error) {
	r, err := b.Next()
	return item{read: r.Read, rejected: r.Rejected}, err
}

func (b intervalLines) lines() int64 { return b.Stats().Lines }

// greenbuttonLines reads Green Button XML: each IntervalReading is an item,
// numbered for checkpoints by its order in the file.
type greenbuttonLines struct{ *greenbutton.Reader }

func (g greenbuttonLines) next() (item, error) {
	r, err := g.Next()
	return item{read: r.Read, rejected: r.Rejected, ord: g.Ordinal()}, err
}

func (g greenbuttonLines) lines() int64 { return g.Stats().Lines }

// open dispatches on the file kind: an .xml name is a Green Button file, a
// name that says interval<mm> (or an explicit interval length) an interval
// file, anything else a billing file.
// It reads the already opened file (see received), so what is parsed is the
// file that was hashed, not whatever the path names by now.
func (in *Ingester) open(f *received, name records.FileName, nameErr error) (lineReader, records.Layout, error) {
	rd, err := f.content()
	if err != nil {
		return nil, "", err
	}
	if records.IsXML(f.base) {
		minutes := in.cfg.Interval.Minutes
		if nameErr == nil {
			minutes = name.IntervalMinutes
		}
		gr, err := greenbutton.NewReader(f.base, rd, greenbutton.Options{Check: in.cfg.Interval.Check, Location: in.cfg.Interval.Location, Minutes: minutes})
		if err != nil {
			return nil, records.LayoutInterval, err
		}
		return greenbuttonLines{gr}, records.LayoutInterval, nil
	}
	if in.isInterval(name, nameErr) {
		rd, err := interval.NewReader(f.base, rd, in.cfg.Interval)
		if err != nil {
			return nil, records.LayoutInterval, err
		}
		return intervalLines{rd}, records.LayoutInterval, nil
	}
	br, err := billing.NewReader(f.base, rd, in.cfg.Reader)
	if err != nil {
		return nil, "", err
	}
	return billingLines{br}, br.Layout(), nil
}

func (in *Ingester) isInterval(name records.FileName, nameErr error) bool {
	return records.IsXML(name.Base) || (nameErr == nil && name.IntervalMinutes > 0) || (nameErr != nil && in.cfg.Interval.Minutes > 0)
}

func isFileError(err error) bool {
	var fe *filereader.FileError
	return errors.As(err, &fe)
}
