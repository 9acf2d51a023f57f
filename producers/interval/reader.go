package interval

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/producers/interval/readrules"
	"github.com/usagestream/usagestream/records"
)

// Column positions, in the order of records.IntervalColumns().
const (
	cServicePoint = iota
	cValue
	cDate
	cTime
	cUnits
	cEstimate
	cOffset
	cServiceType
	cChannel
	numColumns
)

// Options configures a Reader.
type Options struct {
	Check
	// Minutes is the interval length when the file name does not say it
	// (interval<mm>); when both are given they must agree.
	Minutes int
	// Check.Location is the utility's time zone, used for rows whose
	// UTC_offset is empty. nil is UTC. On a day when the zone changes its
	// offset, a row without UTC_offset is rejected: the repeated hour
	// cannot be told apart.
	MaxLineBytes int // 0 = 64 KiB
}

// Record is one data line: exactly one of Read or Rejected is set. Rejected
// rows are records.Rejected, as the billing reader's are, so they go to the
// same rejected topic.
type Record struct {
	Read     *records.IntervalRead
	Rejected *records.Rejected
}

// Reader streams one interval file; each data line becomes one Record.
// Memory is bounded by MaxLineBytes whatever the file size. Not safe for
// concurrent use, except CompressedBytesRead.
type Reader struct {
	f       *filereader.File // opening, lines, counts, file errors
	name    records.FileName
	minutes int
	k       checker
	bounds  readrules.Bounds
	zone    map[dates.Date]dayZone // offsets of loc by date, for rows without UTC_offset
	extra   int                    // unknown trailing columns, ignored

	fields  []string
	reasons []records.Reason
}

func newReader(base string, opts Options) (*Reader, error) {
	r := &Reader{zone: map[dates.Date]dayZone{}}
	f, err := filereader.New(base, filereader.Options{Kind: "interval", Item: "read", MaxLineBytes: opts.MaxLineBytes, Prefix: prefix})
	if err != nil {
		return nil, err
	}
	r.f = f
	k, err := opts.Check.compile()
	if err != nil {
		return nil, r.fileErr(0, "", err)
	}
	r.k = k
	r.bounds = k.dates.Bounds() // fixed per file: a file is read in minutes
	name, nameErr := records.ParseFileName(base)
	r.name = name
	switch {
	case opts.Minutes != 0 && !records.ValidIntervalLength(opts.Minutes):
		return nil, r.fileErr(0, "", fmt.Errorf("interval length %d minutes is not one of 5, 15, 30, 60, 1440", opts.Minutes))
	case nameErr == nil && name.IntervalMinutes == 0:
		return nil, r.fileErr(0, "", fmt.Errorf("the file name says %q, a billing file; read it with the billing reader", name.Kind))
	case nameErr == nil && opts.Minutes != 0 && opts.Minutes != name.IntervalMinutes:
		return nil, r.fileErr(0, "", fmt.Errorf("the file name says interval%d but %d minutes were given; rename the file or give the right length", name.IntervalMinutes, opts.Minutes))
	case nameErr == nil:
		r.minutes = name.IntervalMinutes
	case opts.Minutes != 0:
		r.minutes = opts.Minutes
		r.f.Warn(fmt.Sprintf("%v; processed as %d-minute intervals given explicitly", nameErr, opts.Minutes))
	default:
		return nil, r.fileErr(0, "", fmt.Errorf("the interval length cannot be taken from the name (%w); give it explicitly", nameErr))
	}
	return r, nil
}

func (r *Reader) fileErr(line int64, field string, err error) *filereader.FileError {
	return r.f.Err(line, field, err)
}

// prefix shows the start of a line over the limit, cut: interval files hold
// no personal data.
func prefix(b []byte) (raw, servicePointID string) {
	return strings.ToValidUTF8(string(b[:min(len(b), 200)]), "\uFFFD") + "…", ""
}

// Name is the parsed file name.
func (r *Reader) Name() records.FileName { return r.name }

// Minutes is the file's interval length.
func (r *Reader) Minutes() int { return r.minutes }

