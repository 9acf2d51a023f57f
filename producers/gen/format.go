package gen

import (
	"time"

	"github.com/usagestream/usagestream/internal/dates"
)

// Thin wrappers over the dates package's civil arithmetic (fast: the hot
// loop formats a date per row).

func civil(d dates.Date) (y, m, day int) {
	yy, mm, dd := d.Civil()
	return yy, int(mm), dd
}

// fromCivil lets m run past 12 or below 1 and clamps day to the month.
func fromCivil(y, m, day int) dates.Date { return dates.FromCivilCarry(y, m, day) }

func monthDays(y, m int) int { return dates.DaysIn(y, m) }

func appendDate(b []byte, d dates.Date) []byte { return d.AppendYYYYMMDD(b) }

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
