package greenbutton_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/greenbutton"
	"github.com/usagestream/usagestream/producers/interval"
)

// transcript is everything a reader tells its caller about one file.
type transcript struct {
	records  []interval.Record
	err      string // what ended the file ("" at io.EOF)
	stats    filereader.Stats
	ordinal  int64
	warnings []string
	fast     int64
}

func read(t testing.TB, r *greenbutton.Reader, err error, limit int) transcript {
	t.Helper()
	var tr transcript
	if err != nil {
		tr.err = "open: " + err.Error()
		return tr
	}
	defer r.Close()
	for i := 0; ; i++ {
		if i > limit {
			t.Fatalf("more than %d records", limit)
		}
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tr.err = err.Error()
			break
		}
		tr.records = append(tr.records, rec)
	}
	tr.stats, tr.ordinal, tr.warnings, tr.fast = r.Stats(), r.Ordinal(), r.Warnings(), r.FastReadings()
	return tr
}

// sameAsDecoder reads data with the fast path (its input in pieces of
// chunk bytes, 0: whole) and with encoding/xml alone, and fails unless both
// give the same records, error, counts and warnings. It returns the fast
// reader's transcript.
func sameAsDecoder(t testing.TB, data []byte, opts greenbutton.Options, chunk int) transcript {
	t.Helper()
	var in io.Reader = bytes.NewReader(data)
	if chunk > 0 {
		in = &chunked{data: data, n: chunk}
	}
	fr, ferr := greenbutton.NewReader("f.xml", in, opts)
	fast := read(t, fr, ferr, len(data)+1)
	dr, derr := greenbutton.NewDecoderOnlyReader("f.xml", bytes.NewReader(data), opts)
	slow := read(t, dr, derr, len(data)+1)
	if slow.fast != 0 {
		t.Fatalf("the decoder-only reader took the fast path %d times", slow.fast)
	}
	fastN := fast.fast
	fast.fast = 0
	if fast.err != slow.err {
		t.Fatalf("error: fast path %q, decoder %q", fast.err, slow.err)
	}
	if len(fast.records) != len(slow.records) {
		t.Fatalf("fast path %d records, decoder %d", len(fast.records), len(slow.records))
	}
	for i := range fast.records {
		if !reflect.DeepEqual(fast.records[i], slow.records[i]) {
			t.Fatalf("record %d:\nfast path %s\n  decoder %s", i, show(fast.records[i]), show(slow.records[i]))
		}
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast path %+v %d %q\n  decoder %+v %d %q", fast.stats, fast.ordinal, fast.warnings, slow.stats, slow.ordinal, slow.warnings)
	}
	fast.fast = fastN
	return fast
}

func show(rec interval.Record) string {
	if rec.Read != nil {
		return fmt.Sprintf("%+v", *rec.Read)
	}
	return fmt.Sprintf("%+v", *rec.Rejected)
}

