package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

func writeIntervalGz(t *testing.T, dir, name string, lines []string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(strings.Join(records.IntervalColumns(), "\t") + "\n" + strings.Join(lines, "\n") + "\n"))
	zw.Close()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestIngestIntervalFile: an interval file goes through the same ingest as
// billing files (dispatch on the name's kind): reads to the interval topic,
// bad rows to the rejected topic with file, line and field, file events whose
// counts reconcile, and the same bytes again publish nothing.
func TestIngestIntervalFile(t *testing.T) {
	env := kafkatest.Start(t)
	lines := []string{
		"SP1\t0.5\t20241103\t0100\tKWH\tA\t-0400\tE\t",
		"SP1\t0.6\t20241103\t0100\tKWH\tA\t-0500\tE\t", // the repeated hour
		"SP1\t0.7\t20241103\t0130\tKWH\tA\t-0500\tE\t", // off the hourly grid
		"SP2\tx\t20241103\t2460\tKWH\tA\t-0500\tE\t",   // two faults
		"SP2\t1.5\t20241103\t0200\tKWH\t\t-0500\tE\tGENERATED",
	}
	path := writeIntervalGz(t, t.TempDir(), "opwr_gec_res_v1-19-0_interval60_20241104000000.gz", lines)
	res, err := newIngester(t, env, nil).Run(context.Background(), []string{path})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Status != Completed || r.Layout != records.LayoutInterval || r.Read != 5 || r.Published != 3 || r.Rejected != 2 ||
		r.ByCode[records.CodeOffGrid] != 1 || r.ByCode[records.CodeBadTime] != 1 || r.ByCode["BAD_NUMBER"] != 1 {
		t.Fatalf("result %+v", r)
	}
	reads := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals))
	if len(reads) != 3 {
		t.Fatalf("%d reads, want 3", len(reads))
	}
	var ends []string
	for _, m := range reads {
		rd, o, err := interval.FromNative(m)
		if err != nil {
			t.Fatal(err)
		}
		if o.Utility != "gec" || o.Kind != interval.OriginFile || o.Name != filepath.Base(path) || o.SHA256 != r.SHA256 {
			t.Fatalf("origin %+v", o)
		}
		ends = append(ends, fmt.Sprintf("%s:%d:%s", rd.ServicePointID, rd.Line, time.UnixMilli(rd.EndMillis).UTC().Format("15:04")))
	}
	slices.Sort(ends) // the service points may sit on different partitions, read in any order
	if got := strings.Join(ends, " "); got != "SP1:2:05:00 SP1:3:06:00 SP2:6:07:00" {
		t.Fatalf("reads %s", got)
	}
	rejected := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Rejected))
	if len(rejected) != 2 {
		t.Fatalf("%d rejected", len(rejected))
	}
	// The two rows' service points may sit on different partitions, read
	// in any order: the off-grid one is line 4.
	first := rejected[0]
	if first["source"].(map[string]any)["line"] != int64(4) {
		first = rejected[1]
	}
	reason := first["reasons"].([]any)[0].(map[string]any)
	if first["layout"] != "interval" || first["source"].(map[string]any)["line"] != int64(4) ||
		reason["code"] != records.CodeOffGrid || reason["field"].(map[string]any)["string"] != "time" || reason["rule"] != "I1" {
		t.Fatalf("rejected row %v", first)
	}
	var events []string
	for _, e := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Files)) {
		events = append(events, fmt.Sprintf("%s:%s:%d=%d+%d", e["status"], e["layout"], e["rows_read"], e["rows_published"], e["rows_rejected"]))
	}
	if got := strings.Join(events, " "); got != "RECEIVED:interval:0=0+0 COMPLETED:interval:5=3+2" {
		t.Fatalf("file events %s", got)
	}
	again, err := newIngester(t, env, nil).Run(context.Background(), []string{path})
	if err != nil || again[0].Status != Skipped {
		t.Fatalf("second run %+v %v", again, err)
	}
}

// TestIntervalResumeAfterCrash: an interval ingest killed inside an open
// transaction resumes after the last commit; every line lands exactly once.
func TestIntervalResumeAfterCrash(t *testing.T) {
	env := kafkatest.Start(t)
	var lines []string
	for sp := 0; sp < 10; sp++ {
		for q := 1; q <= 96; q++ {
			m := q * 15 % 1440
			date := "20240601"
			if m == 0 {
				date = "20240602"
			}
			lines = append(lines, fmt.Sprintf("SP%02d\t0.%d\t%s\t%02d%02d\tKWH\tA\t-0400\tE\t", sp, q, date, m/60, m%60))
		}
	}
	lines[150] = "SP01\t1\t20240601\t0007\tKWH\tA\t-0400\tE\t"
	path := writeIntervalGz(t, t.TempDir(), "opwr_gec_res_v1-19-0_interval15_20240602000000.gz", lines)
	commits := 0
	_, err := newIngester(t, env, func(c *Config) {
		c.ChunkRows = 100
		c.beforeCommit = func(int64) error {
			if commits++; commits == 4 {
				return errCrash
			}
			return nil
		}
	}).Run(context.Background(), []string{path})
	if !errors.Is(err, errCrash) {
		t.Fatalf("want the simulated crash, got %v", err)
	}
	res, err := newIngester(t, env, func(c *Config) { c.ChunkRows = 100 }).Run(context.Background(), []string{path})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; r.ResumedFrom == 0 || r.Read != 960 || r.Published != 959 || r.Rejected != 1 {
		t.Fatalf("resumed %+v", r)
	}
	seen := map[int64]int{}
	for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals)) {
		rd, _, err := interval.FromNative(m)
		if err != nil {
			t.Fatal(err)
		}
		seen[rd.Line]++
	}
	for line := int64(2); line <= 961; line++ {
		if want := map[bool]int{true: 0, false: 1}[line == 152]; seen[line] != want {
			t.Fatalf("line %d published %d times, want %d", line, seen[line], want)
		}
	}
}
