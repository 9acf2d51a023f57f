package avro

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// readBillingBody reads the Avro binary of a BillingRow record written with
// the embedded schema straight into out, field by field in the order of
// schemas/billing_row.avsc: the mirror of appendBillingBody. The struct
// codec's reflective walk was about a quarter of the stages' CPU; this reads
// the same row with one copy of the body (every string is a substring of
// it) and, with extra columns, one slice.
//
// It accepts and refuses what the struct codec does for the embedded schema
// (TestBillingFastDecodeMatchesStruct, FuzzBillingFastDecode): varints of
// at most 5 (int) or 10 (long) bytes, union indexes in any varint spelling,
// any byte but 1 as false, map blocks with a byte size, a later entry of a
// map key written twice; no bytes after the record. The error says where the
// body went wrong; the caller makes it poison, as the struct codec's are,
// and drops out, which is then half read. A null leaves its field as it
// was: out must be zero.
func readBillingBody(body []byte, out *DecodedBillingRow) error {
	d := bodyReader{s: string(body)}
	r := &out.Row
	out.Source.Utility = d.str()
	// The symbols of Layout and EstimateFlag, in the schema's order.
	r.Layout = symbol(&d, records.LayoutFull, records.LayoutCustomer, records.LayoutUsage)
	out.Source.File = d.str()
	out.Line = d.long()
	r.Line = out.Line
	out.Source.SHA256 = d.str()
	r.CustomerID = d.optStr()
	r.PremiseID = d.optStr()
	r.SecondaryID = d.optStr()
	r.CCBAccountID = d.optStr()
	r.CustomerType = d.optStr()
	r.BusinessName = d.optStr()
	r.AccountID = d.optStr()
	if d.present() {
		r.ActiveDate = dates.Date(d.int())
	}
	if r.InactiveDate.Valid = d.present(); r.InactiveDate.Valid {
		r.InactiveDate.Date = dates.Date(d.int())
	}
	r.IsAccountDeletion = d.boolean()
	r.ReadCycle = d.optStr()
	r.RateCode = d.optStr()
	r.ServicePointID = d.str()
	r.ServiceType = d.optStr()
	r.ServiceHouseNumber = d.optStr()
	r.ServiceStreetName = d.optStr()
	r.ServiceUnit = d.optStr()
	r.ServiceCity = d.optStr()
	r.ServiceState = d.optStr()
	r.ServiceZipCode = d.optStr()
	r.MeterType = d.optStr()
	r.MeterUnit = d.optStr()
	if r.BldgSqFoot.Valid = d.present(); r.BldgSqFoot.Valid {
		r.BldgSqFoot.Value = d.double()
	}
	if d.present() {
		r.UsageValue = d.double()
	}
	if d.present() {
		r.DateTo = dates.Date(d.int())
	}
	if d.present() {
		r.Duration = d.int()
	}
	if d.present() {
		r.IsEstimate = symbol(&d, records.EstimateActual, records.EstimateEstimated, records.EstimateUser)
	}
	if r.UsageCharge.Valid = d.present(); r.UsageCharge.Valid {
		r.UsageCharge.Value = d.double()
	}
	r.Extra = d.extra()
	if d.err == nil && d.off < len(d.s) {
		d.err = fmt.Errorf("%d bytes left after the record", len(d.s)-d.off)
	}
	return d.err
}

// bodyReader reads Avro binary from s. The first error sticks and moves the
// offset to the end, so that a field read after it reads nothing: the
// fields are read in a row, and checked once.
type bodyReader struct {
	s   string
	off int
	err error
}

var errShort = errors.New("the body ends inside a value")

func (d *bodyReader) fail(err error) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: %w", d.off, err)
	}
	d.off = len(d.s)
}

// uvarint reads a varint of at most n bytes whose last byte may hold only
// lastMax: the struct codec refuses a value that overflows the type (5
// bytes and 4 bits for an int, 10 bytes and 1 bit for a long).
func (d *bodyReader) uvarint(n int, lastMax byte) uint64 {
	var u uint64
	for i := range n {
		if d.off >= len(d.s) {
			d.fail(errShort)
			return 0
		}
		b := d.s[d.off]
		if i == n-1 && b > lastMax {
			d.fail(errors.New("a varint overflows its type"))
			return 0
		}
		d.off++
		u |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			break
		}
	}
	return u
}

