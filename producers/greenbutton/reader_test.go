package greenbutton_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/greenbutton"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

func newYork(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// readAll reads every record; err is what ended the file (nil at io.EOF).
func readAll(t testing.TB, name string, data []byte, opts greenbutton.Options) (reads []*records.IntervalRead, rejected []*records.Rejected, err error) {
	t.Helper()
	r, err := greenbutton.NewReader(name, bytes.NewReader(data), opts)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			checkStats(t, r, len(reads), len(rejected))
			return reads, rejected, err
		}
		switch {
		case rec.Read != nil && rec.Rejected == nil:
			reads = append(reads, rec.Read)
		case rec.Rejected != nil && rec.Read == nil:
			rejected = append(rejected, rec.Rejected)
		default:
			t.Fatalf("record with both or neither of Read and Rejected: %+v", rec)
		}
	}
	checkStats(t, r, len(reads), len(rejected))
	return reads, rejected, nil
}

func checkStats(t testing.TB, r *greenbutton.Reader, reads, rejected int) {
	t.Helper()
	s := r.Stats()
	if s.Accepted != int64(reads) || s.Rejected != int64(rejected) || s.Lines != s.Accepted+s.Rejected || r.Ordinal() != s.Lines {
		t.Fatalf("stats %+v ordinal %d, returned %d reads and %d rejected", s, r.Ordinal(), reads, rejected)
	}
}

// feed wraps entries in a feed with one UsagePoint "SP1" (electricity), its
// MeterReading and the ReadingType rt (its inner elements).
func feed(rt, blocks string) string {
	const base = "https://x.example/espi/1_1/resource/RetailCustomer/9/UsagePoint/SP1"
	return `<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<entry>
  <link rel="self" href="` + base + `"/>
  <content><UsagePoint xmlns="http://naesb.org/espi"><ServiceCategory><kind>0</kind></ServiceCategory></UsagePoint></content>
</entry>
<entry>
  <link rel="self" href="` + base + `/MeterReading/01"/>
  <link rel="related" href="https://x.example/espi/1_1/resource/ReadingType/07"/>
  <content><MeterReading xmlns="http://naesb.org/espi"/></content>
</entry>
<entry>
  <link rel="self" href="https://x.example/espi/1_1/resource/ReadingType/07"/>
  <content><ReadingType xmlns="http://naesb.org/espi">` + rt + `</ReadingType></content>
</entry>
<entry>
  <link rel="self" href="` + base + `/MeterReading/01/IntervalBlock/1"/>
  <content><IntervalBlock xmlns="http://naesb.org/espi">
` + blocks + `
  </IntervalBlock></content>
</entry>
</feed>
`
}

func reading(start int64, dur int, value string, qualities ...int) string {
	q := ""
	for _, n := range qualities {
		q += fmt.Sprintf("<ReadingQuality><quality>%d</quality></ReadingQuality>", n)
	}
	return fmt.Sprintf("<IntervalReading>%s<timePeriod><duration>%d</duration><start>%d</start></timePeriod><value>%s</value></IntervalReading>\n", q, dur, start, value)
}

// lineOf is the 1-based line of the first occurrence of s in doc.
func lineOf(t testing.TB, doc, s string) int64 {
	t.Helper()
	i := strings.Index(doc, s)
	if i < 0 {
		t.Fatalf("%q not in the document", s)
	}
	return int64(strings.Count(doc[:i], "\n") + 1)
}