// chunked hands out data n bytes at a time.
type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.n, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// TestFastPathSameAsDecoder: on a generated file several times the
// buffer, the fast path reads every IntervalReading and gives what
// encoding/xml gives; on the same file spoilt here and there (shapes the
// fast path leaves to the decoder, malformations, a truncation, links after
// the content) it still gives exactly the same records and error.
func TestFastPathSameAsDecoder(t *testing.T) {
	loc := newYork(t)
	var buf bytes.Buffer
	cfg := gen.IntervalConfig{ServicePoints: 12, Days: 3, Minutes: 15, Seed: 3, Location: loc, Now: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}
	rows, err := gen.WriteGreenButton(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	doc := buf.String()
	if len(doc) < 4*64<<10 {
		t.Fatalf("the file is %d bytes, not several buffers", len(doc))
	}
	opts := greenbutton.Options{Location: loc, Minutes: 15}
	for _, chunk := range []int{0, 1, 4093} {
		tr := sameAsDecoder(t, buf.Bytes(), opts, chunk)
		if tr.err != "" || tr.stats.Accepted != rows || tr.fast != rows {
			t.Fatalf("chunk %d: %d of %d accepted, %d by the fast path, error %q", chunk, tr.stats.Accepted, rows, tr.fast, tr.err)
		}
	}

	// every nth occurrence of old becomes new
	spoil := func(doc, old, new string, nth int) string {
		var b strings.Builder
		for i := 0; ; i++ {
			j := strings.Index(doc, old)
			if j < 0 {
				b.WriteString(doc)
				return b.String()
			}
			b.WriteString(doc[:j])
			if i%nth == nth-1 {
				b.WriteString(new)
			} else {
				b.WriteString(old)
			}
			doc = doc[j+len(old):]
		}
	}
	// The blocks without their <interval> element: their first reading right after the start tag.
	noInterval := regexp.MustCompile(`(?s)<interval>.*?</interval>`).ReplaceAllString(doc, "")
	cases := []struct {
		name, doc   string
		slow, error bool // some readings left to the decoder; the file fails
	}{
		{"CRLF", strings.ReplaceAll(doc, "\n", "\r\n"), false, false},
		{"no indentation", strings.NewReplacer("\n", "", "  ", "").Replace(doc), false, false},
		{"comment", spoil(doc, "<value>", "<!-- c --><value>", 7), true, false},
		{"entity", spoil(doc, "</value>", "&#48;</value>", 5), true, false},
		{"CDATA", spoil(doc, "</value>", "<![CDATA[1]]></value>", 11), true, false},
		{"prefix", spoil(doc, "<value>", "<espi:value xmlns:espi=\"http://naesb.org/espi\">", 13), true, true},
		{"prefixed pair", spoil(spoil(doc, "<value>", "<e:value xmlns:e=\"x\">", 13), "</value>", "</e:value>", 13), true, false},
		{"prefixes", strings.NewReplacer("<IntervalReading>", "<espi:IntervalReading>", "</IntervalReading>", "</espi:IntervalReading>",
			"<value>", "<v.1:value>", "</value>", "</v.1:value>", "<start>", "<_s:start>", "</start>", "</_s:start>").Replace(doc), false, false},
		{"other prefix at the end", spoil(spoil(doc, "<value>", "<a:value>", 5), "</value>", "</b:value>", 5), true, true},
		{"two colons", spoil(spoil(doc, "<value>", "<a:b:value>", 5), "</value>", "</a:b:value>", 5), true, true},
		{"empty prefix", spoil(spoil(doc, "<value>", "<:value>", 5), "</value>", "</:value>", 5), true, false},
		{"empty local name", spoil(spoil(doc, "<value>", "<value:>", 5), "</value>", "</value:>", 5), true, false},
		{"attribute", spoil(doc, "<duration>", "<duration a=\"1\">", 3), true, false},
		{"space in tag", spoil(doc, "</start>", "</start >", 9), true, false},
		{"empty value", spoil(doc, "<value>", "<value/><x>", 17), true, true},
		{"self-closing reading", spoil(doc, "<IntervalReading>", "<IntervalReading/><IntervalReading>", 19), true, false},
		{"self-closing block", spoil(doc, "<IntervalBlock xmlns=\"http://naesb.org/espi\">", "<IntervalBlock/><IntervalBlock>", 2), false, false},
		// readings after an empty block are outside any block: none of them
		{"readings after an empty block", spoil(noInterval, "<IntervalBlock xmlns=\"http://naesb.org/espi\">", "<IntervalBlock/>", 2), true, true},
		{"other child", spoil(doc, "<value>", "<cost>12</cost><value>", 6), true, false},
		{"quality", spoil(doc, "<value>", "<ReadingQuality>\n<quality>8</quality>\n</ReadingQuality><ReadingQuality><quality>x</quality></ReadingQuality><value>", 4), false, false},
		{"text in value", spoil(doc, "</value>", " 1.5\n</value>", 3), false, false},
		{"non-ASCII", spoil(doc, "</value>", "é</value>", 3), true, false},
		{"bad character", spoil(doc, "</value>", "\x01</value>", 29), true, true},
		{"]]>", spoil(doc, "</value>", "]]></value>", 29), true, true},
		{"long value", spoil(doc, "</value>", strings.Repeat("9", 5000)+"</value>", 31), true, false},
		{"mismatched end", spoil(doc, "</start>", "</duration>", 37), true, true},
		{"unclosed", spoil(doc, "</timePeriod>", "", 41), true, true},
		{"truncated", doc[:len(doc)*2/3], false, true},
		{"links after content", strings.Replace(doc, "<link rel=\"self\" href=\"https://", "<link rel=\"alternate\" href=\"https://", -1), false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.doc == doc {
				t.Fatal("the document is unchanged")
			}
			tr := sameAsDecoder(t, []byte(c.doc), opts, 0)
			if (tr.err != "") != c.error {
				t.Fatalf("error %q", tr.err)
			}
			if c.slow == (tr.fast == tr.stats.Lines) && !c.error {
				t.Fatalf("%d of %d readings by the fast path", tr.fast, tr.stats.Lines)
			}
			if tr.fast == 0 {
				t.Fatal("the fast path read nothing")
			}
			sameAsDecoder(t, []byte(c.doc), greenbutton.Options{Location: loc, MaxPending: 5}, 1)
		})
	}
}

