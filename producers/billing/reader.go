package billing

import (
	"errors"
	"fmt"
	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/records"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// DefaultMaxLineBytes bounds one line when Options.MaxLineBytes is 0.
const DefaultMaxLineBytes = filereader.DefaultMaxLineBytes

// Options configures a Reader. The zero value reads a conforming file name's
// layout with the default service types, no net metering, 64 KiB lines and
// personal data redacted.
type Options struct {
	Layout       records.Layout // "" = take it from the file name; required when the name does not conform
	ServiceTypes []string       // allowed service_type codes; nil = records.DefaultServiceTypes()
	NetMetering  bool           // allow negative usage_value (rule U9); a negative usage_charge (a credit) is always allowed
	MaxLineBytes int            // 0 = 64 KiB; longer lines are rejected without being read into memory whole
	KeepPersonal bool           // false = redact personal columns in Rejected.Raw and in messages
	// FutureDays is how many days a date_to or an inactive_date may lie
	// after the timestamp of the file's name before the row is rejected
	// (DATE_AFTER_FILE): a bill cannot end, nor an account be closed, after
	// the file saying so was made. A file whose name does not conform has no timestamp: no check.
	// nil = DefaultFutureDays; negative = no check.
	FutureDays *int
}

// DefaultFutureDays absorbs the difference between the file name's UTC
// timestamp and the utility's local billing dates.
const DefaultFutureDays = 1

// Reader streams one billing file: each data line becomes exactly one Record.
// Memory is bounded by MaxLineBytes and the column count, whatever the file size.
// A Reader is not safe for concurrent use, except CompressedBytesRead, which a
// progress bar may poll from another goroutine.
type Reader struct {
	f      *filereader.File // opening, lines, counts, file errors
	name   records.FileName
	layout records.Layout

	serviceTypes []string // upper-case
	netMetering  bool
	latest       dates.Date // the last date_to or inactive_date allowed; 0 = no check
	keepPersonal bool

	cols     []records.Column // known columns of the layout, canonical order
	ids      []int            // per known position: index into records.BillingColumns() (the c* constants)
	extra    []string         // trailing unknown column names
	nFields  int              // known + extra
	personal []bool           // per position: redact in Raw
	spPos    int              // position of service_point_id

	fields  []string         // reused per line
	reasons []records.Reason // reused per line; copied out only for rejected rows
}

// newReader checks options and settles the layout before any byte is read, so a
// misconfigured call fails without touching the file.
func newReader(base string, opts Options) (*Reader, error) {
	r := &Reader{netMetering: opts.NetMetering, keepPersonal: opts.KeepPersonal}
	f, err := filereader.New(base, filereader.Options{Kind: "billing", Item: "row", MaxLineBytes: opts.MaxLineBytes, Prefix: r.prefix})
	if err != nil {
		return nil, err
	}
	r.f = f

	types := opts.ServiceTypes
	if types == nil {
		types = records.DefaultServiceTypes()
	}
	for _, t := range types {
		if t = strings.ToUpper(strings.TrimSpace(t)); t != "" {
			r.serviceTypes = append(r.serviceTypes, t)
		}
	}
	if len(r.serviceTypes) == 0 {
		return nil, r.fileErr(0, "", errors.New("Options.ServiceTypes has no usable code; give nil for E, G, W or list the allowed codes"))
	}

	name, nameErr := records.ParseFileName(base)
	r.name = name
	fd := DefaultFutureDays
	if opts.FutureDays != nil {
		fd = *opts.FutureDays
	}
	if nameErr == nil && fd >= 0 {
		r.latest = dates.FromTime(name.Timestamp).AddDays(fd)
	}
	switch opts.Layout {
	case records.LayoutFull, records.LayoutCustomer, records.LayoutUsage:
		r.layout = opts.Layout
		if nameErr != nil {
			r.f.Warn(fmt.Sprintf("%v; processed as the %s layout given explicitly", nameErr, opts.Layout))
		} else if name.Layout != opts.Layout {
			r.f.Warn(fmt.Sprintf("file name kind %q differs from the %s layout given explicitly; the explicit layout is used", name.Kind, opts.Layout))
		}
	case "":
		if nameErr != nil {
			return nil, r.fileErr(0, "", fmt.Errorf("the layout cannot be taken from the name (%w)", nameErr))
		}
		if name.Layout == "" {
			return nil, r.fileErr(0, "", fmt.Errorf("the file name says %q, an interval file; read it with the interval reader, or give a billing layout explicitly", name.Kind))
		}
		r.layout = name.Layout
	default:
		return nil, r.fileErr(0, "", fmt.Errorf("layout %q is unknown; use %q, %q or %q", opts.Layout, records.LayoutFull, records.LayoutCustomer, records.LayoutUsage))
	}

	r.cols = records.LayoutColumns(r.layout)
	r.ids = make([]int, len(r.cols))
	for i, c := range r.cols {
		r.ids[i] = columnIndex(c.Name)
		if c.Name == "service_point_id" {
			r.spPos = i
		}
	}
	return r, nil
}

func (r *Reader) fileErr(line int64, field string, err error) *filereader.FileError {
	return r.f.Err(line, field, err)
}

// Name is the parsed file name; Name().Conforms is false for a file processed
// under an explicit layout despite its name.
func (r *Reader) Name() records.FileName { return r.name }

// Layout is the layout the file is read with.
func (r *Reader) Layout() records.Layout { return r.layout }

// ExtraColumns names the unknown trailing columns of the header, in file order.
func (r *Reader) ExtraColumns() []string { return append([]string(nil), r.extra...) }

// Warnings lists what the caller should log: a non-conforming name processed
// under an explicit layout, or a name whose kind differs from that layout.
func (r *Reader) Warnings() []string { return r.f.Warnings() }

// Stats returns a copy of the counters so far.
func (r *Reader) Stats() filereader.Stats { return r.f.Stats() }

// CompressedBytesRead is the number of bytes consumed from the underlying file
// (compressed when it is compressed), for a progress bar against the file size.
func (r *Reader) CompressedBytesRead() int64 { return r.f.CompressedBytesRead() }

// Close releases the decompressor and, for Open, the file. It is idempotent.
func (r *Reader) Close() error { return r.f.Close() }

// Next returns the next data line as a Row or a Rejected row. It returns io.EOF
// at the end, or a *FileError when the file cannot be read further; both are
// returned again by later calls.
func (r *Reader) Next() (Record, error) {
	return r.next(nil)
}

// NextInto is Next with the row parsed into dst instead of a new one: an
// accepted line comes back with Row dst. dst's strings are substrings of a
// copy of the line made for it, and its Extra keeps its capacity, so once
// the caller is done with the row it may hand dst in again (a reader of
// millions of rows then allocates no row each); after a rejected line, or
// an error, dst holds nothing of use.
func (r *Reader) NextInto(dst *records.BillingRow) (Record, error) {
	return r.next(dst)
}

func (r *Reader) next(dst *records.BillingRow) (Record, error) {
	b, rej, err := r.f.Next()
	switch {
	case err != nil:
		return Record{}, err
	case rej != nil: // blank or over the limit
		return Record{Rejected: rej}, nil
	}
	if dst == nil {
		dst = &records.BillingRow{}
	}
	// string(b): the one copy of the line; the row's fields are substrings of it.
	if rej := r.parseLine(dst, string(b), r.f.Line()); rej != nil {
		return Record{Rejected: r.f.Reject(rej)}, nil
	}
	r.f.Accept()
	return Record{Row: dst}, nil
}

// parseLine parses data line s, physical line number line, into dst, or
// returns its rejected row; it counts nothing. dst's Extra keeps its
// capacity for the next row.
func (r *Reader) parseLine(dst *records.BillingRow, s string, line int64) *records.Rejected {
	f := r.fields[:r.nFields]
	k, start, ascii := splitTabs(s, f)
	validUTF8 := ascii || utf8.ValidString(s)
	if k != len(f)-1 {
		return r.fieldCount(s, strings.Count(s, "\t")+1, validUTF8, line)
	}
	f[k] = s[start:]

	extra := dst.Extra[:0]
	*dst = records.BillingRow{Layout: r.layout, Line: line}
	r.reasons = r.reasons[:0]
	r.parseFields(dst, f, validUTF8)
	if len(r.reasons) > 0 {
		return &records.Rejected{
			Line:           line,
			Raw:            r.redactFields(f),
			ServicePointID: readableID(f[r.spPos], validUTF8),
			Reasons:        append([]records.Reason(nil), r.reasons...),
		}
	}
	if len(r.extra) > 0 {
		for i, name := range r.extra {
			extra = append(extra, records.Attribute{Name: name, Value: f[len(r.cols)+i]})
		}
		dst.Extra = extra
	}
	return nil
}

func (r *Reader) fieldCount(s string, n int, validUTF8 bool, line int64) *records.Rejected {
	rej := &records.Rejected{Line: line, Raw: r.redactCount(s, n)}
	rej.Reasons = append(rej.Reasons, records.Reason{
		Code: records.CodeFieldCount, Rule: records.RuleFormat,
		Message: fmt.Sprintf("%d fields, expected %d (the header's count); a tab is missing or extra", n, r.nFields),
	})
	if !validUTF8 {
		rej.Reasons = append(rej.Reasons, records.Reason{
			Code: records.CodeInvalidUTF8, Rule: records.RuleFormat,
			Message: "the line is not valid UTF-8; send the file encoded as UTF-8",
		})
	}
	return rej
}

// prefix shows the start of a line over the limit: redacted by position, cut,
// and with its service point id when that field ends within it.
func (r *Reader) prefix(b []byte) (raw, servicePointID string) {
	return r.redactPrefix(b), r.prefixID(b)
}

// readableID is the service point id when it can key a Kafka record.
func readableID(v string, validUTF8 bool) string {
	if isBlank(v) || (!validUTF8 && !utf8.ValidString(v)) {
		return ""
	}
	return v
}

// splitTabs cuts line s at its tabs into f, all but the last field, and
// returns how many it filled, where the last field starts, and whether
// every byte of s is ASCII; k is -1 when s has more fields than f holds.
// It reads eight bytes at a time: a billing line's fields are short, so a
// call per field (strings.IndexByte) cost more than the loop, and the loop
// a byte at a time cost 1.5 ns a byte.
func splitTabs(s string, f []string) (k, start int, ascii bool) {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
		tabs  = 0x0909090909090909
	)
	var or uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		or |= w
		x := w ^ tabs
		// The high bit of each byte that is a tab (a zero byte of x); a
		// byte above a tab may be marked too, so each mark is checked.
		for t := (x - ones) &^ x & highs; t != 0; t &= t - 1 {
			j := i + bits.TrailingZeros64(t)>>3
			if s[j] != '\t' {
				continue
			}
			if k == len(f)-1 {
				return -1, start, false
			}
			f[k] = s[start:j]
			k++
			start = j + 1
		}
	}
	var tail byte
	for ; i < len(s); i++ {
		c := s[i]
		tail |= c
		if c == '\t' {
			if k == len(f)-1 {
				return -1, start, false
			}
			f[k] = s[start:i]
			k++
			start = i + 1
		}
	}
	return k, start, or&highs == 0 && tail < utf8.RuneSelf
}