// TestSameReadsAsOpowerFile: the generator writes the same reads as an
// Opower interval file and as Green Button XML; both readers must give the
// same records (but the line, and OffsetGiven: the XML gives the UTC
// instant, the offset comes from the zone), across both daylight-saving
// changes of 2024 in New York.
func TestSameReadsAsOpowerFile(t *testing.T) {
	t.Parallel()
	loc := newYork(t)
	for _, start := range []string{"20240309", "20241102"} {
		cfg := gen.IntervalConfig{ServicePoints: 3, Days: 3, Minutes: 15, Seed: 7, Location: loc, Start: dates.MustParse(start),
			Now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Compression: "none"}
		var tsv, xmlDoc bytes.Buffer
		n1, err := gen.WriteIntervals(&tsv, cfg)
		if err != nil {
			t.Fatal(err)
		}
		n2, err := gen.WriteGreenButton(&xmlDoc, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n1 != n2 || n1 != 3*(96+92+96) && n1 != 3*(96+100+96) {
			t.Fatalf("%s: %d TSV reads, %d XML reads", start, n1, n2)
		}
		ir, err := interval.NewReader(gen.IntervalFileName(cfg), bytes.NewReader(tsv.Bytes()), interval.Options{Check: interval.Check{Location: loc}})
		if err != nil {
			t.Fatal(err)
		}
		var want []*records.IntervalRead
		for {
			rec, err := ir.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || rec.Read == nil {
				t.Fatalf("opower reader: %v %+v", err, rec.Rejected)
			}
			want = append(want, rec.Read)
		}
		got, rej, err := readAll(t, gen.GreenButtonFileName(cfg), xmlDoc.Bytes(), greenbutton.Options{Location: loc, Minutes: 15})
		if err != nil || len(rej) > 0 {
			t.Fatalf("%s: %v, rejected %+v", start, err, rej)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d reads, want %d", start, len(got), len(want))
		}
		estimated := 0
		for i := range want {
			g, w := *got[i], *want[i]
			if g.Line <= 0 {
				t.Fatalf("read %d has no line", i)
			}
			g.Line, w.Line, w.OffsetGiven = 0, 0, false
			if g != w {
				t.Fatalf("%s read %d:\n got %+v\nwant %+v", start, i, g, w)
			}
			if g.Estimate == records.EstimateEstimated {
				estimated++
			}
		}
		if estimated == 0 {
			t.Errorf("%s: no estimated read among %d: the quality mapping is not exercised", start, len(got))
		}
	}
}

func TestMultiplierAndUnits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		rt    string
		value string
		want  float64
		units string
	}{
		{"<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>72</uom>", "450", 0.45, "KWH"},
		{"<powerOfTenMultiplier>3</powerOfTenMultiplier><uom>72</uom>", "2", 2, "KWH"},
		{"<powerOfTenMultiplier>-1</powerOfTenMultiplier><uom>72</uom>", "12345", 1.2345, "KWH"},
		{"<uom>72</uom>", "-250", -0.25, "KWH"}, // no multiplier: 10^0; a negative delta (net metering) is the value
		{"<powerOfTenMultiplier>-2</powerOfTenMultiplier><uom>169</uom>", "150", 1.5, "THERM"},
		{"<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>42</uom>", "3", 3, "M3"},
		{"<powerOfTenMultiplier>2</powerOfTenMultiplier><uom>119</uom>", "7", 700, "CF"},
		{"<uom>128</uom>", "40", 40, "GAL"},
		{"<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>73</uom>", "1500", 1.5, "KVARH"},
	}
	for _, c := range cases {
		doc := feed(c.rt, reading(1704085200, 3600, c.value))
		reads, rej, err := readAll(t, "x.xml", []byte(doc), greenbutton.Options{})
		if err != nil || len(rej) > 0 || len(reads) != 1 {
			t.Fatalf("%s: %v %+v %d", c.rt, err, rej, len(reads))
		}
		r := reads[0]
		if r.Value != c.want || r.Units != c.units || r.ServicePointID != "SP1" || r.ServiceType != "E" || r.Minutes != 60 {
			t.Errorf("%s value %s: got %+v, want %g %s", c.rt, c.value, r, c.want, c.units)
		}
		// 2024-01-01T05:00Z + 1 h, in UTC: ends 2024-01-01 06:00.
		if r.LocalDate != dates.MustParse("20240101") || r.LocalTime != 360 || r.OffsetMinutes != 0 || r.EndMillis != (1704085200+3600)*1000 {
			t.Errorf("%s: time %+v", c.rt, r)
		}
	}
	// A unit this pipeline does not take, and a multiplier out of range:
	// every reading is rejected, naming the ReadingType element.
	for _, c := range []struct{ rt, field, code string }{
		{"<uom>38</uom>", "ReadingType/uom", records.CodeBadUnits},
		{"<powerOfTenMultiplier>x</powerOfTenMultiplier><uom>72</uom>", "ReadingType/powerOfTenMultiplier", records.CodeBadInteger},
		{"<powerOfTenMultiplier>0</powerOfTenMultiplier>", "ReadingType/uom", records.CodeRequired},
		{"<accumulationBehaviour>1</accumulationBehaviour><uom>72</uom>", "ReadingType/accumulationBehaviour", records.CodeBadUnits},
	} {
		doc := feed(c.rt, reading(1704085200, 3600, "1")+reading(1704088800, 3600, "2"))
		reads, rej, err := readAll(t, "x.xml", []byte(doc), greenbutton.Options{})
		if err != nil || len(reads) != 0 || len(rej) != 2 {
			t.Fatalf("%s: %v, %d reads, %d rejected", c.rt, err, len(reads), len(rej))
		}
		if !hasReason(rej[1], c.field, c.code) || rej[1].Line != lineOf(t, doc, "<value>2<") {
			t.Errorf("%s: %+v, want %s %s on line %d", c.rt, rej[1], c.field, c.code, lineOf(t, doc, "<value>2<"))
		}
	}
}