// Warnings lists what the caller should log.
func (r *Reader) Warnings() []string { return r.f.Warnings() }

// Stats returns a copy of the counters so far (Lines = Accepted + Rejected).
func (r *Reader) Stats() filereader.Stats { return r.f.Stats() }

// CompressedBytesRead is the bytes consumed from the file, for progress.
func (r *Reader) CompressedBytesRead() int64 { return r.f.CompressedBytesRead() }

// Close releases the decompressor and, for Open, the file. Idempotent.
func (r *Reader) Close() error { return r.f.Close() }

// readHeader checks line 1 names the columns of docs/data-contract.md §3 in order;
// unknown columns may only follow them and are ignored.
func (r *Reader) readHeader() error {
	b, err := r.f.Header("the columns " + strings.Join(records.IntervalColumns(), ", "))
	if err != nil {
		return err
	}
	names := strings.Split(string(b), "\t")
	fix := "send the header with the columns " + strings.Join(records.IntervalColumns(), ", ") + " in this order (docs/data-contract.md §3), extra columns only at the end"
	for i, c := range records.IntervalColumns() {
		if i >= len(names) {
			return r.fileErr(1, c, fmt.Errorf("the header has %d columns and column %q (position %d) is missing; %s", len(names), c, i+1, fix))
		}
		got := strings.TrimSpace(names[i])
		if strings.EqualFold(got, c) {
			continue
		}
		if i == 0 && got != "" && !isColumn(got) {
			return r.fileErr(1, "", fmt.Errorf("line 1 is not a header (its first field %q names no interval column, so it looks like data); %s", clip(got), fix))
		}
		return r.fileErr(1, c, fmt.Errorf("header position %d holds %q, expected %q; %s", i+1, clip(got), c, fix))
	}
	r.extra = len(names) - numColumns
	if r.extra > 0 {
		r.f.Warn(fmt.Sprintf("%d extra column(s) after %s are ignored", r.extra, records.IntervalColumn(numColumns-1)))
	}
	r.fields = make([]string, len(names))
	return nil
}

func isColumn(name string) bool {
	for _, c := range records.IntervalColumns() {
		if strings.EqualFold(c, name) {
			return true
		}
	}
	return false
}

// Next returns the next data line as a Read or a Rejected row. It returns
// io.EOF at the end, or a *filereader.FileError when the file cannot be read
// further; both again on later calls.
func (r *Reader) Next() (Record, error) {
	b, rej, err := r.f.Next()
	switch {
	case err != nil:
		return Record{}, err
	case rej != nil: // blank or over the limit
		return Record{Rejected: rej}, nil
	}
	line := r.f.Line()
	valid := utf8.Valid(b)
	raw := string(b)
	if !valid {
		raw = strings.ToValidUTF8(raw, "\uFFFD")
	}
	if n := bytes.Count(b, []byte("\t")) + 1; n != len(r.fields) {
		rs := []records.Reason{{Code: records.CodeFieldCount, Rule: records.RuleFormat,
			Message: fmt.Sprintf("%d fields, expected %d (the header's count); a tab is missing or extra", n, len(r.fields))}}
		if !valid {
			rs = append(rs, records.Reason{Code: records.CodeInvalidUTF8, Rule: records.RuleFormat, Message: "the line is not valid UTF-8; send the file encoded as UTF-8"})
		}
		return r.reject(&records.Rejected{Line: line, Raw: raw, Reasons: rs}), nil
	}
	s := raw
	if !valid {
		s = string(b)
	}
	f := r.fields
	k, start := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\t' {
			f[k] = s[start:i]
			k++
			start = i + 1
		}
	}
	f[k] = s[start:]

	rd := &records.IntervalRead{Line: line, Minutes: int16(r.minutes)}
	r.reasons = r.reasons[:0]
	r.parse(rd, f, valid)
	if len(r.reasons) > 0 {
		spid := ""
		if v := f[cServicePoint]; strings.TrimSpace(v) != "" && utf8.ValidString(v) {
			spid = v
		}
		return r.reject(&records.Rejected{Line: line, Raw: raw, ServicePointID: spid,
			Reasons: append([]records.Reason(nil), r.reasons...)}), nil
	}
	r.f.Accept()
	return Record{Read: rd}, nil
}

