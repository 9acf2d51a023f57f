package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/producers/gen"
)

// TestRunWithInstancesSharesThePartitions: `run --instances 3` runs three
// instances of every stage in one process, each a member of the stage's
// group with a state directory of its own; together they read the whole
// file, and the query API answers for keys of every partition, whichever
// of its instances owns it.
func TestRunWithInstancesSharesThePartitions(t *testing.T) {
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	state := t.TempDir()
	run := startRunEnv(t, hport, []string{"USAGESTREAM_API_TOKEN=tok", "USAGESTREAM_INSTANCES=3"}, "--data-dir", t.TempDir(),
		"--state-dir", state, "--kafka-port", fmt.Sprint(kport), "--registry-port", fmt.Sprint(rport))
	defer run.stop(t)
	files := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 120, Months: 14, Seed: 4})
	conn := []string{"USAGESTREAM_BROKERS=127.0.0.1:" + fmt.Sprint(kport), "USAGESTREAM_REGISTRY=http://127.0.0.1:" + fmt.Sprint(rport)}
	if r := runCLI(t, conn, append([]string{"ingest"}, files.Files...)...); r.code != 0 {
		t.Fatalf("ingest: exit %d\n%s", r.code, r.stderr)
	}

	// Every group has three members, one per instance.
	var st struct {
		Stages []struct {
			Name    string
			Members []struct {
				InstanceID string `json:"instance_id"`
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		r := runCLI(t, conn, "status", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status --json: %v\n%s\n%s", err, r.stdout, r.stderr)
		}
		three := len(st.Stages) == 4
		for _, s := range st.Stages {
			three = three && len(s.Members) == 3
		}
		if three {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not three members in every stage's group: %+v", st.Stages)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for k := 1; k < 3; k++ {
		if _, err := os.Stat(filepath.Join(state, fmt.Sprintf("instance-%d", k), "servicepoint")); err != nil {
			t.Errorf("instance %d has no state directory of its own: %v", k, err)
		}
	}

	// One service point per partition: each answered here, by the instance
	// that owns it.
	seen := map[int32]bool{}
	base := fmt.Sprintf("http://127.0.0.1:%d", hport)
	for _, id := range servicePointIDs(t, files.Files[0]) {
		p := runtime.KeyPartition([]byte(id), 6)
		if seen[p] {
			continue
		}
		for {
			code, _, body := httpGet(base+"/v1/service-points/"+id, "tok")
			if code == http.StatusOK {
				seen[p] = true
				break
			}
			if code != http.StatusNotFound && code != http.StatusServiceUnavailable || time.Now().After(deadline.Add(time.Minute)) {
				t.Fatalf("service point %s (partition %d): %d %s", id, p, code, body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if len(seen) != 6 {
		t.Fatalf("service points found in partitions %v only", seen)
	}
}

// servicePointIDs are the service points of a generated billing file, in
// file order.
func servicePointIDs(t *testing.T, path string) []string {
	t.Helper()
	cols, rows := genRows(t, path)
	var ids []string
	for _, r := range rows {
		if id := r[cols["service_point_id"]]; !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// genRows reads a generated gzip billing file: its columns by name and its
// data rows, split into fields.
func genRows(t *testing.T, path string) (cols map[string]int, rows [][]string) {
	t.Helper()
	sc := bufio.NewScanner(openGzip(t, path))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if cols == nil {
			cols = map[string]int{}
			for i, c := range fields {
				cols[c] = i
			}
			continue
		}
		rows = append(rows, fields)
	}
	if err := sc.Err(); err != nil || cols == nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return cols, rows
}

// openGzip opens a generated .gz file for reading, closed when the test ends.
func openGzip(t *testing.T, path string) io.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return zr
}
