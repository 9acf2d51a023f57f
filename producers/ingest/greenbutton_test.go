package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

func greenButtonDoc(t *testing.T, sps int) (cfg gen.IntervalConfig, doc string, reads int64) {
	t.Helper()
	cfg = gen.IntervalConfig{ServicePoints: sps, Days: 1, Minutes: 15, Seed: 3, Location: time.UTC, Start: dates.MustParse("20240601"),
		Now: time.Date(2024, 6, 3, 0, 0, 0, 0, time.UTC), Compression: "none"}
	var b bytes.Buffer
	n, err := gen.WriteGreenButton(&b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, b.String(), n
}

// TestGreenButtonResumeAfterCrash: a Green Button file written on a single
// line (every IntervalReading on line 1) killed inside an open transaction
// resumes after the last committed reading, not after a line: every reading
// lands exactly once.
func TestGreenButtonResumeAfterCrash(t *testing.T) {
	env := kafkatest.Start(t)
	cfg, doc, n := greenButtonDoc(t, 10)
	doc = strings.ReplaceAll(doc, "\n", "")
	path := filepath.Join(t.TempDir(), gen.GreenButtonFileName(cfg))
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
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
	if r := res[0]; r.Status != Completed || r.ResumedFrom == 0 || r.Read != n || r.Published != n || r.Rejected != 0 || r.Layout != records.LayoutInterval {
		t.Fatalf("resumed %+v, want %d reads", r, n)
	}
	seen := map[string]int{}
	for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals)) {
		rd, _, err := interval.FromNative(m)
		if err != nil {
			t.Fatal(err)
		}
		if rd.Line != 1 {
			t.Fatalf("read on line %d, the file has one line", rd.Line)
		}
		seen[fmt.Sprint(rd.ServicePointID, rd.EndMillis)]++
	}
	if int64(len(seen)) != n {
		t.Fatalf("%d distinct reads published, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("read %s published %d times", k, c)
		}
	}
}

// TestGreenButtonPartialUpload: a Green Button file cut short fails with a
// FAILED event that names the line and says it is a partial upload; the
// readings before the cut are published and the counts reconcile.
func TestGreenButtonPartialUpload(t *testing.T) {
	env := kafkatest.Start(t)
	cfg, doc, _ := greenButtonDoc(t, 2)
	cut := doc[:len(doc)*3/4]
	path := filepath.Join(t.TempDir(), gen.GreenButtonFileName(cfg))
	if err := os.WriteFile(path, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := newIngester(t, env, nil).Run(context.Background(), []string{path})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Status != Failed || r.Err == nil || !strings.Contains(r.Err.Error(), "partial upload") || !strings.Contains(r.Err.Error(), ", line ") ||
		r.Published == 0 || r.Read != r.Published+r.Rejected {
		t.Fatalf("result %+v", r)
	}
	if got := int64(len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals))); got != r.Published {
		t.Fatalf("%d reads on the topic, %d published", got, r.Published)
	}
	var events []string
	for _, e := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Files)) {
		events = append(events, fmt.Sprintf("%s:%s", e["status"], e["layout"]))
	}
	if got := strings.Join(events, " "); got != "RECEIVED:interval FAILED:interval" {
		t.Fatalf("file events %s", got)
	}
}
