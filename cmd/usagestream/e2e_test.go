package main

// End-to-end tests of the binary as a user runs it: real processes, real
// signals, the embedded broker over TCP.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "usagestream-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "usagestream")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the binary: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, so.String(), se.String()}
}

func connArgs(kc kafkaconf.Config) []string {
	return []string{"--brokers", strings.Join(kc.Brokers, ","), "--registry", kc.Registry, "--topic-prefix", kc.TopicPrefix}
}

func genFiles(t *testing.T, dir string, cfg gen.Config) gen.Result {
	t.Helper()
	if cfg.Now.IsZero() {
		cfg.Now = time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
	}
	res, err := gen.Generate(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestRunServesTheDefaultAndIngestFindsIt: `usagestream run` with no brokers
// is the embedded default; `ingest` reaches it; data survives a restart.
// runProc is `usagestream run` started as users start it, with its stderr.
type runProc struct {
	cmd *exec.Cmd
	se  *bytes.Buffer
}

// startRun starts run and waits until /readyz answers on hport.
func startRun(t *testing.T, hport int, args ...string) runProc {
	t.Helper()
	return startRunEnv(t, hport, nil, args...)
}

// startRunEnv is startRun with env added to the process's environment.
func startRunEnv(t *testing.T, hport int, env []string, args ...string) runProc {
	t.Helper()
	se := &bytes.Buffer{}
	cmd := exec.Command(binary, append([]string{"run", "--http-addr", fmt.Sprintf("127.0.0.1:%d", hport)}, args...)...)
	cmd.Env = append(cmd.Environ(), env...)
	cmd.Stderr = se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", hport))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return runProc{cmd, se}
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("run did not become ready: %s", se.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and wants a clean exit.
func (r runProc) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run did not stop cleanly on SIGTERM: %v\n%s", err, r.se.String())
		}
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		t.Fatal("run did not stop on SIGTERM")
	}
}

func TestRunServesTheDefaultAndIngestFindsIt(t *testing.T) {
	data := t.TempDir()
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	start := func() runProc {
		return startRun(t, hport, "--data-dir", data, "--kafka-port", fmt.Sprint(kport), "--registry-port", fmt.Sprint(rport))
	}
	stop := func(r runProc) { r.stop(t) }
	run := start()
	files := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 50, Months: 8, Seed: 5, Anomalies: map[gen.Kind]int{"BAD_DATE": 1}})
	conn := []string{"USAGESTREAM_BROKERS=127.0.0.1:" + fmt.Sprint(kport), "USAGESTREAM_REGISTRY=http://127.0.0.1:" + fmt.Sprint(rport)}

	r := runCLI(t, conn, append([]string{"ingest"}, files.Files...)...)
	if r.code != exitRejected {
		t.Fatalf("ingest with one bad row: exit %d, want %d\n%s\n%s", r.code, exitRejected, r.stdout, r.stderr)
	}
	want := fmt.Sprintf("rows read %d = published %d + rejected 1", files.Rows, files.Rows-1)
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "BAD_DATE 1") {
		t.Fatalf("summary lacks %q:\n%s", want, r.stdout)
	}
	stop(run)

	run = start()
	defer stop(run)
	r = runCLI(t, conn, append([]string{"ingest"}, files.Files...)...)
	// Skipped: nothing published now, so exit 0 even though its first
	// run had a rejected row (and exited 3).
	if r.code != 0 || !strings.Contains(r.stdout, "skipped") {
		t.Fatalf("after a restart the file must be known (skipped, exit 0): exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestIngestExitStatuses(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	clean := genFiles(t, dir, gen.Config{ServicePoints: 10, Months: 3, Seed: 1, Compression: "zip"})
	if r := runCLI(t, nil, append(append([]string{"ingest"}, connArgs(env.Kafka)...), clean.Files...)...); r.code != 0 {
		t.Fatalf("clean file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(dir, "opwr_gec_res_v1-19-0_full_20250101000000.tsv")
	os.WriteFile(bad, []byte("customer_id\tpremise_id\n"), 0o644)
	r := runCLI(t, nil, append(append([]string{"ingest"}, connArgs(env.Kafka)...), bad)...)
	if r.code != exitFailed || !strings.Contains(r.stdout, "secondary_id") {
		t.Fatalf("file with a short header: exit %d, want %d, and the missing column named\n%s%s", r.code, exitFailed, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, "ingest", "--brokers", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--registry", env.Kafka.Registry, clean.Files[0])
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach Kafka") {
		t.Fatalf("unreachable broker: exit %d\n%s", r.code, r.stderr)
	}
	odd := filepath.Join(dir, "billing-march.tsv")
	os.WriteFile(odd, []byte(""), 0o644)
	r = runCLI(t, nil, append(append([]string{"ingest"}, connArgs(env.Kafka)...), odd)...)
	// A file fault since issue 13: the file fails, the run goes on.
	if r.code != exitFailed || !strings.Contains(r.stdout, "--utility") {
		t.Fatalf("non-conforming name without --utility: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestIngestKilledRepeatedlyResumesExactlyOnce kills `usagestream ingest`
// with SIGKILL at random moments, restarts it each time, and checks that
// every line of the file is on Kafka exactly once.
func TestIngestKilledRepeatedlyResumesExactlyOnce(t *testing.T) {
	env := kafkatest.Start(t)
	files := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 25000, Months: 12, Seed: 11, Anomalies: map[gen.Kind]int{"NULL_TOKEN": 2, "FIELD_COUNT": 1}})
	path := files.Files[0]
	// Small chunks: many commit points to die between, and a run long
	// enough for random kills to land mid-file.
	args := append(append([]string{"ingest", "--chunk-rows", "300"}, connArgs(env.Kafka)...), path)
	rng := rand.New(rand.NewPCG(1, 2))
	kills, finished := 0, false
	for attempt := 0; attempt < 20; attempt++ {
		cmd := exec.Command(binary, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done: // finished before the kill
			attempt, finished = 99, true
		case <-time.After(time.Duration(30+rng.IntN(270)) * time.Millisecond):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		}
	}
	// The final run finishes the file (exit 3: its rejected rows), or finds
	// it done (skipped, exit 0) when a run between the kills took the rest
	// of it: ingest is fast enough for that, and a kill can land after a
	// run's last commit. Either way every line must be on Kafka once.
	r := runCLI(t, nil, args...)
	skipped := r.code == 0 && strings.Contains(r.stdout, "skipped")
	switch {
	case !skipped && r.code != exitRejected:
		t.Fatalf("final run: exit %d, want %d (the file's rejected rows) or 0 with the file skipped as done\n%s%s", r.code, exitRejected, r.stdout, r.stderr)
	case finished && !skipped:
		t.Fatalf("a run finished the file, yet the final run did not find it done: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if kills < 3 {
		t.Fatalf("only %d kills landed mid-file; the test proves nothing", kills)
	}
	counts := map[int64]int{}
	for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing)) {
		counts[m["source"].(map[string]any)["line"].(int64)]++
	}
	for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Rejected)) {
		counts[m["source"].(map[string]any)["line"].(int64)]++
	}
	for line := int64(2); line <= files.Rows+1; line++ {
		if counts[line] != 1 {
			t.Fatalf("after %d kills, line %d is on Kafka %d times, want exactly once", kills, line, counts[line])
		}
	}
	if int64(len(counts)) != files.Rows {
		t.Fatalf("%d distinct lines on Kafka, file has %d", len(counts), files.Rows)
	}
	t.Logf("%d SIGKILLs, %d rows, each exactly once (a run between the kills finished the file: %v)", kills, files.Rows, finished)
}

func TestWatchFolderIngestsAndMovesFiles(t *testing.T) {
	env := kafkatest.Start(t)
	drop := t.TempDir()
	cmd := exec.Command(binary, append([]string{"ingest", "--watch", drop, "--poll", "100ms", "--settle", "300ms"}, connArgs(env.Kafka)...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	good := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 20, Months: 4, Seed: 2})
	b, _ := os.ReadFile(good.Files[0])
	// An upload in progress uses a temporary name, then is renamed.
	part := filepath.Join(drop, filepath.Base(good.Files[0])+".part")
	os.WriteFile(part, b, 0o644)
	os.Rename(part, filepath.Join(drop, filepath.Base(good.Files[0])))
	os.WriteFile(filepath.Join(drop, "opwr_gec_res_v1-19-0_full_20250101000000.tsv"), []byte("premise_id\tcustomer_id\n"), 0o644)

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, e1 := os.Stat(filepath.Join(drop, "done", filepath.Base(good.Files[0])))
		_, e2 := os.Stat(filepath.Join(drop, "failed", "opwr_gec_res_v1-19-0_full_20250101000000.tsv.error.txt"))
		if e1 == nil && e2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files not moved\nstdout:\n%s\nstderr:\n%s", so.String(), se.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch did not stop cleanly: %v\n%s", err, se.String())
	}
	msg, _ := os.ReadFile(filepath.Join(drop, "failed", "opwr_gec_res_v1-19-0_full_20250101000000.tsv.error.txt"))
	if !strings.Contains(string(msg), "customer_id") {
		t.Fatalf("error file does not say what is wrong: %s", msg)
	}
	if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing)); int64(n) != good.Rows {
		t.Fatalf("%d billing records, want %d", n, good.Rows)
	}
}