func (r *Reader) add(col int, code, rule, msg string) {
	r.reasons = append(r.reasons, records.Reason{Field: records.IntervalColumn(col), Code: code, Rule: rule, Message: msg})
}

// parse fills rd from one line's fields and adds a reason for every
// problem, so the sender sees all of a row's faults at once: first what
// cannot be read (the file format), then the contract of a read that every
// way in shares (checker.check).
func (r *Reader) parse(rd *records.IntervalRead, f []string, valid bool) {
	var (
		bad fieldSet
	)
	colBit := [numColumns]fieldSet{badServicePoint, badValue, badDate, badTime, badUnits, badEstimate, badOffset, badServiceType, badChannel}
	rd.Estimate = records.EstimateEstimated
	for col := 0; col < numColumns; col++ {
		v := f[col]
		if !valid && !utf8.ValidString(v) {
			r.add(col, records.CodeInvalidUTF8, records.RuleFormat, records.IntervalColumn(col)+" is not valid UTF-8; send the file encoded as UTF-8")
			bad |= colBit[col]
			continue
		}
		if v == "" || (col <= cUnits && strings.TrimSpace(v) == "") {
			if col <= cUnits {
				r.add(col, records.CodeRequired, records.RuleIntervalColumns, records.IntervalColumn(col)+" is empty; it is required, so fill it in")
				bad |= colBit[col]
			}
			continue
		}
		switch col {
		case cServicePoint:
			rd.ServicePointID = v
		case cValue:
			var ok bool
			if rd.Value, ok = r.number(v); !ok {
				bad |= badValue
			}
		case cDate:
			d, err := dates.Parse(v)
			if err != nil && len(v) == 8 && strings.HasPrefix(v, "0000") {
				// Year 0000 is no calendar date here but it is before any
				// window too: reject it as the other ways in do.
				vi := readrules.DateViolation(v, r.bounds)
				r.add(col, vi.Code, records.RuleIntervalColumns, vi.Message)
				bad |= badDate
				continue
			}
			if err != nil {
				r.add(col, records.CodeBadDate, records.RuleIntervalColumns, fmt.Sprintf("date %q is not a real calendar date (yyyyMMdd)", clip(v)))
				bad |= badDate
				continue
			}
			rd.LocalDate = d
		case cTime:
			m, ok := parseHHMM(v)
			if !ok {
				hint := ""
				if v == "2400" {
					hint = "; the interval ending at midnight is 0000 of the next date"
				}
				r.add(col, records.CodeBadTime, records.RuleIntervalColumns, fmt.Sprintf("time %q is not a 24-hour time HHmm from 0000 to 2359%s", clip(v), hint))
				bad |= badTime
				continue
			}
			rd.LocalTime = int16(m)
		case cUnits:
			rd.Units = v
		case cEstimate:
			var ok bool
			if rd.Estimate, ok = r.estimate(v); !ok {
				bad |= badEstimate
			}
		case cOffset:
			o, ok := parseOffset(v)
			if !ok {
				r.add(col, records.CodeBadOffset, records.RuleIntervalColumns, fmt.Sprintf("UTC_offset %q is not an offset ±HHMM from -1200 to +1400, like -0500", clip(v)))
				bad |= badOffset
				continue
			}
			rd.OffsetMinutes, rd.OffsetGiven = int16(o), true
		case cServiceType:
			rd.ServiceType = v
		case cChannel:
			rd.Channel = v
		}
	}
	r.k.check(rd, bad, true, incoming, r.bounds, r.zoneOn, &r.reasons)
}

