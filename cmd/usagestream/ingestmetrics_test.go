package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
)

// TestWatchServesIngestMetrics: `ingest --watch --metrics-addr` serves
// Prometheus metrics that count the files and rows it ingested, and they
// reconcile (read = published + rejected).
func TestWatchServesIngestMetrics(t *testing.T) {
	env := kafkatest.Start(t)
	drop := t.TempDir()
	files := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 40, Months: 6, Seed: 4, Anomalies: map[gen.Kind]int{"BAD_DATE": 2}})
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var se bytes.Buffer
	cmd := exec.Command(binary, append([]string{"ingest", "--watch", drop, "--poll", "200ms", "--settle", "400ms", "--metrics-addr", addr}, connArgs(env.Kafka)...)...)
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	scrape := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(scrape(), `usagestream_ingest_files_total{status="completed"} 0`) {
		if time.Now().After(deadline) {
			t.Fatalf("no metrics on %s:\n%s", addr, se.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, f := range files.Files {
		if err := os.Rename(f, filepath.Join(drop, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
	var m string
	for {
		m = scrape()
		if strings.Contains(m, fmt.Sprintf(`usagestream_ingest_files_total{status="completed"} %d`, len(files.Files))) {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("the files were not counted:\n%s\n%s", grepLines(m, "usagestream_ingest"), se.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{
		fmt.Sprintf(`usagestream_ingest_rows_total{outcome="read"} %d`, files.Rows),
		fmt.Sprintf(`usagestream_ingest_rows_total{outcome="published"} %d`, files.Rows-2),
		`usagestream_ingest_rows_total{outcome="rejected"} 2`,
		`usagestream_ingest_files_total{status="failed"} 0`,
		fmt.Sprintf(`usagestream_ingest_file_seconds_count %d`, len(files.Files)),
		`usagestream_ingest_retries_total 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(m, "usagestream_ingest"))
		}
	}
	if strings.Contains(m, "usagestream_ingest_last_file_timestamp_seconds 0\n") {
		t.Error("the last file's time was not set")
	}
}