// long reads an Avro long: zigzag varint.
func (d *bodyReader) long() int64 {
	if d.off < len(d.s) && d.s[d.off] < 0x80 { // most values are one byte
		u := d.s[d.off]
		d.off++
		return int64(u>>1) ^ -int64(u&1)
	}
	u := d.uvarint(10, 1)
	return int64(u>>1) ^ -int64(u&1)
}

// int reads an Avro int (also a date).
func (d *bodyReader) int() int32 {
	u := uint32(d.uvarint(5, 0x0f))
	return int32(u>>1) ^ -int32(u&1)
}

// length reads a string's or a map key's length, refusing one the body
// cannot hold before anything is sliced.
func (d *bodyReader) length() int {
	n := d.long()
	if n < 0 || n > int64(len(d.s)-d.off) {
		d.fail(fmt.Errorf("a length of %d with %d bytes left", n, len(d.s)-d.off))
		return 0
	}
	return int(n)
}

func (d *bodyReader) str() string {
	n := d.length()
	s := d.s[d.off : d.off+n]
	d.off += n
	return s
}

// present reads the index of a ["null", T] union: whether T follows.
func (d *bodyReader) present() bool {
	if d.off < len(d.s) {
		switch d.s[d.off] { // the canonical spellings: one byte
		case 0:
			d.off++
			return false
		case 2:
			d.off++
			return true
		}
	}
	switch i := d.int(); {
	case d.err != nil:
	case i == 0:
		return false
	case i == 1:
		return true
	default:
		d.fail(fmt.Errorf("union index %d out of range [0, 2)", i))
	}
	return false
}

// optStr reads a ["null", "string"] union: null is the empty field.
func (d *bodyReader) optStr() string {
	if !d.present() {
		return ""
	}
	return d.str()
}

func (d *bodyReader) enum(symbols int32) int32 {
	i := d.int()
	if d.err == nil && (i < 0 || i >= symbols) {
		d.fail(fmt.Errorf("enum index %d out of range [0, %d)", i, symbols))
		return 0
	}
	return i
}

// symbol reads an enum of the given symbols, in the schema's order (the
// first after an error).
func symbol[T any](d *bodyReader, symbols ...T) T {
	return symbols[d.enum(int32(len(symbols)))]
}

// boolean is true for the byte 1 only, as the struct codec (and Java) read it.
func (d *bodyReader) boolean() bool {
	if d.off >= len(d.s) {
		d.fail(errShort)
		return false
	}
	b := d.s[d.off] == 1
	d.off++
	return b
}

func (d *bodyReader) double() float64 {
	if len(d.s)-d.off < 8 {
		d.fail(errShort)
		return 0
	}
	s := d.s[d.off : d.off+8]
	d.off += 8
	return math.Float64frombits(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
}

// extra reads the map of extra columns as decode() leaves it: by name, the
// later value of a name written twice (a Go map keeps that one), nil when
// empty.
func (d *bodyReader) extra() []records.Attribute {
	var out []records.Attribute
	for d.err == nil {
		count := d.long()
		if d.err != nil || count == 0 {
			break
		}
		if count < 0 { // a block with its byte size, which we need not skip by
			if count = -count; count < 0 {
				d.fail(errors.New("invalid map block count"))
				break
			}
			d.long()
		}
		// An entry is at least two bytes (two lengths): a count the body
		// cannot hold is refused before it sizes anything.
		if count > int64(len(d.s)-d.off)/2 {
			d.fail(fmt.Errorf("map block count %d with %d bytes left", count, len(d.s)-d.off))
			break
		}
		out = slices.Grow(out, int(count))
		for range count {
			name := d.str()
			value := d.str()
			if d.err != nil {
				break
			}
			out = append(out, records.Attribute{Name: name, Value: value})
		}
	}
	if len(out) == 0 || d.err != nil {
		return nil
	}
	slices.SortStableFunc(out, func(a, b records.Attribute) int { return strings.Compare(a.Name, b.Name) })
	keep := out[:0]
	for i, a := range out {
		if i+1 < len(out) && out[i+1].Name == a.Name {
			continue // written again later
		}
		keep = append(keep, a)
	}
	return keep
}
