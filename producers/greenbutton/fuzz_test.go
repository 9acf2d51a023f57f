package greenbutton_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/producers/greenbutton"
)

// FuzzGreenButton: whatever the bytes, the reader never panics, every
// record is a read or a rejected reading naming its line and reasons, the
// counts reconcile, and a file that stops is a *filereader.FileError naming
// a line (line 0 only before any XML: an empty or damaged compressed file).
func FuzzGreenButton(f *testing.F) {
	good := feed("<powerOfTenMultiplier>-1</powerOfTenMultiplier><uom>72</uom><intervalLength>900</intervalLength>",
		reading(1704085200, 900, "10", 8)+reading(1704086100, 900, "x")+reading(1704087000, 3600, "3", 5))
	f.Add([]byte(good))
	f.Add([]byte(good[:len(good)/2]))
	f.Add([]byte(strings.ReplaceAll(good, "\n", "")))
	f.Add([]byte(strings.Replace(good, "</value>", "</valu>", 1)))
	f.Add([]byte(strings.Replace(good, "<uom>72</uom>", "<uom>999999999999</uom>", 1)))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x "y">]><feed><entry><entry></entry></entry></feed>`))
	f.Add([]byte(`<feed><entry><content><IntervalBlock><IntervalReading><value>1</value></IntervalReading></IntervalBlock></content></entry></feed>`))
	f.Add([]byte(`<feed/><feed/>`))
	f.Add([]byte("<feed>\n&bogus;</feed>"))
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><feed/>`))
	f.Add([]byte(""))
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(good))
	zw.Close()
	f.Add(z.Bytes())
	f.Add(z.Bytes()[:z.Len()/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := greenbutton.NewReader("fuzz.xml", bytes.NewReader(data), greenbutton.Options{})
		if err != nil {
			var fe *filereader.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("open: %v (%T) is not a FileError", err, err)
			}
			if fe.Line == 0 && len(bytes.TrimSpace(data)) > 0 && !bytes.HasPrefix(data, []byte("\x1f\x8b")) && !bytes.HasPrefix(data, []byte("PK")) {
				t.Fatalf("open: %v names no line", err)
			}
			return
		}
		defer r.Close()
		var n int64
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatalf("more records (%d) than bytes (%d)", i, len(data))
			}
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var fe *filereader.FileError
				if !errors.As(err, &fe) || fe.Line <= 0 || fe.Err == nil {
					t.Fatalf("next: %v (%T) is not a FileError naming a line", err, err)
				}
				if _, again := r.Next(); again == nil || again.Error() != err.Error() {
					t.Fatalf("the error is not sticky: %v then %v", err, again)
				}
				break
			}
			n++
			switch {
			case rec.Read != nil && rec.Rejected == nil:
				if rec.Read.Line <= 0 || rec.Read.ServicePointID == "" || rec.Read.Units == "" || rec.Read.Minutes == 0 {
					t.Fatalf("accepted read %+v", rec.Read)
				}
			case rec.Rejected != nil && rec.Read == nil:
				if rec.Rejected.Line <= 0 || len(rec.Rejected.Reasons) == 0 {
					t.Fatalf("rejected %+v names no line or reason", rec.Rejected)
				}
				for _, rs := range rec.Rejected.Reasons {
					if rs.Code == "" || rs.Field == "" || rs.Message == "" || rs.Rule == "" {
						t.Fatalf("reason %+v", rs)
					}
				}
			default:
				t.Fatalf("record %+v", rec)
			}
		}
		if s := r.Stats(); s.Lines != n || s.Accepted+s.Rejected != n || r.Ordinal() != n {
			t.Fatalf("stats %+v, ordinal %d, %d records", s, r.Ordinal(), n)
		}
	})
}
