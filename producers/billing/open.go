package billing

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Compression is detected by content, never by name: utilities rename files.
const (
	magicGzip     = "\x1f\x8b"
	magicZip      = "PK\x03\x04"
	magicZipEmpty = "PK\x05\x06" // an archive with no entries starts with its end record
)

// Open opens path and detects compression by magic bytes (gzip 1f 8b, zip
// "PK\x03\x04"), not by extension; plain text is read as is. A zip must hold
// exactly one file and no folders. The header is read and checked before Open
// returns: header problems come back as a *FileError.
func Open(path string, opts Options) (*Reader, error) {
	base := filepath.Base(path)
	r, err := newReader(base, opts)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{File: base, Err: fmt.Errorf("cannot open the file (%w); check the path and its permissions", err)}
	}
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		f.Close()
		if err == nil {
			err = errors.New("it is a directory")
		}
		return nil, &FileError{File: base, Err: fmt.Errorf("cannot read the file (%w); give the path of a billing file", err)}
	}
	var magic [4]byte
	n, _ := f.ReadAt(magic[:], 0)
	if isZip(magic[:n]) {
		return r.startZip(f, st.Size(), f)
	}
	return r.startStream(&countingReader{r: f, n: &r.consumed}, f)
}

// NewReader reads a billing file from rd; name is the file's base name, used for
// the layout (unless opts.Layout is set) and in messages. gzip is detected by
// content; a zip needs random access, so it is accepted only when rd is an
// io.ReaderAt with a Size method (bytes.Reader, strings.Reader) or an *os.File.
// NewReader does not close rd.
func NewReader(name string, rd io.Reader, opts Options) (*Reader, error) {
	r, err := newReader(filepath.Base(name), opts)
	if err != nil {
		return nil, err
	}
	if rd == nil {
		return nil, r.fileErr(0, "", errors.New("no reader was given; pass the file's content"))
	}
	br := bufio.NewReaderSize(&countingReader{r: rd, n: &r.consumed}, r.bufSize())
	magic, _ := br.Peek(4)
	if isZip(magic) {
		if ra, size, ok := randomAccess(rd); ok {
			return r.startZip(ra, size, nil)
		}
		return nil, r.fileErr(0, "", errors.New("the file is a zip archive, which needs random access; use Open with its path, or unzip it"))
	}
	return r.startBuffered(br, nil)
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

func (r *Reader) startStream(src io.Reader, owned io.Closer) (*Reader, error) {
	return r.startBuffered(bufio.NewReaderSize(src, r.bufSize()), owned)
}

// startBuffered decompresses gzip when the magic says so, then reads the header.
func (r *Reader) startBuffered(br *bufio.Reader, owned io.Closer) (*Reader, error) {
	if owned != nil {
		r.closers = append(r.closers, owned)
	}
	r.lines = br
	if magic, _ := br.Peek(2); string(magic) == magicGzip {
		gz, err := gzip.NewReader(br)
		if err != nil {
			r.Close()
			return nil, r.fileErr(0, "", fmt.Errorf("the file starts like gzip but its gzip header is unreadable (%w); send the file again", err))
		}
		// gzip's Close does not close br; it is listed first so it closes before the file.
		r.closers = append([]io.Closer{gz}, r.closers...)
		r.lines = bufio.NewReaderSize(gz, r.bufSize())
	}
	if err := r.readHeader(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// startZip checks the archive holds exactly one file and no folder, then reads it.
func (r *Reader) startZip(ra io.ReaderAt, size int64, owned io.Closer) (*Reader, error) {
	fail := func(err error) (*Reader, error) {
		if owned != nil {
			owned.Close()
		}
		return nil, r.fileErr(0, "", err)
	}
	zr, err := zip.NewReader(&countingReaderAt{r: ra, n: &r.consumed}, size)
	if err != nil {
		return fail(fmt.Errorf("the zip archive is unreadable (%w); send the file again", err))
	}
	var files []*zip.File
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() || strings.ContainsAny(zf.Name, `/\`) {
			return fail(fmt.Errorf("the zip archive holds a folder (entry %q); it must hold exactly one file and no folders, so zip the billing file alone", clip(zf.Name)))
		}
		files = append(files, zf)
	}
	switch len(files) {
	case 0:
		return fail(errors.New("the zip archive holds no file; it must hold exactly one billing file, so send the file again"))
	case 1:
	default:
		return fail(fmt.Errorf("the zip archive holds %d files; it must hold exactly one, so send one file per archive", len(files)))
	}
	rc, err := files[0].Open()
	if err != nil {
		return fail(fmt.Errorf("cannot read %q in the zip archive (%w); send it as a plain deflate zip or as gzip", clip(files[0].Name), err))
	}
	// Reading the directory touched the end of the file: restart the count at the
	// entry's data, so progress runs from there to the entry's end, within the file size.
	if off, err := files[0].DataOffset(); err == nil {
		r.consumed.Store(off)
	}
	if owned != nil {
		r.closers = append(r.closers, owned)
	}
	r.closers = append([]io.Closer{rc}, r.closers...)
	r.lines = bufio.NewReaderSize(rc, r.bufSize())
	if err := r.readHeader(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

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
