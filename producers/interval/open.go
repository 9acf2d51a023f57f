package interval

import (
	"io"
	"path/filepath"
)

// Open opens an interval file and detects gzip or zip by its first bytes,
// never by its name (utilities rename files); anything else is read as plain
// text. A zip must hold exactly one file and no folders. The header is read
// and checked before Open returns; problems come back as *filereader.FileError.
func Open(path string, opts Options) (*Reader, error) {
	r, err := newReader(filepath.Base(path), opts)
	if err != nil {
		return nil, err
	}
	return r.start(r.f.Open(path))
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
	return r.start(r.f.From(rd))
}

// start reads the header of a file that opened without err.
func (r *Reader) start(err error) (*Reader, error) {
	if err == nil {
		err = r.readHeader()
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}
