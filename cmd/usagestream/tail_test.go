package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

type tailed struct {
	Topic     string         `json:"topic"`
	Partition int32          `json:"partition"`
	Offset    int64          `json:"offset"`
	Timestamp time.Time      `json:"timestamp"`
	Key       *string        `json:"key"`
	SchemaID  int            `json:"schema_id"`
	Value     map[string]any `json:"value"`
}

func runTail(t *testing.T, kc kafkaconf.Config, c tailCmd) []tailed {
	t.Helper()
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.run(ctx, kc, &buf, func() {}); err != nil {
		t.Fatal(err)
	}
	return parseTail(t, buf.String())
}

// parseTail parses every line as JSON: a line that does not parse fails.
func parseTail(t *testing.T, s string) []tailed {
	t.Helper()
	var out []tailed
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l tailed
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("tail printed a line that is not JSON: %v\n%s", err, sc.Text())
		}
		out = append(out, l)
	}
	return out
}

// avroJSON turns goavro's native form (the reference decoding) into what
// JSON of the same value parses to: numbers as float64 (times and unions
// are left to sameValue).
func avroJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, y := range x {
			out[k] = avroJSON(y)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = avroJSON(y)
		}
		return out
	case time.Time:
		return x
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case float32:
		return float64(x)
	}
	return v
}

