package billing

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/usagestream/usagestream/internal/fileopen"
	"github.com/usagestream/usagestream/records"
)

// DefaultMaxLineBytes bounds one line when Options.MaxLineBytes is 0.
const DefaultMaxLineBytes = 64 << 10

// Options configures a Reader. The zero value reads a conforming file name's
// layout with the default service types, no net metering, 64 KiB lines and
// personal data redacted.
type Options struct {
	Layout       records.Layout // "" = take it from the file name; required when the name does not conform
	ServiceTypes []string       // allowed service_type codes; nil = records.DefaultServiceTypes
	NetMetering  bool           // allow negative usage_value / usage_charge (rule U9)
	MaxLineBytes int            // 0 = 64 KiB; longer lines are rejected without being read into memory whole
	KeepPersonal bool           // false = redact personal columns in Rejected.Raw and in messages
}

// Reader streams one billing file: each data line becomes exactly one Record.
// Memory is bounded by MaxLineBytes and the column count, whatever the file size.
// A Reader is not safe for concurrent use, except CompressedBytesRead, which a
// progress bar may poll from another goroutine.
type Reader struct {
	file     string
	name     records.FileName
	layout   records.Layout
	warnings []string

	maxLine      int
	serviceTypes []string // upper-case
	netMetering  bool
	keepPersonal bool

	cols     []records.Column // known columns of the layout, canonical order
	ids      []int            // per known position: index into records.BillingColumns (the c* constants)
	extra    []string         // trailing unknown column names
	nFields  int              // known + extra
	personal []bool           // per position: redact in Raw
	spPos    int              // position of service_point_id

	data     *fileopen.File
	consumed atomic.Int64

	line    int64 // physical line of the last line read
	stats   Stats
	err     error            // sticky: io.EOF or the *FileError that ended the file
	fields  []string         // reused per line
	reasons []records.Reason // reused per line; copied out only for rejected rows
	closed  bool
}

// newReader checks options and settles the layout before any byte is read, so a
// misconfigured call fails without touching the file.
func newReader(base string, opts Options) (*Reader, error) {
	r := &Reader{file: base, netMetering: opts.NetMetering, keepPersonal: opts.KeepPersonal}
	r.stats.RejectedByCode = map[string]int64{}

	switch {
	case opts.MaxLineBytes < 0:
		return nil, r.fileErr(0, "", fmt.Errorf("MaxLineBytes is %d; give 0 for the default of %d or a positive limit", opts.MaxLineBytes, DefaultMaxLineBytes))
	case opts.MaxLineBytes == 0:
		r.maxLine = DefaultMaxLineBytes
	default:
		r.maxLine = opts.MaxLineBytes
	}

	types := opts.ServiceTypes
	if types == nil {
		types = records.DefaultServiceTypes
	}
	for _, t := range types {
		if t = strings.ToUpper(strings.TrimSpace(t)); t != "" {
			r.serviceTypes = append(r.serviceTypes, t)
		}
	}
	if len(r.serviceTypes) == 0 {
		return nil, r.fileErr(0, "", errors.New("Options.ServiceTypes has no usable code; give nil for E, G, W or list the allowed codes"))
	}

	name, nameErr := records.ParseFileName(base)
	r.name = name
	switch opts.Layout {
	case records.LayoutFull, records.LayoutCustomer, records.LayoutUsage:
		r.layout = opts.Layout
		if nameErr != nil {
			r.warnings = append(r.warnings, fmt.Sprintf("%v; processed as the %s layout given explicitly", nameErr, opts.Layout))
		} else if name.Layout != opts.Layout {
			r.warnings = append(r.warnings, fmt.Sprintf("file name kind %q differs from the %s layout given explicitly; the explicit layout is used", name.Kind, opts.Layout))
		}
	case "":
		if nameErr != nil {
			return nil, r.fileErr(0, "", fmt.Errorf("the layout cannot be taken from the name (%w)", nameErr))
		}
		if name.Layout == "" {
			return nil, r.fileErr(0, "", fmt.Errorf("the file name says %q, an interval file; read it with the interval reader, or give a billing layout explicitly", name.Kind))
		}
		r.layout = name.Layout
	default:
		return nil, r.fileErr(0, "", fmt.Errorf("layout %q is unknown; use %q, %q or %q", opts.Layout, records.LayoutFull, records.LayoutCustomer, records.LayoutUsage))
	}

	r.cols = records.LayoutColumns(r.layout)
	r.ids = make([]int, len(r.cols))
	for i, c := range r.cols {
		r.ids[i] = columnIndex(c.Name)
		if c.Name == "service_point_id" {
			r.spPos = i
		}
	}
	return r, nil
}

