package billing

import (
	"io"
	"path/filepath"
)

// Open opens path and detects compression by magic bytes (gzip 1f 8b, zip
// "PK\x03\x04"), not by extension; plain text is read as is. A zip must hold
// exactly one file and no folders. The header is read and checked before Open
// returns: header problems come back as a *filereader.FileError.
func Open(path string, opts Options) (*Reader, error) {
	r, err := newReader(filepath.Base(path), opts)
	if err != nil {
		return nil, err
	}
	return r.start(r.f.Open(path))
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