// FuzzFastPathSameAsDecoder: whatever the bytes, the fast path gives
// exactly the records, counts, warnings and error (message and line) that
// encoding/xml alone gives.
func FuzzFastPathSameAsDecoder(f *testing.F) {
	good := feed("<powerOfTenMultiplier>-1</powerOfTenMultiplier><uom>72</uom><intervalLength>900</intervalLength>",
		reading(1704085200, 900, "10", 8)+reading(1704086100, 900, "x")+reading(1704087000, 3600, "3", 5))
	f.Add([]byte(good), uint8(0))
	f.Add([]byte(good[:len(good)*3/4]), uint8(1))
	f.Add([]byte(strings.ReplaceAll(good, "\n", "\r\n")), uint8(0))
	f.Add([]byte(strings.Replace(good, "<value>", "<value><!--x-->", 1)), uint8(0))
	f.Add([]byte(strings.Replace(good, "<value>", "<value>&amp;", 1)), uint8(0))
	f.Add([]byte(strings.Replace(good, "</duration>", "</duration >", 1)), uint8(2))
	f.Add([]byte(strings.Replace(good, "</value>", "</valu>", 1)), uint8(0))
	f.Add([]byte(strings.Replace(good, "<IntervalBlock", "<IntervalBlock/><IntervalBlock", 1)), uint8(0))
	f.Add([]byte(strings.Replace(good, "rel=\"self\" href=\"https://x.example/espi/1_1/resource/RetailCustomer/9/UsagePoint/SP1/MeterReading/01/IntervalBlock", "rel=\"next\" href=\"", 1)), uint8(3))
	f.Add([]byte(`<feed><entry><link rel="self" href="/UsagePoint/1/MeterReading/2/IntervalBlock"/><content><IntervalBlock>
<IntervalReading><timePeriod><start>1</start></timePeriod><value>1</value></IntervalReading>
<IntervalReading><ReadingQuality><quality>7</quality></ReadingQuality></IntervalReading><IntervalReading>`), uint8(0))
	f.Add([]byte(strings.NewReplacer("<value>", "<e:value>", "</value>", "</e:value>", "<IntervalReading>", "<espi:IntervalReading>", "</IntervalReading>", "</espi:IntervalReading>").Replace(good)), uint8(0))
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(good))
	zw.Close()
	f.Add(z.Bytes(), uint8(5))
	f.Add(z.Bytes()[:z.Len()*3/4], uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		sameAsDecoder(t, data, greenbutton.Options{MaxPending: 2}, int(chunk))
	})
}
