package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/producers/gen"
)

// logLines parses the JSON log lines of s (run's stderr is not a terminal).
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON log line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// TestRunLogsQuietly: an idle run logs nothing; a one-file ingest adds a
// line for the file with its counts and a progress line per stage, none of
// the Kafka client's; a clean stop logs no error; ingest itself prints its
// summary and logs next to nothing.
func TestRunLogsQuietly(t *testing.T) {
	data := t.TempDir()
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	run := startRun(t, hport, "--data-dir", data, "--kafka-port", fmt.Sprint(kport), "--registry-port", fmt.Sprint(rport), "--stage-log-every", "1s")
	defer run.cmd.Process.Kill()
	time.Sleep(2 * time.Second) // the stages join their groups
	started := len(logLines(t, run.se.String()))
	time.Sleep(4 * time.Second)
	idle := logLines(t, run.se.String())[started:]
	if len(idle) > 1 {
		t.Errorf("an idle run logged %d lines in 4 s:\n%v", len(idle), idle)
	}

	files := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 40, Months: 6, Seed: 3, Anomalies: map[gen.Kind]int{"BAD_DATE": 1}})
	conn := []string{"USAGESTREAM_BROKERS=127.0.0.1:" + fmt.Sprint(kport), "USAGESTREAM_REGISTRY=http://127.0.0.1:" + fmt.Sprint(rport)}
	before := len(logLines(t, run.se.String()))
	r := runCLI(t, conn, append([]string{"ingest"}, files.Files...)...)
	if r.code != exitRejected {
		t.Fatalf("ingest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := len(strings.Split(strings.TrimSpace(r.stderr), "\n")); strings.TrimSpace(r.stderr) != "" && n > 2 {
		t.Errorf("ingest of one file logged %d lines:\n%s", n, r.stderr)
	}
	if n := strings.Count(r.stdout, watchName(files.Files[0])); n != 1 {
		t.Errorf("ingest names the file %d times, want once:\n%s", n, r.stdout)
	}
	deadline := time.Now().Add(30 * time.Second)
	var fileLine map[string]any
	progress := map[string]bool{}
	var added []map[string]any
	for time.Now().Before(deadline) && (fileLine == nil || !progress["servicepoint"] || !progress["customer"]) {
		time.Sleep(500 * time.Millisecond)
		added = logLines(t, run.se.String())[before:]
		for _, l := range added {
			switch l["msg"] {
			case "file ingested":
				fileLine = l
			case "stage progress":
				progress[l["stage"].(string)] = true
			}
		}
	}
	if fileLine == nil || fileLine["rows_read"] != float64(files.Rows) || fileLine["rejected"] != float64(1) {
		t.Errorf("no line for the file with its counts (rows_read %d, rejected 1): %v", files.Rows, fileLine)
	}
	if !progress["servicepoint"] || !progress["customer"] {
		t.Errorf("stage progress lines: %v", progress)
	}
	time.Sleep(3 * time.Second) // the stages go idle again
	added = logLines(t, run.se.String())[before:]
	if len(added) > 16 {
		t.Errorf("a one-file ingest added %d lines to run's log, want a handful:\n%v", len(added), added)
	}
	run.stop(t)
	for _, l := range logLines(t, run.se.String()) {
		if l["component"] == "kgo" || l["level"] == "ERROR" || strings.Contains(fmt.Sprint(l), "context canceled") {
			t.Errorf("unwanted line: %v", l)
		}
	}

	// A start after a clean stop, with the state on disk, is as quiet: no
	// line per partition for the marker that ended its last transaction.
	again := startRun(t, hport, "--data-dir", data, "--kafka-port", fmt.Sprint(kport), "--registry-port", fmt.Sprint(rport), "--stage-log-every", "1s")
	defer again.cmd.Process.Kill()
	time.Sleep(3 * time.Second)
	lines := logLines(t, again.se.String())
	again.stop(t)
	restores := 0
	for _, l := range lines {
		if l["msg"] == "restoring partition from the changelog" || l["msg"] == "partition restored" {
			restores++
		}
	}
	if restores > 0 || len(lines) > 16 {
		t.Errorf("a start after a clean stop logged %d lines, %d of them about restoring partitions:\n%v", len(lines), restores, lines)
	}
}

func watchName(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// TestLogLevelsAreIndependent: --log-level sets usagestream's lines only,
// --kafka-log-level the Kafka client's, on the same output.
func TestLogLevelsAreIndependent(t *testing.T) {
	for _, tc := range []struct {
		app, client string
		want, not   []string
	}{
		{"info", "", []string{"app info"}, []string{"client info"}},
		{"warn", "info", []string{"app warn", "client info"}, []string{"app info"}},
		{"info", "none", []string{"app info"}, []string{"client warn"}},
	} {
		var buf bytes.Buffer
		log := newLoggerTo(&buf, tc.app, true)
		kc := kafkaconf.Config{KafkaLogLevel: tc.client}
		cl := kc.ClientLogger(log)
		log.Info("app info")
		log.Warn("app warn")
		cl.Log(kgo.LogLevelInfo, "client info")
		cl.Log(kgo.LogLevelWarn, "client warn")
		out := buf.String()
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("--log-level %s --kafka-log-level %q: %q missing:\n%s", tc.app, tc.client, w, out)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("--log-level %s --kafka-log-level %q: %q logged:\n%s", tc.app, tc.client, n, out)
			}
		}
		if tc.client == "" && !strings.Contains(out, "client warn") {
			t.Errorf("the client's warnings are logged by default:\n%s", out)
		}
	}
}
