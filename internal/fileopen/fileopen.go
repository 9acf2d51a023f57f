// Package fileopen opens the data files utilities send (billing and interval
// files): plain text, gzip or a zip of one file, told apart by their first
// bytes, never by their names, since utilities rename files. It gives the
// decompressed lines, counts the bytes taken from the file as received for
// progress bars, and says whether a read error means a damaged file (send it
// again) or failing storage (run again).
//
// Errors name no file: the readers wrap them with the file's name.
package fileopen

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"

	"github.com/usagestream/usagestream/internal/ellipsis"
)

// Compression is detected by content.
const (
	magicGzip     = "\x1f\x8b"
	magicZip      = "PK\x03\x04"
	magicZipEmpty = "PK\x05\x06" // an archive with no entries starts with its end record
)

// Options say how to read a file.
type Options struct {
	// Kind names the file in messages, e.g. "billing" or "interval".
	Kind string
	// BufSize is the line buffer (0: 64 KiB): a line that does not fit comes
	// back from ReadLine in buffer-sized pieces marked long, so memory stays
	// bounded.
	BufSize int
	// Count, when set, is where the bytes taken from the file are counted
	// (see File.Consumed), for a reader that reports progress itself.
	Count *atomic.Int64
}

// File is an opened data file. Not safe for concurrent use, except Consumed.
type File struct {
	lines   *bufio.Reader
	closers []io.Closer // closed in order: decompressors before the file
	count   *atomic.Int64
}

func newFile(o Options) *File {
	df := &File{count: o.Count}
	if df.count == nil {
		df.count = new(atomic.Int64)
	}
	return df
}

// Open opens path. For plain and gzip files the file's bytes are read as a
// stream; a zip is read through its directory and must hold exactly one file
// and no folders.
func Open(path string, o Options) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open the file (%w); check the path and its permissions", err)
	}
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		f.Close()
		if err == nil {
			err = errors.New("it is a directory")
		}
		return nil, fmt.Errorf("cannot read the file (%w); give the path of %s file", err, article(o.Kind))
	}
	var magic [4]byte
	n, _ := f.ReadAt(magic[:], 0)
	df := newFile(o)
	if isZip(magic[:n]) {
		if err := df.startZip(f, st.Size(), o); err != nil {
			f.Close()
			return nil, err
		}
		df.closers = append(df.closers, f)
		return df, nil
	}
	df.closers = append(df.closers, f)
	if err := df.startStream(bufio.NewReaderSize(&countingReader{r: f, n: df.count}, o.bufSize())); err != nil {
		df.Close()
		return nil, err
	}
	return df, nil
}

// New reads a file's content from rd, which it does not close. gzip is
// detected by content; a zip needs random access, so it is accepted only
// when rd is an io.ReaderAt with a Size method (bytes.Reader, strings.Reader)
// or an *os.File.
func New(rd io.Reader, o Options) (*File, error) {
	if rd == nil {
		return nil, errors.New("no reader was given; pass the file's content")
	}
	df := newFile(o)
	br := bufio.NewReaderSize(&countingReader{r: rd, n: df.count}, o.bufSize())
	if magic, _ := br.Peek(4); isZip(magic) {
		ra, size, ok := randomAccess(rd)
		if !ok {
			return nil, errors.New("the file is a zip archive, which needs random access; use Open with its path, or unzip it")
		}
		if err := df.startZip(ra, size, o); err != nil {
			return nil, err
		}
		return df, nil
	}
	if err := df.startStream(br); err != nil {
		df.Close()
		return nil, err
	}
	return df, nil
}

func (o Options) bufSize() int {
	if o.BufSize <= 0 {
		return 64 << 10
	}
	return o.BufSize
}