// zoneOn returns the configured zone's offset on date d and whether it
// changes that day, cached: files hold many rows per date.
func (r *Reader) zoneOn(d dates.Date) dayZone {
	if z, ok := r.zone[d]; ok {
		return z
	}
	z := zoneOn(r.k.loc, d)
	if len(r.zone) > 4096 {
		clear(r.zone)
	}
	r.zone[d] = z
	return z
}

func (r *Reader) number(v string) (float64, bool) {
	if isNullToken(v) {
		r.add(cValue, records.CodeNullToken, records.RuleFormat, fmt.Sprintf("usage_value %q is not a null; leave the field empty for null", v))
		return 0, false
	}
	x, ok := parseDecimal(v)
	if !ok {
		if strings.IndexByte(v, ',') >= 0 {
			r.add(cValue, records.CodeThousandsSeparator, records.RuleIntervalColumns, fmt.Sprintf("usage_value %q has a ',': no thousands separators, and '.' is the decimal point", clip(v)))
		} else {
			r.add(cValue, records.CodeBadNumber, records.RuleIntervalColumns, fmt.Sprintf("usage_value %q is not a decimal number: use digits with an optional leading '-' and '.' decimals, like 0.25", clip(v)))
		}
		return 0, false
	}
	if x > maxValue || x < -maxValue {
		r.add(cValue, records.CodeOutOfRange, records.RuleIntervalColumns, fmt.Sprintf("usage_value %q is beyond ±%d", clip(v), maxValue))
		return 0, false
	}
	return x, true
}

func (r *Reader) estimate(v string) (records.Estimate, bool) {
	if len(v) == 1 {
		switch v[0] | 0x20 {
		case 'a':
			return records.EstimateActual, true
		case 'e':
			return records.EstimateEstimated, true
		case 'u':
			return records.EstimateUser, true
		}
	}
	r.add(cEstimate, records.CodeBadEstimate, records.RuleIntervalColumns, fmt.Sprintf("is_estimate %q must be A, E or U (or empty for E)", clip(v)))
	return records.EstimateEstimated, false
}

func (r *Reader) reject(rej *records.Rejected) Record { return Record{Rejected: r.f.Reject(rej)} }

// parseHHMM reads a 24-hour time of exactly four digits.
func parseHHMM(v string) (int, bool) {
	h, m, ok := fourDigits(v)
	if !ok || h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// fourDigits splits HHMM into hours and minutes.
func fourDigits(v string) (h, m int, ok bool) {
	if len(v) != 4 {
		return 0, 0, false
	}
	for i := 0; i < 4; i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, 0, false
		}
	}
	return int(v[0]-'0')*10 + int(v[1]-'0'), int(v[2]-'0')*10 + int(v[3]-'0'), true
}

// parseOffset reads ±HHMM (a missing sign means +) within -1200..+1400, in
// quarter hours: every real offset is one.
func parseOffset(v string) (int, bool) {
	sign := 1
	switch {
	case len(v) == 5 && v[0] == '-':
		sign, v = -1, v[1:]
	case len(v) == 5 && v[0] == '+':
		v = v[1:]
	}
	h, m, ok := fourDigits(v)
	if !ok {
		return 0, false
	}
	o := sign * (h*60 + m)
	if m > 59 || m%15 != 0 || o < -12*60 || o > 14*60 {
		return 0, false
	}
	return o, true
}

// parseDecimal reads -?[0-9]+(\.[0-9]+)? exactly as strconv.ParseFloat does
// for up to 15 digits (mantissa and power of ten both exact, one rounding).
func parseDecimal(s string) (float64, bool) {
	i := 0
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	var m uint64
	digits, frac := 0, -1
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0 && digits > 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if digits == 0 || frac == 0 || digits > 15 {
		return 0, false
	}
	x := float64(m)
	if frac > 0 {
		x /= pow10[frac]
	}
	if neg && x != 0 {
		x = -x
	}
	return x, true
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// isNullToken: NA, null and \N are not nulls (docs/data-contract.md §2.1); in a
// number field they are errors worth naming as such.
func isNullToken(s string) bool {
	return strings.EqualFold(s, "null") || strings.EqualFold(s, "na") || s == `\N`
}