// bufSize holds a maximal line plus CRLF, so ReadSlice fills the buffer only for over-long lines.
func (r *Reader) bufSize() int { return r.maxLine + 2 }

func (r *Reader) fileErr(line int64, field string, err error) *FileError {
	return &FileError{File: r.file, Line: line, Field: field, Err: err}
}

// Name is the parsed file name; Name().Conforms is false for a file processed
// under an explicit layout despite its name.
func (r *Reader) Name() records.FileName { return r.name }

// Layout is the layout the file is read with.
func (r *Reader) Layout() records.Layout { return r.layout }

// ExtraColumns names the unknown trailing columns of the header, in file order.
func (r *Reader) ExtraColumns() []string { return append([]string(nil), r.extra...) }

// Warnings lists what the caller should log: a non-conforming name processed
// under an explicit layout, or a name whose kind differs from that layout.
func (r *Reader) Warnings() []string { return append([]string(nil), r.warnings...) }

// Stats returns a copy of the counters so far.
func (r *Reader) Stats() Stats {
	s := r.stats
	s.RejectedByCode = maps.Clone(r.stats.RejectedByCode)
	return s
}

// CompressedBytesRead is the number of bytes consumed from the underlying file
// (compressed when it is compressed), for a progress bar against the file size.
func (r *Reader) CompressedBytesRead() int64 { return r.consumed.Load() }

// Close releases the decompressor and, for Open, the file. It is idempotent.
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
		r.err = r.fileErr(r.line, "", errors.New("the reader is closed; open the file again to read more"))
	}
	return err
}

// readLine returns the next line without its line end (see fileopen.File.ReadLine).
func (r *Reader) readLine() (b []byte, long bool, err error) { return r.data.ReadLine() }

// streamErr turns a read error into the FileError that ends the file.
func (r *Reader) streamErr(err error) *FileError {
	if r.line == 0 {
		if fileopen.IsCorruption(err) {
			return r.fileErr(0, "", fmt.Errorf("the file is truncated or corrupt before the end of its header (%w); send the file again", err))
		}
		return r.fileErr(0, "", fmt.Errorf("reading stopped before the end of the header (%w); check the storage or connection and run again", err))
	}
	if fileopen.IsCorruption(err) {
		return r.fileErr(r.line, "", fmt.Errorf("the file is truncated or corrupt after line %d (%w); send the file again", r.line, err))
	}
	return r.fileErr(r.line, "", fmt.Errorf("reading stopped after line %d (%w); check the storage or connection and run again", r.line, err))
}

// Next returns the next data line as a Row or a Rejected row. It returns io.EOF
// at the end, or a *FileError when the file cannot be read further; both are
// returned again by later calls.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	b, long, err := r.readLine()
	if err != nil {
		if err == io.EOF {
			r.err = io.EOF
		} else {
			r.err = r.streamErr(err)
		}
		return Record{}, r.err
	}
	if long {
		return r.longLine(b)
	}
	r.line++
	r.stats.Lines++
	if len(b) == 0 {
		return r.reject(&records.Rejected{Line: r.line, Reasons: []records.Reason{{
			Code: records.CodeBlankLine, Rule: records.RuleFormat,
			Message: "the line is blank; every data line must hold a row, so remove blank lines",
		}}}), nil
	}
	if len(b) > r.maxLine { // fits the buffer only through its last byte or a lone CR
		return r.tooLong(b, int64(len(b))), nil
	}

	validUTF8 := utf8.Valid(b)
	if n := bytes.Count(b, []byte("\t")) + 1; n != r.nFields {
		return r.fieldCount(b, n, validUTF8), nil
	}
	s := string(b) // the one copy of the line; fields are substrings of it
	// The tab count is known, so one byte loop splits the line; for short fields
	// it beats a call per field.
	f := r.fields[:r.nFields]
	k, start := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\t' {
			f[k] = s[start:i]
			k++
			start = i + 1
		}
	}
	f[k] = s[start:]

	row := &records.BillingRow{Layout: r.layout, Line: r.line}
	r.reasons = r.reasons[:0]
	r.parseFields(row, f, validUTF8)
	if len(r.reasons) > 0 {
		return r.reject(&records.Rejected{
			Line:           r.line,
			Raw:            r.redactFields(f),
			ServicePointID: readableID(f[r.spPos], validUTF8),
			Reasons:        append([]records.Reason(nil), r.reasons...),
		}), nil
	}
	if len(r.extra) > 0 {
		row.Extra = make([]records.Attribute, len(r.extra))
		for i, name := range r.extra {
			row.Extra[i] = records.Attribute{Name: name, Value: f[len(r.cols)+i]}
		}
	}
	r.stats.Accepted++
	return Record{Row: row}, nil
}

