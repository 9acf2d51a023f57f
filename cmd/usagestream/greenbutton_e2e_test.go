package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/interval"
)

// TestGreenButtonThroughIngest, as a user: `gen --format greenbutton`
// writes a Green Button file over the end of daylight saving time; one
// reading's value is broken; `ingest` publishes every other reading to the
// interval topic, rejects that one naming its file, XML line and element,
// leaves file events whose counts reconcile, and publishes nothing the
// second time.
func TestGreenButtonThroughIngest(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	r := runCLI(t, nil, "gen", "-o", dir, "--interval", "15", "--format", "greenbutton", "--compression", "none", "--service-points", "3",
		"--days", "2", "--start", "20241102", "--now", "20241105", "--tz", "America/New_York")
	file := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasSuffix(file, ".xml") {
		t.Fatalf("gen: %d %q %s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	const reads = 3 * (96 + 100) // the 3rd of November has 25 hours
	if n := strings.Count(doc, "<IntervalReading>"); n != reads {
		t.Fatalf("%d IntervalReadings, want %d", n, reads)
	}
	// Break the value of the 200th reading and note its line.
	i := 0
	for k := 0; k < 200; k++ {
		i += strings.Index(doc[i:], "<IntervalReading>") + 1
	}
	badLine := int64(strings.Count(doc[:i], "\n") + 1)
	v := i + strings.Index(doc[i:], "<value>") + len("<value>")
	doc = doc[:v] + "12x" + doc[v+strings.Index(doc[v:], "<"):]
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(doc))
	zw.Close()
	gz := filepath.Join(dir, filepath.Base(file)+".gz")
	if err := os.WriteFile(gz, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	args := append(append([]string{"ingest", "--progress", "never", "--interval-tz", "America/New_York"}, connArgs(env.Kafka)...), gz)
	r = runCLI(t, nil, args...)
	if r.code != exitRejected || !strings.Contains(r.stdout, fmt.Sprintf("rows read %d = published %d + rejected 1", reads, reads-1)) {
		t.Fatalf("ingest: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	published := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals))
	if len(published) != reads-1 {
		t.Fatalf("%d reads on the interval topic, want %d", len(published), reads-1)
	}
	offsets := map[int16]int{}
	for _, m := range published {
		rd, o, err := interval.FromNative(m)
		if err != nil {
			t.Fatal(err)
		}
		if o.Name != filepath.Base(gz) || o.Utility != "gec" || rd.Units != "KWH" || rd.Minutes != 15 || !strings.HasPrefix(rd.ServicePointID, "SP-E-0000000") {
			t.Fatalf("read %+v from %+v", rd, o)
		}
		offsets[rd.OffsetMinutes]++
	}
	if offsets[-240] == 0 || offsets[-300] == 0 {
		t.Fatalf("offsets %v: the file spans the end of daylight saving time", offsets)
	}
	rejected := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Rejected))
	if len(rejected) != 1 {
		t.Fatalf("%d rejected, want 1", len(rejected))
	}
	src := rejected[0]["source"].(map[string]any)
	reason := rejected[0]["reasons"].([]any)[0].(map[string]any)
	if src["line"] != badLine || src["file"] != filepath.Base(gz) || rejected[0]["layout"] != "interval" ||
		reason["field"].(map[string]any)["string"] != "value" || reason["code"] != "BAD_NUMBER" {
		t.Fatalf("rejected %v, want line %d, field value", rejected[0], badLine)
	}
	var events []string
	for _, e := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Files)) {
		events = append(events, fmt.Sprintf("%s:%s:%d=%d+%d", e["status"], e["layout"], e["rows_read"], e["rows_published"], e["rows_rejected"]))
	}
	if got, want := strings.Join(events, " "), fmt.Sprintf("RECEIVED:interval:0=0+0 COMPLETED:interval:%d=%d+1", reads, reads-1); got != want {
		t.Fatalf("file events %s, want %s", got, want)
	}
	r = runCLI(t, nil, args...)
	if r.code == exitFailed || !strings.Contains(r.stdout, "nothing published") {
		t.Fatalf("second ingest: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals)); n != reads-1 {
		t.Fatalf("after the second ingest %d reads, want %d", n, reads-1)
	}
}