func hasReason(rj *records.Rejected, field, code string) bool {
	for _, r := range rj.Reasons {
		if r.Field == field && r.Code == code && r.Message != "" && r.Rule != "" {
			return true
		}
	}
	return false
}

func TestEstimates(t *testing.T) {
	t.Parallel()
	const rt = "<uom>72</uom>"
	doc := feed(rt, reading(1704085200, 900, "1")+ // no quality: valid
		reading(1704086100, 900, "2", 8)+ // estimated using a reference day
		reading(1704087000, 900, "3", 19)+ // revenue quality
		reading(1704087900, 900, "4", 0, 9)+ // valid and interpolated: estimated
		reading(1704088800, 900, "5", 7)+ // manually edited
		reading(1704089700, 900, "6", 5)) // not a quality code
	reads, rej, err := readAll(t, "x.xml", []byte(doc), greenbutton.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []records.Estimate{'A', 'E', 'A', 'E', 'E'}
	if len(reads) != len(want) || len(rej) != 1 {
		t.Fatalf("%d reads, %d rejected", len(reads), len(rej))
	}
	for i, w := range want {
		if reads[i].Estimate != w {
			t.Errorf("read %d: estimate %c, want %c", i, reads[i].Estimate, w)
		}
	}
	if !hasReason(rej[0], "ReadingQuality/quality", records.CodeBadEstimate) || rej[0].Line != lineOf(t, doc, "<value>6<") ||
		rej[0].ServicePointID != "SP1" || !strings.Contains(rej[0].Raw, "quality=5") {
		t.Errorf("rejected %+v", rej[0])
	}
}

// TestDaylightSaving: hourly readings through both 2024 changes in New
// York. The fall-back day has two reads ending at local 01:00 with different
// offsets and instants; the spring-forward day has no local 03:00 end... but
// has 23 reads; daily reads of 23 and 25 hours are one local day (1440).
func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	loc := newYork(t)
	day := func(d string) (from, to int64) {
		y, m, dd := dates.MustParse(d).Civil()
		return time.Date(y, m, dd, 0, 0, 0, 0, loc).Unix(), time.Date(y, m, dd+1, 0, 0, 0, 0, loc).Unix()
	}
	for _, c := range []struct {
		date  string
		reads int
	}{{"20240310", 23}, {"20241103", 25}} {
		from, to := day(c.date)
		var b strings.Builder
		for s := from; s < to; s += 3600 {
			b.WriteString(reading(s, 3600, "1000"))
		}
		b.WriteString(reading(from, int(to-from), "24000")) // the day's total as a daily reading
		doc := feed("<uom>72</uom><intervalLength>3600</intervalLength>", b.String())
		reads, rej, err := readAll(t, "x.xml", []byte(doc), greenbutton.Options{Location: loc})
		if err != nil || len(rej) > 0 || len(reads) != c.reads+1 {
			t.Fatalf("%s: %v %+v, %d reads", c.date, err, rej[0], len(reads))
		}
		seen := map[int64]bool{}
		var ones []*records.IntervalRead
		for _, r := range reads[:c.reads] {
			if seen[r.EndMillis] {
				t.Fatalf("%s: two reads end at %d", c.date, r.EndMillis)
			}
			seen[r.EndMillis] = true
			if r.Minutes != 60 || r.OffsetGiven {
				t.Errorf("%s: %+v", c.date, r)
			}
			if r.LocalTime == 60 {
				ones = append(ones, r)
			}
		}
		daily := reads[c.reads]
		if daily.Minutes != 1440 || daily.LocalTime != 0 || daily.LocalDate != dates.MustParse(c.date).AddDays(1) || daily.StartDate() != dates.MustParse(c.date) {
			t.Errorf("%s daily: %+v", c.date, daily)
		}
		switch c.date {
		case "20241103":
			if len(ones) != 2 || ones[0].OffsetMinutes != -240 || ones[1].OffsetMinutes != -300 || ones[1].EndMillis-ones[0].EndMillis != 3600_000 {
				t.Errorf("fall back: the two 01:00 reads are %+v", ones)
			}
		case "20240310":
			for _, r := range reads[:c.reads] {
				if r.LocalTime == 180 && r.OffsetMinutes == -300 || r.LocalTime == 120 {
					t.Errorf("spring forward: a read ends at local %d with offset %d", r.LocalTime, r.OffsetMinutes)
				}
			}
		}
	}
}

