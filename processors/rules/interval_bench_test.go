package rules

import (
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// yearOfReads is one service point's 15-minute reads for 365 days at -0500
// (no DST: the figure is about size), values with three decimals, as meters send.
func yearOfReads() []records.IntervalRead {
	start := dates.MustParse("20240101")
	var out []records.IntervalRead
	for d := 0; d < 365; d++ {
		day := start.AddDays(d)
		for q := 1; q <= 96; q++ {
			end, date := q*15%1440, day
			if end == 0 {
				date = day.AddDays(1)
			}
			r := records.IntervalRead{ServicePointID: "SP-E-00000001", LocalDate: date, LocalTime: int16(end), OffsetMinutes: -300, OffsetGiven: true,
				Minutes: 15, Value: float64((q*37+d*11)%900) / 1000, Units: "KWH", Estimate: records.EstimateActual}
			r.EndMillis = (int64(date)*1440 + int64(end) + 300) * 60_000
			out = append(out, r)
		}
	}
	return out
}

// BenchmarkIntervalRules applies a year of 15-minute reads of one service
// point to its state (the pure rules, no Kafka) and reports reads/s and the
// encoded state size at the end of the year: the state size per service
// point-year (40 days with values, the rest coverage and day sums).
func BenchmarkIntervalRules(b *testing.B) {
	reads := yearOfReads()
	p, ipol := DefaultPolicy(), DefaultIntervalPolicy()
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var size int
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var ip IntervalPoint
		for k := range reads {
			ip.ApplyRead(p, ipol, &reads[k], at, Source{})
		}
		enc, err := ip.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		size = len(enc)
	}
	b.ReportMetric(float64(len(reads)*b.N)/time.Since(start).Seconds(), "reads/s")
	b.ReportMetric(float64(size), "state-bytes/sp-year")
}

// TestStateSizePerServicePointYear keeps the figure honest: a year of
// 15-minute reads must encode compactly (a key per interval would be
// 35,040 keys), and decode to the same state.
func TestStateSizePerServicePointYear(t *testing.T) {
	t.Parallel()
	reads := yearOfReads()
	var ip IntervalPoint
	for k := range reads {
		ip.ApplyRead(DefaultPolicy(), DefaultIntervalPolicy(), &reads[k], 0, Source{})
	}
	b, err := ip.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back IntervalPoint
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	c := back.Channels[0]
	if len(c.Days) != 365 || c.Days[364].count() != 96 || len(c.Days[364].Values) != 96 || c.Days[0].Values != nil {
		t.Fatalf("days %d", len(c.Days))
	}
	t.Logf("state of one service point-year of 15-minute reads: %d bytes", len(b))
	if len(b) > 64<<10 {
		t.Fatalf("%d bytes per service point-year", len(b))
	}
}
