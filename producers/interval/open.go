package interval

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Open opens an interval file and detects gzip or zip by its first bytes,
// never by its name (utilities rename files); anything else is read as plain
// text. A zip must hold exactly one file and no folders. The header is read
// and checked before Open returns; problems come back as *billing.FileError.
func Open(path string, opts Options) (*Reader, error) {
	r, err := newReader(filepath.Base(path), opts)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, r.fileErr(0, "", fmt.Errorf("cannot open the file (%w); check the path and its permissions", err))
	}
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		f.Close()
		if err == nil {
			err = errors.New("it is a directory")
		}
		return nil, r.fileErr(0, "", fmt.Errorf("cannot read the file (%w); give the path of an interval file", err))
	}
	var magic [4]byte
	n, _ := f.ReadAt(magic[:], 0)
	r.closers = append(r.closers, f)
	if isZip(magic[:n]) {
		return r.startZip(f, st.Size())
	}
	return r.start(&countingReader{r: f, n: &r.consumed})
}

// NewReader reads an interval file from rd (gzip detected by content; zip
// needs Open). name is the file's base name, for the interval length and messages.
func NewReader(name string, rd io.Reader, opts Options) (*Reader, error) {
	r, err := newReader(filepath.Base(name), opts)
	if err != nil {
		return nil, err
	}
	if rd == nil {
		return nil, r.fileErr(0, "", errors.New("no reader was given; pass the file's content"))
	}
	return r.start(&countingReader{r: rd, n: &r.consumed})
}

func isZip(magic []byte) bool {
	return bytes.HasPrefix(magic, []byte("PK\x03\x04")) || bytes.HasPrefix(magic, []byte("PK\x05\x06"))
}

func (r *Reader) start(src io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	if magic, _ := br.Peek(4); isZip(magic) {
		r.Close()
		return nil, r.fileErr(0, "", errors.New("the file is a zip archive, which needs random access; open it by its path, or unzip it"))
	}
	r.lines = br
	if magic, _ := br.Peek(2); string(magic) == "\x1f\x8b" {
		gz, err := gzip.NewReader(br)
		if err != nil {
			r.Close()
			return nil, r.fileErr(0, "", fmt.Errorf("the file starts like gzip but its gzip header is unreadable (%w); send the file again", err))
		}
		r.closers = append([]io.Closer{gz}, r.closers...)
		r.lines = bufio.NewReaderSize(gz, r.bufSize())
	}
	return r, r.readHeaderOrClose()
}

func (r *Reader) startZip(ra io.ReaderAt, size int64) (*Reader, error) {
	fail := func(err error) (*Reader, error) {
		r.Close()
		return nil, r.fileErr(0, "", err)
	}
	zr, err := zip.NewReader(&countingReaderAt{r: ra, n: &r.consumed}, size)
	if err != nil {
		return fail(fmt.Errorf("the zip archive is unreadable (%w); send the file again", err))
	}
	var files []*zip.File
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() || strings.ContainsAny(zf.Name, `/\`) {
			return fail(fmt.Errorf("the zip archive holds a folder (entry %q); it must hold exactly one file and no folders", clip(zf.Name)))
		}
		files = append(files, zf)
	}
	if len(files) != 1 {
		return fail(fmt.Errorf("the zip archive holds %d files; it must hold exactly one interval file, so send one file per archive", len(files)))
	}
	rc, err := files[0].Open()
	if err != nil {
		return fail(fmt.Errorf("cannot read %q in the zip archive (%w); send it as a plain deflate zip or as gzip", clip(files[0].Name), err))
	}
	if off, err := files[0].DataOffset(); err == nil {
		r.consumed.Store(off) // progress runs over the entry's bytes, within the file size
	}
	r.closers = append([]io.Closer{rc}, r.closers...)
	r.lines = bufio.NewReaderSize(rc, r.bufSize())
	return r, r.readHeaderOrClose()
}

func (r *Reader) readHeaderOrClose() error {
	if err := r.readHeader(); err != nil {
		r.Close()
		return err
	}
	return nil
}

// isCorruption tells a damaged compressed stream (send the file again) from a
// failing disk or network (run again).
func isCorruption(err error) bool {
	var ce flate.CorruptInputError
	return errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, zip.ErrChecksum) || errors.Is(err, zip.ErrFormat) ||
		errors.As(err, &ce)
}

// countingReader counts bytes taken from the file for progress bars; atomic
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