func TestBadReadings(t *testing.T) {
	t.Parallel()
	doc := feed("<uom>72</uom>",
		reading(1704085200, 900, "10")+
			reading(1704086100, 900, "1.5")+ // not an integer
			"<IntervalReading><timePeriod><duration>900</duration></timePeriod><value>3</value></IntervalReading>\n"+ // no start
			reading(1704087000, 600, "4")+ // 10 minutes: not an interval length
			reading(1704087900, 900, "")+ // empty value
			reading(1704088800, 900, "6"))
	reads, rej, err := readAll(t, "x.xml", []byte(doc), greenbutton.Options{})
	if err != nil || len(reads) != 2 || len(rej) != 4 {
		t.Fatalf("%v, %d reads, %d rejected: %+v", err, len(reads), len(rej), rej)
	}
	for i, c := range []struct {
		at, field, code string
	}{
		{"<value>1.5<", "value", records.CodeBadNumber},
		{"<value>3<", "timePeriod/start", records.CodeRequired},
		{"<value>4<", "timePeriod/duration", records.CodeBadLength},
		{"<value><", "value", records.CodeBadNumber},
	} {
		if !hasReason(rej[i], c.field, c.code) || rej[i].Line != lineOf(t, doc, c.at) {
			t.Errorf("rejected %d: %+v, want %s %s at line %d", i, rej[i], c.field, c.code, lineOf(t, doc, c.at))
		}
	}
	// No duration: the ReadingType's intervalLength, when it has one.
	noDur := "<IntervalReading><timePeriod><start>1704085200</start></timePeriod><value>7</value></IntervalReading>\n"
	reads, rej, err = readAll(t, "x.xml", []byte(feed("<uom>72</uom><intervalLength>1800</intervalLength>", noDur)), greenbutton.Options{})
	if err != nil || len(rej) != 0 || len(reads) != 1 || reads[0].Minutes != 30 || reads[0].EndMillis != (1704085200+1800)*1000 {
		t.Fatalf("intervalLength: %v %+v %+v", err, rej, reads)
	}
	doc = feed("<uom>72</uom>", noDur)
	_, rej, err = readAll(t, "x.xml", []byte(doc), greenbutton.Options{})
	if err != nil || len(rej) != 1 || !hasReason(rej[0], "timePeriod/duration", records.CodeRequired) {
		t.Fatalf("no length at all: %v %+v", err, rej)
	}
	// The file name says interval15: an hourly reading breaks I1.
	doc = feed("<uom>72</uom>", reading(1704085200, 3600, "10"))
	_, rej, err = readAll(t, "x.xml", []byte(doc), greenbutton.Options{Minutes: 15})
	if err != nil || len(rej) != 1 || !hasReason(rej[0], "timePeriod/duration", records.CodeOffGrid) {
		t.Fatalf("%v %+v", err, rej)
	}
	// The shared validator: a date out of the plausible window.
	doc = feed("<uom>72</uom>", reading(315532800, 3600, "10")) // 1980
	_, rej, err = readAll(t, "x.xml", []byte(doc), greenbutton.Options{})
	if err != nil || len(rej) != 1 || !hasReason(rej[0], "timePeriod/start", records.CodeDateOutOfWindow) {
		t.Fatalf("%v %+v", err, rej)
	}
}

