package rules

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// intervalStateVersion is the first byte of an encoded IntervalPoint.
// Version 1 had no Accounts and no Raised: a state of version 1 is read
// with its one account as Accounts and nothing raised to stamp again.
// Version 3 writes the topic and file of each source once per state (a
// string table, see enc.tstr): every billed period carries its row's, and
// they were two thirds of a year of monthly bills' 1,100 bytes.
const (
	intervalStateVersion = 3
	intervalNoAccounts   = 1
	// intervalNoTable is version 2: the sources' topic and file written out
	// in full every time, not through the state's string table.
	intervalNoTable = 2
)

// The interval state is encoded by hand, not as JSON like the billing states:
// it is rewritten to the changelog whenever a service point gets reads, and a
// year of days as JSON numbers was several times the size (see the state
// size figure in docs/readme/intervals.md). Values are stored as thousandths
// in a varint when that is exact (meter data has few decimals), else as the
// float's 8 bytes.

// MarshalBinary encodes the state for Pebble and the changelog.
func (ip *IntervalPoint) MarshalBinary() ([]byte, error) {
	e := enc{b: make([]byte, 0, 256), table: true}
	e.b = append(e.b, intervalStateVersion)
	e.str(ip.ID)
	e.str(ip.Utility)
	a := ip.Account
	e.bools(a.Known, a.Active, ip.StaleRaised)
	e.int(int64(a.ActiveDate))
	e.str(a.AccountID)
	e.str(a.CustomerID)
	e.str(a.PremiseID)
	e.str(a.SecondaryID)
	e.str(a.ServiceType)
	e.int(ip.LastSeenMs)
	e.int(int64(ip.HistoryMonths))
	e.uint(uint64(len(ip.Periods)))
	for _, p := range ip.Periods {
		e.int(int64(p.DateTo))
		e.int(int64(p.Duration))
		e.f64(p.Value)
		e.bools(p.Mismatch)
		e.source(p.Source)
	}
	e.uint(uint64(len(ip.Channels)))
	for _, c := range ip.Channels {
		e.str(c.Name)
		e.int(int64(c.Minutes))
		e.str(c.Units)
		e.int(c.LastEndMs)
		e.int(int64(c.ZeroRunMin))
		e.int(int64(c.EstRunMin))
		e.int(c.ZeroRunStart)
		e.int(c.EstRunStart)
		e.bools(c.ZeroRaised, c.EstRaised, c.LengthWarned)
		e.uint(uint64(len(c.DayGaps)))
		for _, g := range c.DayGaps {
			e.int(int64(g.From))
			e.int(int64(g.To))
		}
		e.uint(uint64(len(c.NegativeDates)))
		for _, d := range c.NegativeDates {
			e.int(int64(d))
		}
		e.uint(uint64(len(c.Days)))
		prev := dates.Date(0)
		for i := range c.Days {
			d := &c.Days[i]
			e.int(int64(d.Date - prev)) // days follow each other: one byte
			prev = d.Date
			e.bools(d.Detailed, d.SumUnknown, d.SpikeRaised)
			e.uint(uint64(len(d.Bits)))
			for w := range d.Bits {
				e.uint(d.Bits[w])
				e.uint(d.Est[w])
			}
			e.int(int64(d.FirstLocal))
			e.int(int64(d.LastLocalEnd))
			e.int(int64(d.GapRaised))
			e.value(d.Sum)
			if d.Detailed {
				for _, v := range d.Values {
					e.value(v)
				}
			}
		}
	}
	e.uint(uint64(len(ip.Accounts)))
	for _, a := range ip.Accounts {
		e.bools(a.Known, a.Active)
		e.int(int64(a.ActiveDate))
		e.str(a.AccountID)
		e.str(a.CustomerID)
		e.str(a.PremiseID)
		e.str(a.SecondaryID)
		e.str(a.ServiceType)
	}
	e.uint(uint64(len(ip.Raised)))
	for _, r := range ip.Raised {
		e.str(r.Code)
		e.str(r.Rule)
		e.int(int64(r.Date))
		e.int(int64(r.Until))
		e.str(r.Message)
		e.source(r.Source)
		e.str(r.AccountID)
		e.str(r.CustomerID)
		e.str(r.PremiseID)
		e.str(r.SecondaryID)
	}
	return e.b, nil
}

