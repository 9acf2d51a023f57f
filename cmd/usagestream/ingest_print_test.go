package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/ingest"
)

// TestWatchPrintsEachFileOnce: a failed file of the drop folder is reported
// once (its summary), not as a warning and again as a summary.
func TestWatchPrintsEachFileOnce(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	drop := t.TempDir()
	var logs, out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h := watchHandler(&Globals{log: log}, in, nil, &out)
	for _, f := range []struct{ name, text string }{
		{"billing export (march).tsv", string(billingText(3))},                        // misnamed
		{"opwr_gec_res_v1-19-0_full_20250101000000.tsv", "customer_id\tpremise_id\n"}, // short header
	} {
		logs.Reset()
		out.Reset()
		p := filepath.Join(drop, f.name)
		if err := os.WriteFile(p, []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
		h(ctx, p)
		if strings.Contains(logs.String(), f.name) {
			t.Errorf("%s is logged besides its summary:\n%s", f.name, logs.String())
		}
		if n := strings.Count(out.String(), ": failed ("); n != 1 {
			t.Errorf("%d summaries of %s, want one:\n%s", n, f.name, out.String())
		}
		if strings.Contains(out.String(), "( layout") {
			t.Errorf("summary of %s:\n%s", f.name, out.String())
		}
	}
}

// TestProgressShowsARealRate: the first report comes after a whole batch;
// no rate is shown until rows were counted for half a second, and then it
// is the rows since the first report over the time since; the bar ends at
// 100%.
func TestProgressShowsARealRate(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	p := &progress{w: &bytes.Buffer{}, now: func() time.Time { return now }}
	u := ingest.Progress{File: "f.gz", Rows: 2150, Bytes: 0, Size: 1000}
	p.update(u)
	if d := p.describe(u); strings.Contains(d, "rows/s") {
		t.Fatalf("a rate after one batch: %q", d)
	}
	now = now.Add(2 * time.Second)
	u.Rows, u.Bytes = 4150, 600
	p.update(u)
	if d := p.describe(u); !strings.Contains(d, " 1000 rows/s") {
		t.Fatalf("want 2000 rows in 2 s, got %q", d)
	}
	if got := p.bar.State().CurrentPercent; got != 0.6 {
		t.Fatalf("600 of 1000 bytes: %v", got)
	}
	bar := p.bar
	p.done()
	if got := bar.State().CurrentPercent; got != 1 {
		t.Fatalf("the finished bar is at %v", got)
	}
	// A file whose first report comes with a third of it read shows 33%
	// from its first drawing, not 0%.
	var out bytes.Buffer
	q := &progress{w: &out, now: time.Now}
	q.update(ingest.Progress{File: "g.gz", Rows: 3000, Bytes: 333, Size: 1000})
	if !strings.Contains(out.String(), " 33%") || strings.Contains(out.String(), " 0%") || !strings.Contains(out.String(), "g.gz 3000 rows") {
		t.Fatalf("first drawing: %q", out.String())
	}
}