// TestOrderOfEntries: links after the content are waited for; a block
// before its ReadingType cannot be read and says so on every reading.
func TestOrderOfEntries(t *testing.T) {
	t.Parallel()
	doc := feed("<uom>72</uom>", reading(1704085200, 900, "10"))
	// The block entry's self link after its content.
	i := strings.LastIndex(doc, "<entry>")
	block := doc[i:]
	link := block[strings.Index(block, "  <link"):strings.Index(block, "  <content>")]
	moved := doc[:i] + strings.Replace(strings.Replace(block, link, "", 1), "</content>\n", "</content>\n"+link, 1)
	reads, rej, err := readAll(t, "x.xml", []byte(moved), greenbutton.Options{})
	if err != nil || len(reads) != 1 || len(rej) != 0 || reads[0].ServicePointID != "SP1" {
		t.Fatalf("links after content: %v %d %+v", err, len(reads), rej)
	}
	// The ReadingType entry after the block.
	j := strings.Index(doc, "<entry>\n  <link rel=\"self\" href=\"https://x.example/espi/1_1/resource/ReadingType/07\"/>")
	k := j + strings.Index(doc[j:], "</entry>\n") + len("</entry>\n")
	late := doc[:j] + doc[k:strings.LastIndex(doc, "</feed>")] + doc[j:k] + "</feed>\n"
	_, rej, err = readAll(t, "x.xml", []byte(late), greenbutton.Options{})
	if err != nil || len(rej) != 1 || !hasReason(rej[0], "ReadingType", records.CodeRequired) {
		t.Fatalf("ReadingType late: %v %+v", err, rej)
	}
	// The same UsagePoint id under another RetailCustomer: the file stops
	// there rather than mixing two meters' reads under one id.
	other := strings.Replace(doc[i:strings.LastIndex(doc, "</feed>")], "RetailCustomer/9", "RetailCustomer/8", 1)
	two := doc[:strings.LastIndex(doc, "</feed>")] + other + "</feed>\n"
	reads, _, err = readAll(t, "x.xml", []byte(two), greenbutton.Options{})
	if fe := fileErr(t, err); len(reads) != 1 || !strings.Contains(fe.Error(), "two different parents") || fe.Line <= lineOf(t, two, "RetailCustomer/8") {
		t.Fatalf("two parents: %d reads, %v", len(reads), err)
	}
	// Several readings on one line each keep the line and count once.
	one := strings.ReplaceAll(feed("<uom>72</uom>", reading(1704085200, 900, "1")+reading(1704086100, 900, "2")), "\n", "")
	reads, _, err = readAll(t, "x.xml", []byte(one), greenbutton.Options{})
	if err != nil || len(reads) != 2 || reads[0].Line != 1 || reads[1].Line != 1 {
		t.Fatalf("one line: %v %+v", err, reads)
	}
}