// UnmarshalBinary decodes a state written by MarshalBinary, replacing ip, and
// checks its invariants: a state that breaks them is refused, not repaired.
func (ip *IntervalPoint) UnmarshalBinary(b []byte) error {
	*ip = IntervalPoint{}
	if len(b) == 0 {
		return errors.New("rules: empty interval state")
	}
	v := int(b[0])
	if v != intervalNoAccounts && v != intervalNoTable {
		if err := checkVersion("interval", v, intervalStateVersion); err != nil {
			return err
		}
	}
	d := dec{b: b, i: 1, table: v > intervalNoTable}
	ip.ID = d.str()
	ip.Utility = d.str()
	a := &ip.Account
	bs := d.bools(3)
	a.Known, a.Active, ip.StaleRaised = bs[0], bs[1], bs[2]
	a.ActiveDate = dates.Date(d.int())
	a.AccountID, a.CustomerID, a.PremiseID, a.SecondaryID, a.ServiceType = d.str(), d.str(), d.str(), d.str(), d.str()
	ip.LastSeenMs = d.int()
	ip.HistoryMonths = int(d.int())
	for n := d.count(); n > 0; n-- {
		p := BilledPeriod{DateTo: dates.Date(d.int()), Duration: int32(d.int()), Value: d.f64()}
		p.Mismatch = d.bools(1)[0]
		p.Source = d.source()
		ip.Periods = append(ip.Periods, p)
	}
	for n := d.count(); n > 0; n-- {
		c := &Channel{Name: d.str(), Minutes: int16(d.int()), Units: d.str(), LastEndMs: d.int(),
			ZeroRunMin: int32(d.int()), EstRunMin: int32(d.int()), ZeroRunStart: d.int(), EstRunStart: d.int()}
		bs := d.bools(3)
		c.ZeroRaised, c.EstRaised, c.LengthWarned = bs[0], bs[1], bs[2]
		if c.Minutes != 0 && !records.ValidIntervalLength(int(c.Minutes)) {
			d.fail("interval length")
			break
		}
		for k := d.count(); k > 0; k-- {
			c.DayGaps = append(c.DayGaps, DateRange{dates.Date(d.int()), dates.Date(d.int())})
		}
		for k := d.count(); k > 0; k-- {
			c.NegativeDates = append(c.NegativeDates, dates.Date(d.int()))
		}
		days := d.count()
		c.Days = make([]Day, 0, days)
		prev := dates.Date(0)
		for ; days > 0 && d.err == nil; days-- {
			day := Day{Date: prev + dates.Date(d.int())}
			prev = day.Date
			bs := d.bools(3)
			day.Detailed, day.SumUnknown, day.SpikeRaised = bs[0], bs[1], bs[2]
			words := d.count()
			if c.Minutes == 0 || words != (slotsPerDay(int(c.Minutes))+63)/64 {
				d.fail("day bitmap size")
				break
			}
			day.Bits, day.Est = make([]uint64, words), make([]uint64, words)
			for w := 0; w < words; w++ {
				day.Bits[w], day.Est[w] = d.uint(), d.uint()
			}
			day.FirstLocal, day.LastLocalEnd, day.GapRaised = int16(d.int()), int16(d.int()), int16(d.int())
			day.Sum = d.value()
			if day.Detailed {
				n := day.count()
				day.Values = make([]float64, n)
				for k := range day.Values {
					day.Values[k] = d.value()
				}
			}
			c.Days = append(c.Days, day)
		}
		ip.Channels = append(ip.Channels, c)
	}
	if v == intervalNoAccounts {
		if ip.Account.Known {
			ip.Accounts = []IntervalAccount{ip.Account}
		}
	} else {
		for n := d.count(); n > 0 && d.err == nil; n-- {
			bs := d.bools(2)
			a := IntervalAccount{Known: bs[0], Active: bs[1], ActiveDate: dates.Date(d.int())}
			a.AccountID, a.CustomerID, a.PremiseID, a.SecondaryID, a.ServiceType = d.str(), d.str(), d.str(), d.str(), d.str()
			ip.Accounts = append(ip.Accounts, a)
		}
		for n := d.count(); n > 0 && d.err == nil; n-- {
			r := RaisedAnomaly{Code: d.str(), Rule: d.str(), Date: dates.Date(d.int()), Until: dates.Date(d.int()), Message: d.str(), Source: d.source()}
			r.AccountID, r.CustomerID, r.PremiseID, r.SecondaryID = d.str(), d.str(), d.str(), d.str()
			ip.Raised = append(ip.Raised, r)
		}
	}
	if d.err == nil && d.i != len(b) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return fmt.Errorf("rules: interval state of %q: %w", ip.ID, d.err)
	}
	return ip.check()
}