func article(kind string) string {
	if kind == "" {
		return "a data"
	}
	if strings.ContainsRune("aeiouAEIOU", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

func isZip(magic []byte) bool {
	return bytes.HasPrefix(magic, []byte(magicZip)) || bytes.HasPrefix(magic, []byte(magicZipEmpty))
}

func randomAccess(rd io.Reader) (io.ReaderAt, int64, bool) {
	switch v := rd.(type) {
	case interface {
		io.ReaderAt
		Size() int64
	}:
		return v, v.Size(), true
	case *os.File:
		st, err := v.Stat()
		if err != nil {
			return nil, 0, false
		}
		return v, st.Size(), true
	}
	return nil, 0, false
}

// startStream decompresses gzip when the first bytes say so.
func (df *File) startStream(br *bufio.Reader) error {
	df.lines = br
	if magic, _ := br.Peek(2); string(magic) == magicGzip {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("the file starts like gzip but its gzip header is unreadable (%w); send the file again", err)
		}
		// gzip's Close does not close br; it goes first so it closes before the file.
		df.closers = append([]io.Closer{gz}, df.closers...)
		df.lines = bufio.NewReaderSize(gz, br.Size())
	}
	return nil
}

// startZip checks the archive holds exactly one file and no folder, and
// opens that file.
func (df *File) startZip(ra io.ReaderAt, size int64, o Options) error {
	zr, err := zip.NewReader(&countingReaderAt{r: ra, n: df.count}, size)
	if err != nil {
		return fmt.Errorf("the zip archive is unreadable (%w); send the file again", err)
	}
	var files []*zip.File
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() || strings.ContainsAny(zf.Name, `/\`) {
			return fmt.Errorf("the zip archive holds a folder (entry %q); it must hold exactly one file and no folders, so zip the %s file alone", clip(zf.Name), o.Kind)
		}
		files = append(files, zf)
	}
	switch len(files) {
	case 0:
		return fmt.Errorf("the zip archive holds no file; it must hold exactly one %s file, so send the file again", o.Kind)
	case 1:
	default:
		return fmt.Errorf("the zip archive holds %d files; it must hold exactly one, so send one file per archive", len(files))
	}
	rc, err := files[0].Open()
	if err != nil {
		return fmt.Errorf("cannot read %q in the zip archive (%w); send it as a plain deflate zip or as gzip", clip(files[0].Name), err)
	}
	// Reading the directory touched the end of the file: restart the count at the
	// entry's data, so progress runs from there to the entry's end, within the file size.
	if off, err := files[0].DataOffset(); err == nil {
		df.count.Store(off)
	}
	df.closers = append([]io.Closer{rc}, df.closers...)
	df.lines = bufio.NewReaderSize(rc, o.bufSize())
	return nil
}

// Lines is the decompressed content, for a reader with its own line loop.
func (df *File) Lines() *bufio.Reader { return df.lines }

// ReadLine returns the next line without its line end (LF or CRLF). long is
// set when the line did not fit the buffer: then b is only its next
// buffer-full, and the caller reads on to skip the rest. At the end of input
// it returns io.EOF with no bytes; a read error comes back as is (see
// IsCorruption). b is valid until the next call.
func (df *File) ReadLine() (b []byte, long bool, err error) {
	b, err = df.lines.ReadSlice('\n')
	switch {
	case err == nil:
	case errors.Is(err, bufio.ErrBufferFull):
		return b, true, nil
	case err == io.EOF:
		if len(b) == 0 {
			return nil, false, io.EOF
		}
	default:
		return nil, false, err // a partial line before a read error is not a line
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b, false, nil
}

// Consumed is the number of bytes taken from the file as received
// (compressed when it is compressed), for a progress bar against its size.
// Safe to call from another goroutine.
func (df *File) Consumed() int64 { return df.count.Load() }

// Close releases the decompressor and, for Open, the file.
func (df *File) Close() error {
	var errs []error
	for _, c := range df.closers {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	df.closers = nil
	return errors.Join(errs...)
}

// IsCorruption tells a damaged compressed stream (send the file again) from a
// failing disk or network (run again).
func IsCorruption(err error) bool {
	// gzip is klauspost/compress's (1.2 to 1.3 times as fast as
	// compress/gzip); its CorruptInputError is compress/flate's.
	var ce flate.CorruptInputError
	return errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, zip.ErrChecksum) || errors.Is(err, zip.ErrFormat) ||
		errors.As(err, &ce)
}

// clip keeps messages short when an entry name is absurdly long.
func clip(s string) string { return ellipsis.Clip(s, 40) }

// countingReader counts bytes taken from the source, for progress bars; atomic
// because a progress bar polls from another goroutine.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingReaderAt struct {
	r io.ReaderAt
	n *atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}
