package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/producers/interval"
)

// TestPythonAdapterExample (issue 19): the example adapter in Python
// (examples/python-mdms, standard library only) posts an MDMS CSV export
// through POST /v1/intervals of `usagestream run` on the embedded broker.
// The 96 good reads, given by UTC instants, are on intervals.v1 with local
// times of the utility's zone; the two refused rows are named with their
// CSV line and on rejected.v1 with the endpoint's origin; another method
// than POST is 405.
func TestPythonAdapterExample(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	kc := kafkaconf.Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", kport)}, Registry: fmt.Sprintf("http://127.0.0.1:%d", rport), TopicPrefix: "usagestream."}
	args := []string{"--no-process", "--data-dir", t.TempDir(), "--kafka-port", fmt.Sprint(kport),
		"--registry-port", fmt.Sprint(rport), "--intervals-utility", "gec", "--intervals-tz", "America/New_York"}
	// In the real-Kafka lane (scripts/test.d/60-realkafka.sh): Apache Kafka
	// and Apicurio, under a topic prefix of this test's own.
	if b := os.Getenv("USAGESTREAM_TEST_BROKERS"); b != "" {
		kc = kafkaconf.Config{Brokers: strings.Split(b, ","), Registry: os.Getenv("USAGESTREAM_TEST_REGISTRY"), TopicPrefix: fmt.Sprintf("pyadapter%d.", time.Now().UnixNano())}
		args = append(args, "--brokers", b, "--registry", kc.Registry, "--topic-prefix", kc.TopicPrefix)
	}
	run := startRunEnv(t, hport, []string{"USAGESTREAM_API_TOKEN=tok"}, args...)
	defer run.stop(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", hport)
	resp, err := http.Get(base + "/v1/intervals")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET /v1/intervals: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	dir := filepath.Join("..", "..", "examples", "python-mdms")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	p := exec.CommandContext(ctx, py, filepath.Join(dir, "post_intervals.py"), "--url", base+"/v1/intervals", "--batch", "40", filepath.Join(dir, "export.csv"))
	p.Env = append(p.Environ(), "USAGESTREAM_API_TOKEN=tok")
	p.Stdout, p.Stderr = &out, &errOut
	err = p.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("the adapter: %v (want exit 3)\n%s\n%s", err, out.String(), errOut.String())
	}
	if out.String() != "reads 98 = accepted 96 + rejected 2\n" ||
		!strings.Contains(errOut.String(), "export.csv line 98: rejected: time OFF_GRID") ||
		!strings.Contains(errOut.String(), "export.csv line 99: rejected: value BAD_JSON: value is a string; it must be a number") {
		t.Fatalf("the adapter printed\n%s\n%s", out.String(), errOut.String())
	}

	names := topics.NewNames(kc.TopicPrefix)
	reads := kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, names.Intervals))
	if len(reads) != 96 {
		t.Fatalf("%d reads on %s, want 96", len(reads), names.Intervals)
	}
	first, o, err := interval.FromNative(reads[0])
	if err != nil {
		t.Fatal(err)
	}
	if o.Kind != interval.OriginHTTP || first.ServicePointID != "MTR-0001" || first.LocalDate.ISO() != "2024-06-01" || first.LocalTime != 15 || first.OffsetMinutes != -240 ||
		first.EndMillis != time.Date(2024, 6, 1, 4, 15, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("first read %+v from %+v: want 2024-06-01 00:15 -0400 (04:15Z in New York)", first, o)
	}
	var rejected []string
	for _, m := range kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, names.Rejected)) {
		src := m["source"].(map[string]any)
		rejected = append(rejected, fmt.Sprintf("%v:%v:%v", src["file"], src["line"], m["reasons"].([]any)[0].(map[string]any)["code"]))
	}
	sort.Strings(rejected)
	// The body lines of the third POST (rows 81..98 of 40 a batch: lines 17 and 18).
	if strings.Join(rejected, " ") != "http:http:17:OFF_GRID http:http:18:BAD_JSON" {
		t.Fatalf("rejected.v1 holds %v", rejected)
	}
}
