package billing

import "github.com/usagestream/usagestream/records"

// Parser parses the data lines of one Reader's file apart from reading
// them, so that the lines one goroutine reads (NextLine) can be parsed by
// others: reading, with decompression, is one stream, while parsing and
// checking a line needs nothing but the line and the file's header and
// options. A Parser gives for a line what Next gives for it (the same row,
// the same rejected row with the same reasons, file line and field names).
// Each Parser has its own buffers: one per goroutine.
type Parser struct {
	r Reader // the settings and header of the Reader; no file
}

// NewParser returns a Parser of r's layout, header and options. It shares
// nothing mutable with r: it may run in another goroutine than r.
func (r *Reader) NewParser() *Parser {
	p := &Parser{r: *r}
	p.r.f = nil
	p.r.fields = make([]string, r.nFields)
	p.r.reasons = nil
	return p
}

// Parse parses data line s, physical line number line, as NextLine gave
// them, into dst and returns nil; or returns the line's rejected row, with
// dst then undefined. dst's strings are substrings of s, and its Extra
// slice is reused, so one dst serves row after row. Parse counts nothing:
// see NextLine.
func (p *Parser) Parse(dst *records.BillingRow, s string, line int64) *records.Rejected {
	return p.r.parseLine(dst, s, line)
}

// NextLine returns the next data line's bytes and its physical line number
// (the header is line 1), for a caller that parses lines with a Parser. b is
// valid until the next call. A line that is blank or over the limit comes
// back as its rejected row instead, as Next returns it. It returns io.EOF
// at the end, or a *FileError when the file cannot be read further; both
// again on later calls.
//
// Stats counts every line NextLine returns in Lines, and the blank and
// over-long ones in Rejected; the lines handed to a Parser are counted as
// accepted or rejected by the caller, not in Stats.
func (r *Reader) NextLine() (b []byte, line int64, rej *records.Rejected, err error) {
	b, rej, err = r.f.Next()
	if err != nil {
		return nil, 0, nil, err
	}
	if rej != nil {
		return nil, rej.Line, rej, nil
	}
	return b, r.f.Line(), nil, nil
}