// check verifies the invariants the rules rely on.
func (ip *IntervalPoint) check() error {
	if !slices.IsSortedFunc(ip.Channels, func(a, b *Channel) int { return cmpString(a.Name, b.Name) }) {
		return fmt.Errorf("rules: interval state of %q: channels out of order", ip.ID)
	}
	for i := range ip.Accounts {
		if i > 0 && compareAccounts(ip.Accounts[i-1], ip.Accounts[i]) >= 0 {
			return fmt.Errorf("rules: interval state of %q: accounts out of order at %q", ip.ID, ip.Accounts[i].AccountID)
		}
		if slices.IndexFunc(ip.Accounts[:i], func(a IntervalAccount) bool { return a.AccountID == ip.Accounts[i].AccountID }) >= 0 {
			return fmt.Errorf("rules: interval state of %q: account %q twice", ip.ID, ip.Accounts[i].AccountID)
		}
	}
	for _, c := range ip.Channels {
		for i := range c.Days {
			if i > 0 && c.Days[i].Date <= c.Days[i-1].Date {
				return fmt.Errorf("rules: interval state of %q channel %q: days out of order at %s", ip.ID, c.Name, c.Days[i].Date)
			}
		}
	}
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type enc struct {
	b []byte
	// table makes source write their topic and file through tstr; strs
	// holds the strings written so far.
	table bool
	strs  []string
}

// maxTableStrings bounds a state's string table, on both sides alike: a
// string past it is written out in full every time.
const maxTableStrings = 64

// tstr writes s once per encoding: the first time as (2·length, bytes),
// then as 2·index+1 into the strings written before.
func (e *enc) tstr(s string) {
	if i := slices.Index(e.strs, s); i >= 0 {
		e.uint(uint64(2*i + 1))
		return
	}
	e.uint(uint64(2 * len(s)))
	e.b = append(e.b, s...)
	if len(e.strs) < maxTableStrings {
		e.strs = append(e.strs, s)
	}
}

func (e *enc) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) f64(v float64) { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v)) }
func (e *enc) bools(bs ...bool) {
	var x byte
	for i, b := range bs {
		if b {
			x |= 1 << i
		}
	}
	e.b = append(e.b, x)
}

// value writes thousandths as an even varint when exact, else an odd marker
// and the float's bits.
func (e *enc) value(v float64) {
	m := math.Round(v * 1000)
	if math.Abs(m) < 1<<50 && m/1000 == v {
		e.int(int64(m) * 2)
		return
	}
	e.int(1)
	e.f64(v)
}

func (e *enc) source(s Source) {
	if e.table {
		e.tstr(s.Topic)
	} else {
		e.str(s.Topic)
	}
	e.int(int64(s.Partition))
	e.int(s.Offset)
	if e.table {
		e.tstr(s.File)
	} else {
		e.str(s.File)
	}
	e.int(s.Line)
}

type dec struct {
	b   []byte
	i   int
	err error
	// table reads the sources' topic and file through tstr (enc.table).
	table bool
	strs  []string
	// spV2 reads a service point of binary version 2 (no Tenure.AsOfFile).
	spV2 bool
	// noSince reads a customer or premise state of the version before
	// Membership.Since.
	noSince bool
	// noHolds reads a customer state of a version before Premise.Holds.
	noHolds bool
	// noPending reads a service point state of a version before Pending.
	noPending bool
	// noHoldUntil reads a customer state of a version before Hold.Until.
	noHoldUntil bool
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("malformed at byte %d (%s); rebuild the state from the input topics", d.i, what)
	}
}

func (d *dec) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.i += n
	return v
}

func (d *dec) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.i += n
	return v
}

// count reads a length, bounded by the bytes left (each item takes one at least).
func (d *dec) count() int {
	n := d.uint()
	if n > uint64(len(d.b)-d.i) {
		d.fail("length")
		return 0
	}
	return int(n)
}

func (d *dec) str() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[d.i : d.i+n])
	d.i += n
	return s
}

func (d *dec) f64() float64 {
	if d.err != nil || len(d.b)-d.i < 8 {
		d.fail("double")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.i:]))
	d.i += 8
	return v
}

func (d *dec) bools(n int) []bool {
	out := make([]bool, n)
	if d.err != nil || d.i >= len(d.b) {
		d.fail("flags")
		return out
	}
	x := d.b[d.i]
	d.i++
	for i := range out {
		out[i] = x&(1<<i) != 0
	}
	return out
}

func (d *dec) value() float64 {
	m := d.int()
	if m&1 == 0 {
		return float64(m/2) / 1000
	}
	return d.f64()
}

func (d *dec) source() Source {
	str := d.str
	if d.table {
		str = d.tstr
	}
	return Source{Topic: str(), Partition: int32(d.int()), Offset: d.int(), File: str(), Line: d.int()}
}

// tstr reads what enc.tstr wrote.
func (d *dec) tstr() string {
	x := d.uint()
	if d.err != nil {
		return ""
	}
	if x&1 == 1 {
		if x/2 >= uint64(len(d.strs)) {
			d.fail("string reference")
			return ""
		}
		return d.strs[x/2]
	}
	if x/2 > uint64(len(d.b)-d.i) {
		d.fail("length")
		return ""
	}
	n := int(x / 2)
	s := string(d.b[d.i : d.i+n])
	d.i += n
	if len(d.strs) < maxTableStrings {
		d.strs = append(d.strs, s)
	}
	return s
}
