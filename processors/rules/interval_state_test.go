package rules

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
)

// busyIntervalState is a service point's interval state with sources in
// each part that keeps them: three bills (one read again, U4), and reads with
// a gap and a negative value, which stay raised.
func busyIntervalState(t testing.TB) IntervalPoint {
	r := newIPRun(t)
	r.bill("20240531", 31, 10)
	r.reads(dayReads(t, "20240601", 60, 1, -240, "0500", "0600")...)
	r.reads(dayReads(t, "20240602", 60, -1, -240)...)
	r.bill("20240630", 30, 500)
	r.reads(dayReads(t, "20240603", 60, 0.5, -240)...)
	r.bill("20240731", 31, 20)
	r.bill("20240630", 30, 30) // the June bill again
	return r.ip
}

// TestIntervalStateReadsVersion2: a state written by version 2, before the
// string table (testdata/interval-v2.bin is busyIntervalState's, written by
// that build), decodes to the same state; written again, in version 3, it
// is smaller and decodes to the same state too.
func TestIntervalStateReadsVersion2(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/interval-v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != intervalNoTable {
		t.Fatalf("version %d", b[0])
	}
	want := busyIntervalState(t)
	got := decodesTo(t, "interval state of version 2", b, &want)
	v3, err := got.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if v3[0] != intervalStateVersion || len(v3) >= len(b) {
		t.Fatalf("written again: version %d, %d bytes against version 2's %d", v3[0], len(v3), len(b))
	}
	decodesTo(t, "interval state of version 3", v3, &want)
}

// TestIntervalStateStringTable: each distinct topic and file is written
// once, then referred to; a state of more distinct strings than the table
// holds encodes and decodes all the same, and a reference past the strings
// read is refused.
func TestIntervalStateStringTable(t *testing.T) {
	t.Parallel()
	var ip IntervalPoint
	ip.ID = "SP1"
	const files = maxTableStrings + 10
	for i := range 2 * files {
		ip.Periods = append(ip.Periods, BilledPeriod{DateTo: dates.Date(20000 + 30*i), Duration: 30, Value: float64(i),
			Source: Source{Topic: "usagestream.billing.v1", Offset: int64(i), File: fmt.Sprintf("opwr_gec_res_v1-19-0_full_2025%06d.gz", i%files), Line: int64(i)}})
	}
	b, err := ip.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("usagestream.billing.v1")); n != 1 {
		t.Fatalf("the topic is written %d times, want once", n)
	}
	// Files past the table's room are written each time they come.
	if n := bytes.Count(b, []byte("opwr_gec_res")); n != maxTableStrings-1+2*(files-maxTableStrings+1) {
		t.Fatalf("the file names are written %d times", n)
	}
	var back IntervalPoint
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Periods, ip.Periods) {
		t.Fatal("the periods differ after a round trip")
	}
	// A reference to a string not read yet: the first source's topic
	// (the first string after the periods' count and the first period's
	// date, duration, value and flags) made to point at index 5.
	bad := bytes.Clone(b)
	at := bytes.Index(bad, []byte("usagestream.billing.v1")) - 1
	bad[at] = 2*5 + 1
	if err := back.UnmarshalBinary(bad); err == nil {
		t.Fatal("a reference past the strings read decodes")
	}
}
