package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/producers/gen"
)

// TestRunWritesACPUProfile: `run --cpuprofile FILE` writes, when it stops,
// a CPU profile that pprof reads and that splits the stages' CPU by the
// label stage=<name> (docs/performance.md).
func TestRunWritesACPUProfile(t *testing.T) {
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	run := startRunEnv(t, hport, []string{"USAGESTREAM_CPUPROFILE=" + prof}, "--data-dir", t.TempDir(), "--kafka-port", fmt.Sprint(kport),
		"--registry-port", fmt.Sprint(rport))
	files := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 2000, Months: 14, Seed: 3})
	conn := []string{"USAGESTREAM_BROKERS=127.0.0.1:" + fmt.Sprint(kport), "USAGESTREAM_REGISTRY=http://127.0.0.1:" + fmt.Sprint(rport)}
	if r := runCLI(t, conn, append([]string{"ingest"}, files.Files...)...); r.code != 0 {
		run.stop(t)
		t.Fatalf("ingest: exit %d\n%s", r.code, r.stderr)
	}
	// Until the servicepoint stage has read every row.
	in := regexp.MustCompile(`usagestream_processor_records_in_total\{processor="servicepoint",topic="[^"]*billing.v1"\} (\S+)`)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, _, body := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", hport), "")
		if m := in.FindSubmatch(body); m != nil {
			if n, _ := strconv.ParseFloat(string(m[1]), 64); n >= float64(files.Rows) {
				break
			}
		}
		if time.Now().After(deadline) {
			run.stop(t)
			t.Fatal("the servicepoint stage did not read the file")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := os.Stat(prof); err != nil {
		t.Fatalf("the profile file is not there while run runs: %v", err)
	}
	run.stop(t)
	out, err := exec.Command("go", "tool", "pprof", "-tags", binary, prof).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -tags: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "stage:") || !strings.Contains(string(out), "servicepoint") {
		t.Fatalf("the profile has no stage=servicepoint label:\n%s", out)
	}
}
