// Package dates is the calendar-day type used by every file column of type D
// and by the Avro `date` logical type: whole days since 1970-01-01, no time zone.
//
// Billing periods are calendar arithmetic (start = date_to - duration + 1), so a
// day count keeps that arithmetic exact and cheap, with no time.Time in the hot path.
package dates

import (
	"errors"
	"fmt"
	"time"
)

// Date counts days since 1970-01-01 (the Avro `date` logical type).
type Date int32

// ErrInvalid reports text that is not a real yyyymmdd calendar date.
var ErrInvalid = errors.New("not a real calendar date in yyyymmdd form")

// Parse reads a strict yyyymmdd date. It rejects anything but eight ASCII digits
// and any day that does not exist on the calendar (for instance 20240230).
func Parse(s string) (Date, error) {
	if len(s) != 8 {
		return 0, ErrInvalid
	}
	var n [8]int
	for i := 0; i < 8; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, ErrInvalid
		}
		n[i] = int(c - '0')
	}
	y := n[0]*1000 + n[1]*100 + n[2]*10 + n[3]
	m := n[4]*10 + n[5]
	d := n[6]*10 + n[7]
	if y < 1 || m < 1 || m > 12 || d < 1 || d > DaysIn(y, m) {
		return 0, ErrInvalid
	}
	return FromCivil(y, time.Month(m), d), nil
}

// MustParse is Parse for literals in tests and generators; it panics on bad input.
func MustParse(s string) Date {
	d, err := Parse(s)
	if err != nil {
		panic(fmt.Sprintf("dates.MustParse(%q): %v", s, err))
	}
	return d
}

// FromCivil converts a valid year, month and day to a Date. It uses Howard
// Hinnant's days-from-civil algorithm: file readers and the generator call it
// once per row, where going through time.Time would cost more than the rest
// of the row.
func FromCivil(y int, m time.Month, d int) Date {
	mm := int(m)
	if mm <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := mm + 9
	if mm > 2 {
		mp = mm - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return Date(era*146097 + doe - 719468)
}

// Civil returns the year, month and day of d (the inverse of FromCivil).
func (d Date) Civil() (y int, m time.Month, day int) {
	z := int64(d) + 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = int(doy - (153*mp+2)/5 + 1)
	mm := int(mp + 3)
	if mp >= 10 {
		mm = int(mp - 9)
	}
	y = int(yoe + era*400)
	if mm <= 2 {
		y++
	}
	return y, time.Month(mm), day
}

// AppendYYYYMMDD appends the file format of d to b without allocating.
func (d Date) AppendYYYYMMDD(b []byte) []byte {
	y, m, day := d.Civil()
	return append(b,
		byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10),
		byte('0'+int(m)/10), byte('0'+int(m)%10), byte('0'+day/10), byte('0'+day%10))
}

// FromTime takes the calendar day of t in t's own location.
func FromTime(t time.Time) Date {
	y, m, d := t.Date()
	return FromCivil(y, m, d)
}

// Time is midnight UTC of the day.
func (d Date) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String renders yyyymmdd, the file format.
func (d Date) String() string { return string(d.AppendYYYYMMDD(make([]byte, 0, 8))) }

// ISO renders yyyy-mm-dd, for reports and JSON.
func (d Date) ISO() string { return d.Time().Format("2006-01-02") }

// AddDays moves the date by n days (n may be negative).
func (d Date) AddDays(n int) Date { return d + Date(n) }

// AddMonths moves by calendar months, clamping to the month's last day
// (Jan 31 + 1 month = Feb 28/29), as billing cycles do.
func (d Date) AddMonths(n int) Date {
	y, m, day := d.Civil()
	return FromCivilCarry(y, int(m)+n, day)
}

// FromCivilCarry is FromCivil for a month that may run past 12 or below 1
// (it carries into the year) and a day past the month's end (clamped to it).
func FromCivilCarry(y, m, day int) Date {
	total := m - 1
	ny := y + floorDiv(total, 12)
	nm := total - floorDiv(total, 12)*12 + 1
	if last := DaysIn(ny, nm); day > last {
		day = last
	}
	return FromCivil(ny, time.Month(nm), day)
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// DaysIn is the number of days of month m (1-12) of year y.
func DaysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