// TestLogsCarryNoPersonalData: logs at debug level of a run over rows with
// addresses and rejected rows never contain an address.
func TestLogsCarryNoPersonalData(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	files := genFiles(t, dir, gen.Config{ServicePoints: 30, Months: 6, Seed: 9, Anomalies: map[gen.Kind]int{"FIELD_COUNT": 1, "BAD_DATE": 1}})
	r := runCLI(t, nil, append(append([]string{"ingest", "--log-level", "debug", "--log-format", "json"}, connArgs(env.Kafka)...), files.Files...)...)
	if r.code != exitRejected {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing))[:20] {
		for _, f := range []string{"service_street_name", "business_name"} {
			if v, ok := m[f].(map[string]any); ok {
				s := v["string"].(string)
				if strings.Contains(r.stderr, s) || strings.Contains(r.stdout, s) {
					t.Fatalf("personal value %q of %s appears in the output", s, f)
				}
			}
		}
	}
}

// TestDemoReadsTheWholeSampleFile: the README's first command ingests its
// sample file to the end (COMPLETED, every row published or rejected), then
// skips it the second time, and exits 0. The sample holds malformed rows on
// purpose: with the reject limit a file may not be failed for a handful.
func TestDemoReadsTheWholeSampleFile(t *testing.T) {
	r := runCLI(t, nil, "demo")
	if r.code != 0 {
		t.Fatalf("demo exited %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stdout, "COMPLETED") || !strings.Contains(r.stdout, "skipped") {
		t.Fatalf("demo did not ingest its sample to the end, then skip it:\n%s", r.stdout)
	}
}

// httpGet asks for url, with a bearer token unless it is "": the status (0
// when nothing answered), the headers and the body.
func httpGet(url, token string) (int, http.Header, []byte) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}
