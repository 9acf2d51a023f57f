package jsonl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
)

func events(topic string, partition int32, from, to int) []sink.Event {
	var out []sink.Event
	for o := from; o < to; o++ {
		v := fmt.Sprintf(`{"event_id":"e-%d","pad":"%s"}`, o, strings.Repeat("x", o%50))
		out = append(out, sink.Event{Topic: topic, Partition: partition, Offset: int64(o), Key: []byte("k"), Timestamp: time.Unix(int64(o), 0), SchemaID: 1, JSON: []byte(v)})
	}
	return out
}

type fileLine struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
}

// readAll reads every file of dir: lines per topic/partition in file order,
// and the names of the files, finished or not.
func readAll(t *testing.T, dir string) (map[string][]fileLine, []string) {
	t.Helper()
	lines := map[string][]fileLine{}
	var names []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names) // offsets are zero-padded: name order is offset order
	for _, path := range names {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		first := true
		for sc.Scan() {
			var l fileLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%s: a line that is not JSON: %q", path, sc.Text())
			}
			if first && !strings.Contains(filepath.Base(path), fmt.Sprintf("-%020d.jsonl", l.Offset)) {
				t.Fatalf("%s: named after another offset than its first line's (%d)", path, l.Offset)
			}
			first = false
			k := fmt.Sprintf("%s/%d", l.Topic, l.Partition)
			lines[k] = append(lines[k], l)
		}
		f.Close()
	}
	return lines, names
}

// exactlyOnce checks that the lines of key hold offsets from..to-1 once each, in order.
func exactlyOnce(t *testing.T, lines map[string][]fileLine, key string, from, to int) {
	t.Helper()
	ls := lines[key]
	if len(ls) != to-from {
		t.Fatalf("%s: %d lines, want %d", key, len(ls), to-from)
	}
	for i, l := range ls {
		if l.Offset != int64(from+i) {
			t.Fatalf("%s: line %d has offset %d, want %d", key, i, l.Offset, from+i)
		}
	}
}

