package billing

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/records"
)

// parsedLine is what the NextLine and Parser path made of one line.
type parsedLine struct {
	row *records.BillingRow
	rej *records.Rejected
}

// readParsed reads data with NextLine and parses each line with a Parser in
// another goroutine, as ingest does, and returns the records and the error
// that ended the file.
func readParsed(t testing.TB, name string, data []byte, opts Options) ([]parsedLine, error, error) {
	t.Helper()
	r, err := NewReader(name, bytes.NewReader(data), opts)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	type raw struct {
		s    string
		line int64
		rej  *records.Rejected
	}
	lines := make(chan raw, 64)
	out := make(chan []parsedLine)
	p := r.NewParser()
	go func() {
		var got []parsedLine
		dst := &records.BillingRow{} // one row reused, as ingest's workers do
		for l := range lines {
			if l.rej != nil {
				got = append(got, parsedLine{rej: l.rej})
				continue
			}
			if rej := p.Parse(dst, l.s, l.line); rej != nil {
				got = append(got, parsedLine{rej: rej})
				continue
			}
			row := *dst
			row.Extra = append([]records.Attribute(nil), dst.Extra...)
			if len(row.Extra) == 0 {
				row.Extra = nil
			}
			got = append(got, parsedLine{row: &row})
		}
		out <- got
	}()
	var end error
	for {
		b, line, rej, err := r.NextLine()
		if err != nil {
			end = err
			break
		}
		lines <- raw{s: string(b), line: line, rej: rej}
	}
	close(lines)
	return <-out, end, nil
}

// checkParserMatchesNext: the NextLine and Parser path gives, line for
// line, what Next gives: the same rows, the same rejected rows (reasons,
// file line, field, redacted text), and the same error at the end.
func checkParserMatchesNext(t testing.TB, name string, data []byte, opts Options) {
	t.Helper()
	r, err := NewReader(name, bytes.NewReader(data), opts)
	if err != nil {
		if _, _, err2 := readParsed(t, name, data, opts); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("NewReader: %v, then %v", err, err2)
		}
		return
	}
	var want []Record
	var wantEnd error
	for {
		rec, err := r.Next()
		if err != nil {
			wantEnd = err
			break
		}
		want = append(want, rec)
	}
	r.Close()
	got, gotEnd, err := readParsed(t, name, data, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(wantEnd, io.EOF) || !errors.Is(gotEnd, io.EOF) {
		if wantEnd == nil || gotEnd == nil || wantEnd.Error() != gotEnd.Error() {
			t.Fatalf("the file ended with %v through Next, %v through NextLine", wantEnd, gotEnd)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d records through Next, %d through NextLine and Parse", len(want), len(got))
	}
	for i := range want {
		if !reflect.DeepEqual(want[i].Row, got[i].row) || !reflect.DeepEqual(want[i].Rejected, got[i].rej) {
			t.Fatalf("record %d:\nNext:  %+v %+v\nParse: %+v %+v", i, want[i].Row, want[i].Rejected, got[i].row, got[i].rej)
		}
	}
	// NextInto with one row handed in again and again gives each line's row
	// as Next does: nothing of an earlier line stays in it.
	r, err = NewReader(name, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var dst records.BillingRow
	for i := 0; ; i++ {
		rec, err := r.NextInto(&dst)
		if err != nil {
			if i != len(want) || (err != wantEnd && err.Error() != wantEnd.Error()) {
				t.Fatalf("NextInto ended with %v after %d records; Next with %v after %d", err, i, wantEnd, len(want))
			}
			break
		}
		if i >= len(want) {
			t.Fatalf("NextInto gave more than Next's %d records", len(want))
		}
		if rec.Row != nil && rec.Row != &dst {
			t.Fatalf("record %d: NextInto's row is not the one handed in", i)
		}
		if !reflect.DeepEqual(want[i].Row, rec.Row) || !reflect.DeepEqual(want[i].Rejected, rec.Rejected) {
			t.Fatalf("record %d:\nNext:     %+v %+v\nNextInto: %+v %+v", i, want[i].Row, want[i].Rejected, rec.Row, rec.Rejected)
		}
	}
}

// trickyValues break one rule each, or are edge cases that pass.
var trickyValues = []string{
	"", " ", "  ", "NA", "null", `\N`, "20240230", "20230229", "2024-01-31", "20241301", "19000101", "20991231",
	"-1", "0", "-0", "1,234.5", "1e3", "12.", ".5", "1.25", "999999999", "1000000000", "1234567890123456789",
	"10001", "30.5", "+30", "A", "a", "E", "u", "X", "true", "T", "f", "1", "yes", "ca", "C4", "CA ", "9740",
	"97403-1234", "97403-12", "G", "w", "Z", "x\xff", "Caf\xe9", "Café", strings.Repeat("x", 300),
}

// mutatedFile is a file of n lines of layout l, each a valid line with up to
// three fields replaced by tricky values, or a line whose field count or
// bytes are wrong, or a blank line.
func mutatedFile(rng *rand.Rand, l records.Layout, n int, extra bool) []byte {
	cols := records.LayoutColumns(l)
	var b bytes.Buffer
	b.WriteString(records.HeaderLine(l))
	if extra {
		b.WriteString("\tmail_city\tnote")
	}
	b.WriteByte('\n')
	for range n {
		over := map[string]string{}
		for range rng.IntN(4) {
			over[cols[rng.IntN(len(cols))].Name] = trickyValues[rng.IntN(len(trickyValues))]
		}
		line := rowLine(l, over)
		if extra {
			line += "\tMacon\t" + trickyValues[rng.IntN(len(trickyValues))]
		}
		switch rng.IntN(40) {
		case 0:
			line = ""
		case 1:
			line += "\tone too many"
		case 2:
			line = line[:strings.LastIndexByte(line, '\t')]
		case 3:
			line = strings.Repeat("y", 2000) // over MaxLineBytes below
		case 4:
			line += "\r"
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestParserMatchesNext(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	names := map[records.Layout]string{records.LayoutFull: fullName, records.LayoutCustomer: customerName, records.LayoutUsage: usageName}
	for _, l := range []records.Layout{records.LayoutFull, records.LayoutCustomer, records.LayoutUsage} {
		for _, extra := range []bool{false, true} {
			data := mutatedFile(rng, l, 3000, extra)
			for _, opts := range []Options{{MaxLineBytes: 1024}, {MaxLineBytes: 1024, KeepPersonal: true, NetMetering: true}} {
				checkParserMatchesNext(t, names[l], data, opts)
				checkParserMatchesNext(t, names[l], gzipBytes(t, string(data)), opts)
			}
			// Cut in the middle of a line: both paths end with the same error.
			gz := gzipBytes(t, string(data))
			checkParserMatchesNext(t, names[l], gz[:len(gz)/2], Options{})
		}
	}
	// A valid file of the benchmark: every row accepted through both paths.
	checkParserMatchesNext(t, fullName, benchFile(2000), Options{})
}