// sameValue compares a native value with tail's JSON of it: a date is an
// ISO date and a timestamp RFC 3339 (a time.Time on the native side), and a
// union value is bare (goavro's {"branch": value} on the native side).
func sameValue(native, js any) bool {
	switch n := native.(type) {
	case time.Time:
		s, ok := js.(string)
		return ok && (s == n.UTC().Format(time.DateOnly) || s == n.UTC().Format(time.RFC3339Nano))
	case map[string]any:
		m, ok := js.(map[string]any)
		if len(n) == 1 && (!ok || len(m) != 1 || m[firstKey(n)] == nil) {
			return sameValue(n[firstKey(n)], js) // a union
		}
		if !ok || len(m) != len(n) {
			return false
		}
		for k, v := range n {
			if !sameValue(v, m[k]) {
				return false
			}
		}
		return true
	case []any:
		a, ok := js.([]any)
		if !ok || len(a) != len(n) {
			return false
		}
		for i := range n {
			if !sameValue(n[i], a[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(native, js)
}

func firstKey(m map[string]any) string {
	for k := range m {
		return k
	}
	return ""
}

// TestTailPrintsRecordsAsJSON: every line tail prints parses as JSON and is
// the record the topic holds (position, key, timestamp, value decoded through
// the registry); the key, time and count filters keep exactly what they say.
func TestTailPrintsRecordsAsJSON(t *testing.T) {
	env := kafkatest.Start(t)
	res := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 30, Months: 3, Seed: 3})
	ctx := context.Background()
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(ctx, res.Files); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing)
	natives := kafkatest.Decode(t, env.Kafka, recs)
	if len(recs) == 0 {
		t.Fatal("nothing ingested")
	}

	// The short name resolves with the prefix.
	lines := runTail(t, env.Kafka, tailCmd{Topic: "billing.v1"})
	// One partition: its first record is the same record in every read
	// below (across partitions the first to arrive is not fixed).
	var raw bytes.Buffer
	if err := (&tailCmd{Topic: "billing.v1", Max: 1, Partitions: []int32{0}}).run(ctx, env.Kafka, &raw, func() {}); err != nil {
		t.Fatal(err)
	}
	// Fields come in the schema's order, dates as ISO dates.
	if !strings.Contains(raw.String(), `"value":{"utility":"`) || !regexp.MustCompile(`"date_to":"\d{4}-\d{2}-\d{2}"`).MatchString(raw.String()) {
		t.Errorf("a billing row is not in schema order with ISO dates: %s", raw.String())
	}
	if len(lines) != len(recs) {
		t.Fatalf("tail printed %d lines, the topic holds %d records", len(lines), len(recs))
	}
	// --format pretty: the same record, indented, fields in schema order.
	var pretty bytes.Buffer
	if err := (&tailCmd{Topic: "billing.v1", Max: 1, Partitions: []int32{0}, Format: "pretty"}).run(ctx, env.Kafka, &pretty, func() {}); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, pretty.Bytes()); err != nil || compact.String()+"\n" != raw.String() || !strings.Contains(pretty.String(), "\n  \"value\": {\n    \"utility\"") {
		t.Errorf("--format pretty is not the JSON line indented (%v):\n%s\n%s", err, pretty.String(), raw.String())
	}
	// --format template: a Go template over the JSON fields.
	var tmpl bytes.Buffer
	if err := (&tailCmd{Topic: "billing.v1", Max: 2, Format: "template", Template: "{{.partition}}/{{.offset}} {{.key}} {{.value.date_to}}"}).run(ctx, env.Kafka, &tmpl, func() {}); err != nil {
		t.Fatal(err)
	}
	if tl := strings.Split(strings.TrimSpace(tmpl.String()), "\n"); len(tl) != 2 || !regexp.MustCompile(`^\d+/\d+ \S+ \d{4}-\d{2}-\d{2}$`).MatchString(tl[0]) {
		t.Errorf("--format template printed:\n%s", tmpl.String())
	}
	if err := (&tailCmd{Topic: "billing.v1", Format: "template"}).run(ctx, env.Kafka, &tmpl, func() {}); err == nil || !strings.Contains(err.Error(), "--template") {
		t.Errorf("--format template without --template: %v", err)
	}
	byPos := map[string]int{}
	for i, r := range recs {
		byPos[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = i
	}
	for _, l := range lines {
		i, ok := byPos[fmt.Sprintf("%d/%d", l.Partition, l.Offset)]
		if !ok {
			t.Fatalf("tail printed %s[%d]@%d, which is no record", l.Topic, l.Partition, l.Offset)
		}
		r := recs[i]
		if l.Topic != env.Topics.Billing || l.Key == nil || *l.Key != string(r.Key) || !l.Timestamp.Equal(r.Timestamp) || l.SchemaID == 0 {
			t.Fatalf("line %+v does not match record key %q at %s", l, r.Key, r.Timestamp)
		}
		if !sameValue(avroJSON(natives[i]), l.Value) {
			t.Fatalf("%s[%d]@%d: tail's value\n%v\ndiffers from the decoded record\n%v", l.Topic, l.Partition, l.Offset, l.Value, natives[i])
		}
		delete(byPos, fmt.Sprintf("%d/%d", l.Partition, l.Offset))
	}

	// --key: exactly that key's records.
	key := string(recs[len(recs)/2].Key)
	want := 0
	for _, r := range recs {
		if string(r.Key) == key {
			want++
		}
	}
	got := runTail(t, env.Kafka, tailCmd{Topic: env.Topics.Billing, Key: []string{key}})
	if len(got) != want {
		t.Errorf("--key %s: %d lines, the topic has %d records with that key", key, len(got), want)
	}
	for _, l := range got {
		if l.Key == nil || *l.Key != key {
			t.Errorf("--key %s printed key %v", key, l.Key)
		}
	}

	// Time filters and start positions.
	if got := runTail(t, env.Kafka, tailCmd{Topic: "billing.v1", Since: time.Now().Add(time.Hour).Format(time.RFC3339)}); len(got) != 0 {
		t.Errorf("--since in the future printed %d lines", len(got))
	}
	if got := runTail(t, env.Kafka, tailCmd{Topic: "billing.v1", Until: "2000-01-01"}); len(got) != 0 {
		t.Errorf("--until 2000-01-01 printed %d lines", len(got))
	}
	if got := runTail(t, env.Kafka, tailCmd{Topic: "billing.v1", Since: "2000-01-01", Until: time.Now().Add(time.Hour).Format(time.RFC3339)}); len(got) != len(recs) {
		t.Errorf("--since 2000 --until an hour ahead printed %d lines, want %d", len(got), len(recs))
	}
	if got := runTail(t, env.Kafka, tailCmd{Topic: "billing.v1", From: "latest"}); len(got) != 0 {
		t.Errorf("--from latest printed %d lines", len(got))
	}
	if got := runTail(t, env.Kafka, tailCmd{Topic: "billing.v1", Max: 3}); len(got) != 3 {
		t.Errorf("--max 3 printed %d lines", len(got))
	}
	var p0 []*kgo.Record
	for _, r := range recs {
		if r.Partition == 0 {
			p0 = append(p0, r)
		}
	}
	if len(p0) > 2 {
		got := runTail(t, env.Kafka, tailCmd{Topic: "billing.v1", Partitions: []int32{0}, From: fmt.Sprint(p0[len(p0)-2].Offset)})
		if len(got) != 2 || got[0].Offset != p0[len(p0)-2].Offset {
			t.Errorf("--partition 0 --from %d: %+v", p0[len(p0)-2].Offset, got)
		}
	}

	// A wrong topic says what was tried.
	var buf bytes.Buffer
	err = (&tailCmd{Topic: "nope.v1"}).run(ctx, env.Kafka, &buf, func() {})
	if err == nil || !strings.Contains(err.Error(), env.Kafka.TopicPrefix+"nope.v1") {
		t.Errorf("unknown topic: %v", err)
	}

	// The binary, as a user runs it: the file events as JSON lines.
	files := kafkatest.ReadAll(t, env.Kafka, env.Topics.Files)
	r := runCLI(t, nil, append([]string{"tail", "files.v1"}, connArgs(env.Kafka)...)...)
	if r.code != 0 {
		t.Fatalf("usagestream tail: exit %d\n%s", r.code, r.stderr)
	}
	out := parseTail(t, r.stdout)
	if len(out) != len(files) {
		t.Fatalf("usagestream tail files.v1 printed %d lines, the topic holds %d", len(out), len(files))
	}
	for _, l := range out {
		if s, _ := l.Value["status"].(string); s == "" {
			t.Errorf("file event without status: %v", l.Value)
		}
	}
}

// TestTailShowsAQuarantinedRecordAsItIs: tail of a quarantine topic prints
// each record with its origin headers and, for a framed value its schema
// cannot read, the raw bytes and why, instead of stopping at the first one.
func TestTailShowsAQuarantinedRecordAsItIs(t *testing.T) {
	env := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := env.Kafka.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	bad := []byte{0, 0, 0, 0, 1, 0xff, 0xff}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: env.Topics.Billing, Key: []byte("SP1"), Value: bad,
		Headers: []kgo.RecordHeader{{Key: "usagestream.source.topic", Value: []byte("x.billing.v1")}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (&tailCmd{Topic: "billing.v1"}).run(ctx, env.Kafka, &buf, func() {}); err != nil {
		t.Fatalf("tail stopped at a record it cannot decode: %v", err)
	}
	var l tailLine
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &l); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !bytes.Equal(l.ValueBase64, bad) || l.ValueError == "" || l.Headers["usagestream.source.topic"] != "x.billing.v1" {
		t.Fatalf("line %s lacks the raw value, the error or the headers", buf.String())
	}
}
