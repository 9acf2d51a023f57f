package quarantine

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordRefeedRoundTrip(t *testing.T) {
	t.Parallel()
	orig := &kgo.Record{Topic: "p.billing.v1", Partition: 3, Offset: 41, Key: []byte("SP1"), Value: []byte{0, 0, 0, 0, 7, 1, 2},
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("x")}}}
	q := Record(StageTopic("p.", "servicepoint"), orig, Source{Topic: orig.Topic, Partition: 3, Offset: 41, SchemaID: SchemaID(orig.Value)}, "servicepoint", errors.New("bad frame"))
	if q.Topic != "p.quarantine-servicepoint.v1" || string(q.Key) != "SP1" {
		t.Fatalf("quarantine record %s key %q", q.Topic, q.Key)
	}
	got, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	want := Quarantined{Source: Source{Topic: "p.billing.v1", Partition: 3, Offset: 41, SchemaID: 7}, By: "servicepoint", Error: "bad frame"}
	if got != want {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
	re, _, err := Refeed(q)
	if err != nil {
		t.Fatal(err)
	}
	if re.Topic != "p.billing.v1" || string(re.Value) != string(orig.Value) {
		t.Fatalf("refeed to %s value %v", re.Topic, re.Value)
	}
	if v, _ := Header(re.Headers, "trace"); v != "x" {
		t.Fatalf("original header lost: %v", re.Headers)
	}
	if SkipFor("servicepoint", re.Headers) || !SkipFor("interval", re.Headers) {
		t.Fatalf("a re-feed must reach only the consumer that quarantined it")
	}
	if SkipFor("interval", orig.Headers) {
		t.Fatal("an ordinary record is skipped")
	}
	// Quarantined again after a re-feed: one set of origin headers.
	again := Record(StageTopic("p.", "servicepoint"), re, Source{Topic: re.Topic, Partition: 1, Offset: 99}, "servicepoint", errors.New("still bad"))
	n := 0
	for _, h := range again.Headers {
		if h.Key == HeaderSourceOffset {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d source offset headers", n)
	}
}

func TestErrorHeaderIsBounded(t *testing.T) {
	t.Parallel()
	q := Record("q", &kgo.Record{}, Source{Topic: "t"}, "s", errors.New(strings.Repeat("é", 5000)))
	v, _ := Header(q.Headers, HeaderError)
	if len(v) > maxErrorBytes+len("…") || !strings.HasSuffix(v, "…") {
		t.Fatalf("error header of %d bytes", len(v))
	}
}

func TestParseRefusesForeignRecords(t *testing.T) {
	t.Parallel()
	for _, hs := range [][]kgo.RecordHeader{
		nil,
		{{Key: HeaderSourceTopic, Value: []byte("t")}},
		{{Key: HeaderSourceTopic, Value: []byte("t")}, {Key: HeaderBy, Value: []byte("s")}, {Key: HeaderSourcePartition, Value: []byte("-1")}, {Key: HeaderSourceOffset, Value: []byte("0")}},
		{{Key: HeaderSourceTopic, Value: []byte("t")}, {Key: HeaderBy, Value: []byte("s")}, {Key: HeaderSourcePartition, Value: []byte("0")}, {Key: HeaderSourceOffset, Value: []byte("x")}},
	} {
		if _, err := Parse(&kgo.Record{Headers: hs}); err == nil {
			t.Errorf("headers %v parsed", hs)
		}
	}
}

func TestPoison(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("decoding: %w", Poison(errors.New("not Avro")))
	if !IsPoison(err) || IsPoison(errors.New("registry down")) {
		t.Fatal("IsPoison")
	}
	if !strings.Contains(err.Error(), "not Avro") {
		t.Fatal(err)
	}
}

func TestSchemaID(t *testing.T) {
	t.Parallel()
	if SchemaID([]byte("plain text")) != 0 || SchemaID(nil) != 0 || SchemaID([]byte{0, 0, 0, 1, 2}) != 258 {
		t.Fatal("SchemaID")
	}
}