func TestRotationBySize(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, MaxBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 300; i += 37 {
		if err := s.Write(ctx, append(events("a", 0, i, min(i+37, 300)), events("a", 1, i, min(i+37, 300))...)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lines, names := readAll(t, dir)
	exactlyOnce(t, lines, "a/0", 0, 300)
	exactlyOnce(t, lines, "a/1", 0, 300)
	if len(names) < 20 {
		t.Fatalf("%d files for ~60 KB at 2000 bytes each", len(names))
	}
	for _, n := range names {
		st, _ := os.Stat(n)
		if strings.HasSuffix(n, ".part") {
			t.Fatalf("%s: a stop must finish every file", n)
		}
		if st.Size() > 2000 {
			t.Fatalf("%s: %d bytes, over the 2000 limit", n, st.Size())
		}
	}
}

func TestRotationByAge(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, events("a", 0, 0, 10)); err != nil {
		t.Fatal(err)
	}
	_ = s.Tick(ctx, time.Now().Add(30*time.Minute))
	if _, names := readAll(t, dir); len(names) != 1 || !strings.HasSuffix(names[0], ".part") {
		t.Fatalf("before the age limit: want one .part file, got %v", names)
	}
	if err := s.Tick(ctx, time.Now().Add(61*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, names := readAll(t, dir); len(names) != 1 || !strings.HasSuffix(names[0], "-00000000000000000000.jsonl") {
		t.Fatalf("after the age limit: want one finished file, got %v", names)
	}
	if err := s.Write(ctx, events("a", 0, 10, 15)); err != nil {
		t.Fatal(err)
	}
	lines, names := readAll(t, dir)
	if len(names) != 2 || !strings.HasSuffix(names[1], "-00000000000000000010.jsonl.part") {
		t.Fatalf("new events after a rotation go to a new file named after offset 10: %v", names)
	}
	exactlyOnce(t, lines, "a/0", 0, 15)
}

// TestCrashCutsHalfLineAndSkipsRedelivered: a sink that died while writing
// leaves half a line; the next one cuts it, and events Kafka delivers again
// are written once.
func TestCrashCutsHalfLineAndSkipsRedelivered(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, events("a", 0, 0, 100)); err != nil {
		t.Fatal(err)
	}
	// The crash: no Close, and the start of a line that never ended.
	_, names := readAll(t, dir)
	f, err := os.OpenFile(names[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"topic":"a","partition":0,"offset":100,"key":"k","val`)
	f.Close()

	m := NewMetrics(nil)
	s2, err := Open(Config{Dir: dir, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	// Kafka delivers again from the last committed offset (50 here).
	if err := s2.Write(ctx, events("a", 0, 50, 150)); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	lines, _ := readAll(t, dir)
	exactlyOnce(t, lines, "a/0", 0, 150)
	if r, d := testutil.ToFloat64(m.repaired), testutil.ToFloat64(m.skipped); r != 1 || d != 50 {
		t.Fatalf("repaired %v files (want 1), skipped %v events (want 50)", r, d)
	}

	// A third start after a clean stop: the newest finished file tells
	// where the partition ends.
	s3, _ := Open(Config{Dir: dir})
	if err := s3.Write(ctx, events("a", 0, 140, 160)); err != nil {
		t.Fatal(err)
	}
	s3.Close()
	lines, _ = readAll(t, dir)
	exactlyOnce(t, lines, "a/0", 0, 160)
}

func TestOpenRefusesAnUnwritableDirectory(t *testing.T) {
	if os.Getuid() == 0 {
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o644)
		if _, err := Open(Config{Dir: filepath.Join(f, "sub")}); err == nil {
			t.Fatal("a directory under a file must be refused")
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o555)
	if _, err := Open(Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("want 'not writable', got %v", err)
	}
}

// TestThroughKafka: events from the topics become one line each, with the
// JSON of the value (fields in the schema's order: event_id first).
func TestThroughKafka(t *testing.T) {
	env := kafkatest.Start(t)
	evs := sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 4), 3000)
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, MaxBytes: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sink.Run(ctx, sink.Config{Name: "jsonl", Kafka: env.Kafka, Format: sink.JSON, MaxBatch: 400}, s)
	}()
	for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
		kafkatest.WaitCaughtUp(t, env.Kafka, sink.GroupFor(env.Kafka.TopicPrefix, "jsonl"), topic, 2*time.Minute)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lines, _ := readAll(t, dir)
	seen := map[string]int{}
	for _, ls := range lines {
		for i, l := range ls {
			if i > 0 && l.Offset <= ls[i-1].Offset {
				t.Fatalf("%s/%d: offsets out of order", l.Topic, l.Partition)
			}
			var v struct {
				EventID string `json:"event_id"`
			}
			if err := json.Unmarshal(l.Value, &v); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(l.Value), `{"event_id":"`) {
				t.Fatalf("%s: a value not in schema order: %s", l.Topic, l.Value)
			}
			seen[l.Topic+" "+v.EventID]++
		}
	}
	for _, e := range evs {
		if seen[e.Topic+" "+e.EventID] != 1 {
			t.Fatalf("%s %s: %d lines, want 1", e.Topic, e.EventID, seen[e.Topic+" "+e.EventID])
		}
	}
	if len(seen) != len(evs) {
		t.Fatalf("%d distinct events in the files, %d produced", len(seen), len(evs))
	}
}

// replayed are events at new offsets [from, to) whose event ids are those of
// offsets [idFrom, ...): a replay into the live topics emits them again.
func replayed(topic string, partition int32, from, to, idFrom int) []sink.Event {
	evs := events(topic, partition, from, to)
	for i := range evs {
		evs[i].JSON = []byte(fmt.Sprintf(`{"event_id":"e-%d","pad":"replayed"}`, idFrom+i))
	}
	return evs
}

// TestReplayedEventsAreDroppedByEventID: an event whose event_id is already
// in its partition's files is not written again, in the same run and after
// a restart; events with new ids are written.
func TestReplayedEventsAreDroppedByEventID(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	m := NewMetrics(nil)
	s, err := Open(Config{Dir: dir, Metrics: m, MaxBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, events("a", 0, 0, 50)); err != nil {
		t.Fatal(err)
	}
	// The replay: ids 0-49 again at offsets 50-99, then new ids 50-59.
	if err := s.Write(ctx, replayed("a", 0, 50, 100, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, replayed("a", 0, 100, 110, 50)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	lines, _ := readAll(t, dir)
	if n := len(lines["a/0"]); n != 60 {
		t.Fatalf("%d lines after a replay, want the 60 distinct events", n)
	}
	if d := testutil.ToFloat64(m.skipped); d != 50 {
		t.Fatalf("skipped %v, want 50", d)
	}

	// After a restart the ids are read back from the files (several, the
	// size limit rotated them): a second replay writes nothing.
	s2, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Write(ctx, replayed("a", 0, 110, 170, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s2.Write(ctx, replayed("a", 0, 170, 171, 1000)); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	lines, names := readAll(t, dir)
	if n := len(lines["a/0"]); n != 61 || len(names) < 3 {
		t.Fatalf("%d lines in %d files after a restart and a second replay, want 61 in several", n, len(names))
	}
	seen := map[string]bool{}
	for _, l := range lines["a/0"] {
		var v struct {
			EventID string `json:"event_id"`
		}
		json.Unmarshal(l.Value, &v)
		if seen[v.EventID] {
			t.Fatalf("event %s twice", v.EventID)
		}
		seen[v.EventID] = true
	}
}
