package gen

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/interval"
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
		r, err := interval.NewReader(IntervalFileName(cfg), &a, interval.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var prevEnd int64
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Read == nil {
				t.Fatalf("line %d rejected: %+v", rec.Rejected.Line, rec.Rejected.Reasons)
			}
			if rec.Read.Value <= 0 || rec.Read.ServicePointID == "" {
				t.Fatalf("read %+v", rec.Read)
			}
			if prevEnd != 0 && rec.Read.ServicePointID == "SP-E-00000001" && rec.Read.EndMillis != prevEnd+3_600_000 {
				t.Fatalf("line %d: reads are not an hour apart", rec.Read.Line)
			}
			prevEnd = rec.Read.EndMillis
		}
		if st := r.Stats(); st.Accepted != rows {
			t.Fatalf("stats %+v", st)
		}
	}
}