// reject counts a rejected row once, and once under each distinct code.
func (r *Reader) reject(rej *records.Rejected) Record {
	r.stats.Rejected++
	for i, rs := range rej.Reasons {
		seen := false
		for _, prev := range rej.Reasons[:i] {
			if prev.Code == rs.Code {
				seen = true
				break
			}
		}
		if !seen {
			r.stats.RejectedByCode[rs.Code]++
		}
	}
	return Record{Rejected: rej}
}

func (r *Reader) fieldCount(b []byte, n int, validUTF8 bool) Record {
	rej := &records.Rejected{Line: r.line, Raw: r.redactCount(b, n)}
	rej.Reasons = append(rej.Reasons, records.Reason{
		Code: records.CodeFieldCount, Rule: records.RuleFormat,
		Message: fmt.Sprintf("%d fields, expected %d (the header's count); a tab is missing or extra", n, r.nFields),
	})
	if !validUTF8 {
		rej.Reasons = append(rej.Reasons, records.Reason{
			Code: records.CodeInvalidUTF8, Rule: records.RuleFormat,
			Message: "the line is not valid UTF-8; send the file encoded as UTF-8",
		})
	}
	return r.reject(rej)
}

// longLine skips an over-long line in buffer-sized steps, so memory stays bounded
// however long the line is.
func (r *Reader) longLine(first []byte) (Record, error) {
	raw := r.redactPrefix(first) // copies before the buffer is reused
	spid := r.prefixID(first)
	total := int64(len(first))
	last2 := [2]byte{0, first[len(first)-1]}
	if len(first) > 1 {
		last2[0] = first[len(first)-2]
	}
	for {
		b, err := r.data.Lines().ReadSlice('\n')
		total += int64(len(b))
		if n := len(b); n >= 2 {
			last2 = [2]byte{b[n-2], b[n-1]}
		} else if n == 1 {
			last2 = [2]byte{last2[1], b[0]}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && err != io.EOF {
			r.err = r.streamErr(err)
			return Record{}, r.err
		}
		break
	}
	if last2[1] == '\n' {
		total--
		if last2[0] == '\r' {
			total--
		}
	}
	r.line++
	r.stats.Lines++
	rec := r.tooLongRecord(raw, spid, total)
	return rec, nil
}

// tooLong rejects a line that fit the buffer but exceeds the limit.
func (r *Reader) tooLong(b []byte, total int64) Record {
	return r.tooLongRecord(r.redactPrefix(b), r.prefixID(b), total)
}

func (r *Reader) tooLongRecord(raw, spid string, total int64) Record {
	return r.reject(&records.Rejected{Line: r.line, Raw: raw, ServicePointID: spid, Reasons: []records.Reason{{
		Code: records.CodeLineTooLong, Rule: records.RuleFormat,
		Message: fmt.Sprintf("the line is %d bytes, over the limit of %d; check for a missing line end, or raise MaxLineBytes", total, r.maxLine),
	}}})
}

// readableID is the service point id when it can key a Kafka record.
func readableID(v string, validUTF8 bool) string {
	if isBlank(v) || (!validUTF8 && !utf8.ValidString(v)) {
		return ""
	}
	return v
}
