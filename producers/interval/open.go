package interval

import (
	"io"
	"path/filepath"

	"github.com/usagestream/usagestream/internal/fileopen"
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
	f, err := fileopen.Open(path, r.openOptions())
	if err != nil {
		return nil, r.fileErr(0, "", err)
	}
	return r.start(f)
}

// NewReader reads an interval file from rd, which it does not close; name is
// the file's base name, for the interval length and messages. gzip is
// detected by content; a zip needs random access, so it is accepted only when
// rd is an io.ReaderAt with a Size method (bytes.Reader, strings.Reader) or an
// *os.File.
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

func (r *Reader) openOptions() fileopen.Options {
	return fileopen.Options{Kind: "interval", BufSize: r.bufSize(), Count: &r.consumed}
}

// start reads the header of an opened file.
func (r *Reader) start(f *fileopen.File) (*Reader, error) {
	r.src = f
	if err := r.readHeader(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}
