package billing

import (
	"io"
	"path/filepath"

	"github.com/usagestream/usagestream/internal/fileopen"
)

// Open opens path and detects compression by magic bytes (gzip 1f 8b, zip
// "PK\x03\x04"), not by extension; plain text is read as is. A zip must hold
// exactly one file and no folders. The header is read and checked before Open
// returns: header problems come back as a *FileError.
func Open(path string, opts Options) (*Reader, error) {
	r, err := newReader(filepath.Base(path), opts)
	if err != nil {
		return nil, err
	}
	f, err := fileopen.Open(path, r.openOptions())
	if err != nil {
		return nil, r.fileErr(0, "", err)
	}
	return r.start(f)
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
	f, err := fileopen.New(rd, r.openOptions())
	if err != nil {
		return nil, r.fileErr(0, "", err)
	}
	return r.start(f)
}

// openOptions: the line buffer holds a maximal line (see bufSize), and the
// bytes taken from the file count where CompressedBytesRead reads them.
func (r *Reader) openOptions() fileopen.Options {
	return fileopen.Options{Kind: "billing", BufSize: r.bufSize(), Count: &r.consumed}
}

// start reads the header of an opened file.
func (r *Reader) start(f *fileopen.File) (*Reader, error) {
	r.data = f
	if err := r.readHeader(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}
