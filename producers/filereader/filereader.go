// Package filereader is the skeleton the billing and interval file readers
// share: it opens a file through internal/fileopen (plain, gzip or a zip of
// one file), reads the header line, hands out data lines with memory bounded
// by the line limit whatever the file size, rejects blank and over-long
// lines, counts lines, accepted and rejected rows, and turns what stops a
// file (an empty file, a damaged stream, a failing disk) into a *FileError
// that names the file and line, worded the same for both kinds.
//
// What a line means (its columns, their rules, redaction) is the reader's:
// a reader asks this package for the next line's bytes and gives back the
// row it accepted or the rejected row it built.
package filereader

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/usagestream/usagestream/internal/fileopen"
	"github.com/usagestream/usagestream/records"
)

// DefaultMaxLineBytes bounds one line when Options.MaxLineBytes is 0.
const DefaultMaxLineBytes = 64 << 10

// FileError is a problem with the file as a whole: the reader stops there.
// Rows returned before it stand.
type FileError struct {
	File  string
	Line  int64  // 0 when no line is concerned (open, compression container)
	Field string // column name, when one is concerned
	Err   error  // "<what is wrong>; <what to do>"
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("file ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(", line ")
		b.WriteString(strconv.FormatInt(e.Line, 10))
	}
	if e.Field != "" {
		b.WriteString(", field ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// Stats counts data lines (the header excluded). Lines == Accepted + Rejected
// always holds. RejectedByCode counts rejected rows per code: a row rejected
// for two codes counts once under each, so the sum may exceed Rejected.
type Stats struct {
	Lines, Accepted, Rejected int64
	RejectedByCode            map[string]int64
}

// Options configure a File.
type Options struct {
	// Kind names the file in messages: "billing", "interval".
	Kind string
	// Item is what a data line holds, in messages: "row", "read".
	Item string
	// MaxLineBytes bounds a line (0: DefaultMaxLineBytes); longer lines are
	// rejected without being read into memory whole.
	MaxLineBytes int
	// Prefix renders the beginning of a line over the limit for its rejected
	// row: the raw text as the reader shows it (redacted, cut, valid UTF-8)
	// and the service point id when it can be read there, else "". b is the
	// line's first buffer-full, valid only during the call. nil shows nothing.
	Prefix func(b []byte) (raw, servicePointID string)
}

// File is one data file being read. Not safe for concurrent use, except
// CompressedBytesRead, which a progress bar may poll from another goroutine.
type File struct {
	name     string // base name, in messages
	opts     Options
	maxLine  int
	warnings []string

	data     *fileopen.File
	consumed atomic.Int64

	line   int64 // physical line of the last line read; the header is line 1
	stats  Stats
	err    error // sticky: io.EOF or the *FileError that ended the file
	closed bool
}

// New checks opts before any byte is read, so that a misconfigured call fails
// without touching the file; name is the file's base name. Open or From give
// it its content.
func New(name string, opts Options) (*File, error) {
	f := &File{name: name, opts: opts, stats: Stats{RejectedByCode: map[string]int64{}}}
	switch {
	case opts.MaxLineBytes < 0:
		return nil, f.Err(0, "", fmt.Errorf("MaxLineBytes is %d; give 0 for the default of %d or a positive limit", opts.MaxLineBytes, DefaultMaxLineBytes))
	case opts.MaxLineBytes == 0:
		f.maxLine = DefaultMaxLineBytes
	default:
		f.maxLine = opts.MaxLineBytes
	}
	return f, nil
}

// Open opens path (see fileopen.Open: compression by content, a zip of
// exactly one file).
func (f *File) Open(path string) error {
	d, err := fileopen.Open(path, f.openOptions())
	if err != nil {
		return f.Err(0, "", err)
	}
	f.data = d
	return nil
}

// From reads the file's content from rd, which it does not close (see
// fileopen.New: a zip needs random access).
func (f *File) From(rd io.Reader) error {
	d, err := fileopen.New(rd, f.openOptions())
	if err != nil {
		return f.Err(0, "", err)
	}
	f.data = d
	return nil
}

// openOptions: the line buffer holds a maximal line plus CRLF, so the buffer
// fills up only for over-long lines, and the bytes taken from the file count
// where CompressedBytesRead reads them.
func (f *File) openOptions() fileopen.Options {
	return fileopen.Options{Kind: f.opts.Kind, BufSize: f.maxLine + 2, Count: &f.consumed}
}

// Err is a *FileError of this file.
func (f *File) Err(line int64, field string, err error) *FileError {
	return &FileError{File: f.name, Line: line, Field: field, Err: err}
}

// Name is the file's base name.
func (f *File) Name() string { return f.name }

// MaxLine is the line limit in bytes.
func (f *File) MaxLine() int { return f.maxLine }

// Line is the physical line last read (1 after the header).
func (f *File) Line() int64 { return f.line }

// Warn records something the caller should log.
func (f *File) Warn(msg string) { f.warnings = append(f.warnings, msg) }

// Warnings lists what the caller should log.
func (f *File) Warnings() []string { return append([]string(nil), f.warnings...) }

// Stats returns a copy of the counters so far.
func (f *File) Stats() Stats {
	s := f.stats
	s.RejectedByCode = maps.Clone(f.stats.RejectedByCode)
	return s
}

// CompressedBytesRead is the number of bytes consumed from the underlying
// file (compressed when it is compressed), for a progress bar against the
// file size.
func (f *File) CompressedBytesRead() int64 { return f.consumed.Load() }

// Close releases the decompressor and, for Open, the file. It is idempotent;
// reading after it is an error.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var err error
	if f.data != nil {
		err = f.data.Close()
	}
	if f.err == nil {
		f.err = f.Err(f.line, "", errors.New("the reader is closed; open the file again to read more"))
	}
	return err
}

// streamErr turns a read error into the FileError that ends the file.
func (f *File) streamErr(err error) *FileError {
	what, fix := "reading stopped", "check the storage or connection and run again"
	if fileopen.IsCorruption(err) {
		what, fix = "the file is truncated or corrupt", "send the file again"
	}
	if f.line == 0 {
		return f.Err(0, "", fmt.Errorf("%s before the end of its header (%w); %s", what, err, fix))
	}
	return f.Err(f.line, "", fmt.Errorf("%s after line %d (%w); %s", what, f.line, err, fix))
}

// Header reads line 1 and returns it without a UTF-8 byte order mark,
// checked to be valid UTF-8 and at most the line limit; want says what the
// header must name ("the columns a, b, c"), for the message of an empty file.
func (f *File) Header(want string) ([]byte, error) {
	b, long, err := f.data.ReadLine()
	switch {
	case err == io.EOF:
		return nil, f.Err(0, "", fmt.Errorf("the file is empty: it has no header line; send it with a header naming %s", want))
	case err != nil:
		f.err = f.streamErr(err)
		return nil, f.err
	case long || len(b) > f.maxLine:
		return nil, f.Err(1, "", fmt.Errorf("line 1 is longer than %d bytes, so it cannot be the header; check the file is a tab-separated %s file with line ends", f.maxLine, f.opts.Kind))
	}
	f.line = 1
	if bytes.HasPrefix(b, []byte{0xFF, 0xFE}) || bytes.HasPrefix(b, []byte{0xFE, 0xFF}) {
		return nil, f.Err(1, "", errors.New("the file is UTF-16; send it encoded as UTF-8"))
	}
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	if !utf8.Valid(b) {
		return nil, f.Err(1, "", errors.New("the header is not valid UTF-8; send the file encoded as UTF-8"))
	}
	return b, nil
}

// Next returns the next data line without its line end, valid until the next
// call; or, for a line that is blank or over the limit, its rejected row,
// already counted. It returns io.EOF at the end, or a *FileError when the
// file cannot be read further; both again on later calls. The caller counts
// every line Next returns with Accept or Reject.
func (f *File) Next() ([]byte, *records.Rejected, error) {
	if f.err != nil {
		return nil, nil, f.err
	}
	b, long, err := f.data.ReadLine()
	if err != nil {
		if err == io.EOF {
			f.err = io.EOF
		} else {
			f.err = f.streamErr(err)
		}
		return nil, nil, f.err
	}
	if long {
		return f.longLine(b)
	}
	f.line++
	f.stats.Lines++
	switch {
	case len(b) == 0:
		return nil, f.Reject(&records.Rejected{Line: f.line, Reasons: []records.Reason{{
			Code: records.CodeBlankLine, Rule: records.RuleFormat,
			Message: "the line is blank; every data line must hold a " + f.opts.Item + ", so remove blank lines",
		}}}), nil
	case len(b) > f.maxLine: // fits the buffer only through its last byte or a lone CR
		return nil, f.tooLong(b, int64(len(b))), nil
	}
	return b, nil, nil
}

// longLine skips an over-long line in buffer-sized steps, so memory stays
// bounded however long the line is.
func (f *File) longLine(first []byte) ([]byte, *records.Rejected, error) {
	var raw, spid string
	if f.opts.Prefix != nil {
		raw, spid = f.opts.Prefix(first) // before the buffer is reused
	}
	total := int64(len(first))
	last2 := [2]byte{0, first[len(first)-1]}
	if len(first) > 1 {
		last2[0] = first[len(first)-2]
	}
	for {
		b, err := f.data.Lines().ReadSlice('\n')
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
			f.err = f.streamErr(err)
			return nil, nil, f.err
		}
		break
	}
	if last2[1] == '\n' { // the line end is not the line's
		total--
		if last2[0] == '\r' {
			total--
		}
	}
	f.line++
	f.stats.Lines++
	return nil, f.rejectTooLong(raw, spid, total), nil
}

func (f *File) tooLong(b []byte, total int64) *records.Rejected {
	var raw, spid string
	if f.opts.Prefix != nil {
		raw, spid = f.opts.Prefix(b)
	}
	return f.rejectTooLong(raw, spid, total)
}

func (f *File) rejectTooLong(raw, spid string, total int64) *records.Rejected {
	return f.Reject(&records.Rejected{Line: f.line, Raw: raw, ServicePointID: spid, Reasons: []records.Reason{{
		Code: records.CodeLineTooLong, Rule: records.RuleFormat,
		Message: fmt.Sprintf("the line is %d bytes, over the limit of %d; check for a missing line end, or raise MaxLineBytes", total, f.maxLine),
	}}})
}

// Accept counts an accepted row.
func (f *File) Accept() { f.stats.Accepted++ }

// Reject counts a rejected row once, and once under each distinct code, and
// returns it.
func (f *File) Reject(rej *records.Rejected) *records.Rejected {
	f.stats.Rejected++
	for i, rs := range rej.Reasons {
		seen := false
		for _, prev := range rej.Reasons[:i] {
			if prev.Code == rs.Code {
				seen = true
				break
			}
		}
		if !seen {
			f.stats.RejectedByCode[rs.Code]++
		}
	}
	return rej
}
