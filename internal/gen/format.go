package gen

import (
	"time"

	"github.com/usagestream/usagestream/internal/dates"
)

// Calendar arithmetic on day numbers (Howard Hinnant's civil algorithms): the
// hot loop formats a date per row, and going through time.Time costs several
// times more than the whole rest of the row.

// civil returns year, month (1-12) and day of d.
func civil(d dates.Date) (y, m, day int) {
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
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	y = int(yoe + era*400)
	if m <= 2 {
		y++
	}
	return y, m, day
}

// fromCivil is the inverse of civil; m may run past 12 or below 1 and carries
// into the year, and day is clamped to the month's length (as dates.AddMonths).
func fromCivil(y, m, day int) dates.Date {
	m--
	y += floorDiv(m, 12)
	m = m - floorDiv(m, 12)*12 + 1
	if last := monthDays(y, m); day > last {
		day = last
	}
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return dates.Date(era*146097 + doe - 719468)
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func monthDays(y, m int) int {
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

// appendDate appends yyyymmdd.
func appendDate(b []byte, d dates.Date) []byte {
	y, m, day := civil(d)
	return append(b,
		byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10),
		byte('0'+m/10), byte('0'+m%10), byte('0'+day/10), byte('0'+day%10))
}

func dateString(d dates.Date) string { return string(appendDate(make([]byte, 0, 8), d)) }

// appendPadded appends n (>= 0) in decimal, left-padded with zeros to width.
func appendPadded(b []byte, n int64, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for n >= 10 {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	tmp[i] = byte('0' + n)
	for len(tmp)-i < width {
		b = append(b, '0')
		width--
	}
	return append(b, tmp[i:]...)
}

// appendFixed appends v, given in hundredths, with dec (0, 1 or 2) decimals;
// v must already be rounded to that precision. sep adds thousands separators,
// which only the THOUSANDS_SEPARATOR anomaly wants.
func appendFixed(b []byte, v int64, dec int, sep bool) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	whole := v / 100
	if sep && whole >= 1000 {
		b = appendGrouped(b, whole)
	} else {
		b = appendPadded(b, whole, 1)
	}
	switch dec {
	case 1:
		b = append(b, '.', byte('0'+v/10%10))
	case 2:
		b = append(b, '.', byte('0'+v/10%10), byte('0'+v%10))
	}
	return b
}

func appendGrouped(b []byte, n int64) []byte {
	if n < 1000 {
		return appendPadded(b, n, 1)
	}
	b = appendGrouped(b, n/1000)
	b = append(b, ',')
	return appendPadded(b, n%1000, 3)
}

// fileTimestamp is the yyyyMMddHHmmss of file names, in Now's own location:
// utilities stamp files in their local time.
func fileTimestamp(t time.Time) string { return t.Format("20060102150405") }
