package interval

import (
	"errors"
	"github.com/usagestream/usagestream/producers/filereader"
	"io"
	"strings"
	"testing"
)

// FuzzReader: any bytes give records and at most one file error, never a
// panic; every line is accounted for once; accepted reads satisfy the
// contract (on the grid, known units, instant consistent with local time).
func FuzzReader(f *testing.F) {
	f.Add(header + "SP1\t0.25\t20240601\t0015\tKWH\tA\t-0400\tE\t\n")
	f.Add(header + "SP1\t1\t20241103\t0100\tKWH\t\t\t\tGENERATED\r\n\n")
	f.Add(header + "SP1\t1,0\t20240230\t2460\tBTU\tX\t-05\tQ\t\n")
	f.Add("junk")
	f.Fuzz(func(t *testing.T, body string) {
		r, err := NewReader(name(15), strings.NewReader(body), Options{MaxLineBytes: 256})
		if err != nil {
			var fe *filereader.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("not a FileError: %v", err)
			}
			return
		}
		var n int64
		for {
			rec, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					var fe *filereader.FileError
					if !errors.As(err, &fe) {
						t.Fatalf("not a FileError: %v", err)
					}
				}
				break
			}
			n++
			if (rec.Read == nil) == (rec.Rejected == nil) {
				t.Fatalf("record %+v", rec)
			}
			if rd := rec.Read; rd != nil {
				if !onGrid(int(rd.LocalTime), 15) || rd.Units == "" || rd.ServicePointID == "" ||
					rd.EndMillis != endMillis(rd.LocalDate, int(rd.LocalTime), int(rd.OffsetMinutes)) {
					t.Fatalf("accepted read breaks the contract: %+v", rd)
				}
				b, err := AppendAvro(nil, 1, rd, Origin{Utility: "gec", Kind: OriginFile, Name: "f"})
				if err != nil {
					t.Fatalf("encoding an accepted read: %v", err)
				}
				back, _, err := DecodeAvro(b[5:])
				if err != nil || back != *rd {
					t.Fatalf("round trip: %v %+v", err, back)
				}
			} else if len(rec.Rejected.Reasons) == 0 || rec.Rejected.Reasons[0].Message == "" {
				t.Fatalf("rejected without a reason: %+v", rec.Rejected)
			}
		}
		if st := r.Stats(); st.Lines != n || st.Accepted+st.Rejected != n {
			t.Fatalf("stats %+v for %d records", st, n)
		}
	})
}
