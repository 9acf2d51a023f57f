package gen

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

// TestIntervalsReadBack: a generated file over both daylight-saving changes
// reads back with every read accepted, 23 and 25 hours on the change days,
// the same bytes for the same seed.
func TestIntervalsReadBack(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		start string
		want  int64 // reads per service point
	}{{"20240309", 24 + 23 + 24}, {"20241102", 24 + 25 + 24}} {
		cfg := IntervalConfig{ServicePoints: 3, Start: dates.MustParse(c.start), Days: 3, Minutes: 60, Seed: 7, Now: now}
		var a, b bytes.Buffer
		rows, err := WriteIntervals(&a, cfg)
		if err != nil {
			t.Fatal(err)
		}
		WriteIntervals(&b, cfg)
		if !bytes.Equal(a.Bytes(), b.Bytes()) || rows != 3*c.want {
			t.Fatalf("%s: %d rows (want %d), deterministic %v", c.start, rows, 3*c.want, bytes.Equal(a.Bytes(), b.Bytes()))
		}
		reads := readBack(t, cfg, &a)
		if int64(len(reads)) != rows {
			t.Fatalf("%d reads accepted of %d", len(reads), rows)
		}
		var prevEnd int64
		for _, rd := range reads {
			if rd.Value <= 0 || rd.ServicePointID == "" {
				t.Fatalf("read %+v", rd)
			}
			if prevEnd != 0 && rd.ServicePointID == "SP-E-00000001" && rd.EndMillis != prevEnd+3_600_000 {
				t.Fatalf("line %d: reads are not an hour apart", rd.Line)
			}
			prevEnd = rd.EndMillis
		}
	}
}

// TestDailyReadsKeepTheChangeDays: daily reads end at every local midnight,
// the daylight-saving change days (23 and 25 hours long) included; stepping
// 24 hours from midnight lost the short day and ended the long one at 23:00.
func TestDailyReadsKeepTheChangeDays(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, start := range []string{"20240309", "20241102"} {
		cfg := IntervalConfig{ServicePoints: 1, Start: dates.MustParse(start), Days: 3, Minutes: 1440, Seed: 7,
			Now: time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), Location: ny}
		var buf bytes.Buffer
		rows, err := WriteIntervals(&buf, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rows != 3 {
			t.Fatalf("%s: %d daily reads over 3 days", start, rows)
		}
		for i, rd := range readBack(t, cfg, &buf) {
			y, m, day := dates.MustParse(start).AddDays(i + 1).Civil()
			if want := time.Date(y, m, day, 0, 0, 0, 0, ny).UnixMilli(); rd.EndMillis != want {
				t.Fatalf("%s: read %d ends %s, want local midnight %s", start, i+1, time.UnixMilli(rd.EndMillis).In(ny), time.UnixMilli(want).In(ny))
			}
		}
	}
}

// readBack reads a generated interval file with the interval reader and
// fails on any rejected line.
func readBack(t *testing.T, cfg IntervalConfig, rd io.Reader) []*records.IntervalRead {
	t.Helper()
	r, err := interval.NewReader(IntervalFileName(cfg), rd, interval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var reads []*records.IntervalRead
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return reads
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Read == nil {
			t.Fatalf("line %d rejected: %+v", rec.Rejected.Line, rec.Rejected.Reasons)
		}
		reads = append(reads, rec.Read)
	}
}