func fileErr(t testing.TB, err error) *filereader.FileError {
	t.Helper()
	var fe *filereader.FileError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *filereader.FileError", err, err)
	}
	return fe
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	good := feed("<uom>72</uom>", reading(1704085200, 900, "1")+reading(1704086100, 900, "2")+reading(1704087000, 900, "3"))
	// A closing tag that does not match, on the second reading's line.
	bad := strings.Replace(good, "<value>2</value></IntervalReading>", "<value>2</valu></IntervalReading>", 1)
	reads, _, err := readAll(t, "x.xml", []byte(bad), greenbutton.Options{})
	fe := fileErr(t, err)
	if fe.Line != lineOf(t, bad, "</valu>") || len(reads) != 1 || !strings.Contains(fe.Error(), "x.xml") {
		t.Errorf("mismatched tag: %v (line %d), %d reads before", err, fe.Line, len(reads))
	}
	// Not XML at all, and XML that is not a feed.
	for _, doc := range []string{"service_point_id\tusage_value\n", "<html><body>hi</body></html>"} {
		_, _, err := readAll(t, "x.xml", []byte(doc), greenbutton.Options{})
		if fe := fileErr(t, err); fe.Line != 1 {
			t.Errorf("%q: %v", doc, err)
		}
	}
	if _, _, err := readAll(t, "x.xml", nil, greenbutton.Options{}); !strings.Contains(fileErr(t, err).Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
	_, _, err = readAll(t, "x.xml", []byte(`<?xml version="1.0" encoding="ISO-8859-1"?><feed/>`), greenbutton.Options{})
	if fe := fileErr(t, err); fe.Line != 1 || !strings.Contains(fe.Error(), "send it as UTF-8") {
		t.Errorf("Latin-1: %v", err)
	}
	// A byte order mark is no text outside the root.
	reads, _, err = readAll(t, "x.xml", []byte("\xef\xbb\xbf"+good), greenbutton.Options{})
	if err != nil || len(reads) != 3 {
		t.Errorf("with a BOM: %v, %d reads", err, len(reads))
	}
}

// TestTruncated: a file cut short is a partial upload, named with the line
// it ends at; the readings before it stand. Plain and gzip.
func TestTruncated(t *testing.T) {
	t.Parallel()
	doc := feed("<uom>72</uom>", reading(1704085200, 900, "1")+reading(1704086100, 900, "2")+reading(1704087000, 900, "3"))
	cut := doc[:strings.Index(doc, "<value>3")+3]
	reads, _, err := readAll(t, "x.xml", []byte(cut), greenbutton.Options{})
	fe := fileErr(t, err)
	if len(reads) != 2 || !strings.Contains(fe.Error(), "partial upload") || fe.Line != lineOf(t, doc, "<value>3") {
		t.Errorf("plain: %d reads, %v", len(reads), err)
	}
	// At an element boundary: every element closed but the feed.
	cut = doc[:strings.LastIndex(doc, "</feed>")]
	reads, _, err = readAll(t, "x.xml", []byte(cut), greenbutton.Options{})
	if fe := fileErr(t, err); len(reads) != 3 || !strings.Contains(fe.Error(), "partial upload") || !strings.Contains(fe.Error(), "<feed>") {
		t.Errorf("before </feed>: %d reads, %v", len(reads), err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(strings.Repeat(doc, 1)))
	zw.Close()
	_, _, err = readAll(t, "x.xml.gz", z.Bytes()[:z.Len()-20], greenbutton.Options{})
	if fe := fileErr(t, err); !strings.Contains(fe.Error(), "truncated") && !strings.Contains(fe.Error(), "partial upload") {
		t.Errorf("gzip: %v", err)
	}
}

// TestMemoryFlat: reading twenty times more readings of the same service
// points leaves the same live heap behind the reader, which keeps a few
// words per UsagePoint, MeterReading and ReadingType, nothing per reading.
func TestMemoryFlat(t *testing.T) {
	live := func(days int) uint64 {
		cfg := gen.IntervalConfig{ServicePoints: 20, Days: days, Minutes: 15, Seed: 1, Location: time.UTC, Start: dates.MustParse("20240101"),
			Now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Compression: "gzip"}
		path, rows, err := gen.GenerateGreenButton(t.TempDir(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		r, err := greenbutton.Open(path, greenbutton.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var n int64
		var peak uint64
		var ms runtime.MemStats
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if n++; n%5000 == 0 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
		if n != rows {
			t.Fatalf("%d readings, want %d", n, rows)
		}
		return peak
	}
	small, large := live(10), live(200) // 19,200 and 384,000 readings
	t.Logf("live heap while reading: %d KiB for 19,200 readings, %d KiB for 384,000", small>>10, large>>10)
	if large > small+512<<10 {
		t.Fatalf("the live heap grew from %d to %d bytes with 20 times the readings", small, large)
	}
}
