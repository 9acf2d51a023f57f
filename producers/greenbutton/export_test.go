package greenbutton

import (
	"io"
	"path/filepath"

	"github.com/usagestream/usagestream/internal/fileopen"
)

// NewDecoderOnlyReader is NewReader with the fast path off: every token
// from encoding/xml, the reference the fast path is compared with.
func NewDecoderOnlyReader(name string, rd io.Reader, opts Options) (*Reader, error) {
	r, err := newReader(filepath.Base(name), opts)
	if err != nil {
		return nil, err
	}
	r.noFast = true
	d, err := fileopen.New(rd, fileopen.Options{Kind: "Green Button"})
	if err != nil {
		return nil, r.fileErr(0, "", err)
	}
	return r.start(d)
}

// FastReadings is the number of IntervalReadings the fast path read.
func (r *Reader) FastReadings() int64 { return r.fast }
