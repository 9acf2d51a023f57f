package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/producers/watch"
	"github.com/usagestream/usagestream/records"
)

// watchInProcess runs the drop-folder watcher with the real ingest handler
// of `ingest --watch` until until() holds or 20 s pass (the caller's checks then fail), and returns how
// often the handler was called per file name.
func watchInProcess(t *testing.T, env *kafkatest.Env, drop string, cfg ingest.Config, until func() bool) map[string]int {
	t.Helper()
	cfg.Topics = env.Topics
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := ingest.New(ctx, env.Kafka, cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := &Globals{log: slog.New(slog.DiscardHandler)}
	h := watchHandler(g, in, nil, &bytes.Buffer{})
	var mu sync.Mutex
	calls := map[string]int{}
	done := make(chan error, 1)
	go func() {
		done <- watch.Run(ctx, drop, func(ctx context.Context, p string) (watch.Outcome, string) {
			mu.Lock()
			calls[filepath.Base(p)]++
			mu.Unlock()
			return h(ctx, p)
		}, watch.Options{Poll: 20 * time.Millisecond, Settle: 60 * time.Millisecond})
	}()
	deadline := time.After(20 * time.Second)
wait:
	for !until() {
		select {
		case err := <-done:
			t.Fatalf("the watcher stopped: %v", err)
		case <-deadline:
			t.Log("the watcher did not get there in 20 s")
			break wait // the caller's checks say what is wrong
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	out := map[string]int{}
	for k, v := range calls {
		out[k] = v
	}
	return out
}

func present(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func billingText(rows int) []byte {
	var b strings.Builder
	b.WriteString(records.HeaderLine(records.LayoutFull) + "\n")
	for i := 0; i < rows; i++ {
		vals := make([]string, len(records.BillingColumns()))
		for j, c := range records.BillingColumns() {
			switch c.Name {
			case "customer_id", "premise_id", "account_id", "service_point_id":
				vals[j] = "X" + strconv.Itoa(i)
			case "active_date":
				vals[j] = "20240101"
			case "service_type":
				vals[j] = "E"
			case "usage_value":
				vals[j] = "300"
			case "date_to":
				vals[j] = "20240131"
			case "duration":
				vals[j] = "31"
			}
		}
		b.WriteString(strings.Join(vals, "\t") + "\n")
	}
	return []byte(b.String())
}

// TestWatchMovesAMisnamedFileToFailedOnce (issue 13): without --utility, a
// file whose name breaks the convention is a file fault: handled once, moved
// to failed/ with its NAME.error.txt, never retried every poll (and re-hashed).
func TestWatchMovesAMisnamedFileToFailedOnce(t *testing.T) {
	env := kafkatest.Start(t)
	drop := t.TempDir()
	const name = "billing export (march).tsv"
	if err := os.WriteFile(filepath.Join(drop, name), billingText(3), 0o644); err != nil {
		t.Fatal(err)
	}
	errFile := filepath.Join(drop, "failed", name+".error.txt")
	var polls atomic.Int32
	calls := watchInProcess(t, env, drop, ingest.Config{}, func() bool {
		// A few polls past the move: a retried file would be handled again.
		if present(errFile) {
			return polls.Add(1) > 15
		}
		return false
	})
	if calls[name] != 1 {
		t.Fatalf("the misnamed file was handled %d times, want once", calls[name])
	}
	if !present(filepath.Join(drop, "failed", name)) || present(filepath.Join(drop, name)) {
		t.Fatal("the misnamed file is not in failed/")
	}
	msg, _ := os.ReadFile(errFile)
	if !strings.Contains(string(msg), "--utility") {
		t.Fatalf("the error file does not say what to do:\n%s", msg)
	}
}

// TestWatchFailsAFileThatGrowsDuringIngest (issue 13): a file still being
// written while ingest reads it (it grows after it was opened) is FAILED and
// moved to failed/ with its error file, not reported completed nor moved to
// done/.
func TestWatchFailsAFileThatGrowsDuringIngest(t *testing.T) {
	env := kafkatest.Start(t)
	drop := t.TempDir()
	const name = "opwr_gec_res_v1-19-0_full_20250102030405.tsv"
	p := filepath.Join(drop, name)
	if err := os.WriteFile(p, billingText(5), 0o644); err != nil {
		t.Fatal(err)
	}
	var grown atomic.Bool
	cfg := ingest.Config{Progress: func(ingest.Progress) {
		// The uploader writes more while ingest is at it.
		if grown.CompareAndSwap(false, true) {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.Write(billingText(2)[len(records.HeaderLine(records.LayoutFull))+1:])
			f.Close()
		}
	}}
	errFile := filepath.Join(drop, "failed", name+".error.txt")
	watchInProcess(t, env, drop, cfg, func() bool {
		return present(errFile) || present(filepath.Join(drop, "done", name))
	})
	if present(filepath.Join(drop, "done", name)) {
		t.Fatal("a file that grew while it was read was moved to done/")
	}
	msg, _ := os.ReadFile(errFile)
	if !strings.Contains(string(msg), name) || !strings.Contains(string(msg), "changed") {
		t.Fatalf("the error file does not say the file changed:\n%s", msg)
	}
}

// TestIngestRejectLimitFlags (issue 13): --max-rejects and
// --max-reject-share (and their environment variables) set when a mostly
// rejected file fails; under the defaults the same file only has rejects.
func TestIngestRejectLimitFlags(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	text := append(billingText(1), strings.Repeat("\n", 20)...) // 1 good row, 20 blank lines
	p := filepath.Join(dir, "opwr_gec_res_v1-19-0_full_20250102030405.tsv")
	if err := os.WriteFile(p, text, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"ingest"}, connArgs(env.Kafka)...)
	r := runCLI(t, nil, append(args, "--max-rejects", "5", "--max-reject-share", "0.5", p)...)
	want := "6 of 7 rows rejected (over --max-rejects 5 and --max-reject-share 0.5)"
	if r.code != exitFailed || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "rows read 7 = published 1 + rejected 6") {
		t.Fatalf("flags: exit %d, want %d and %q\n%s%s", r.code, exitFailed, want, r.stdout, r.stderr)
	}
	// The same bytes again, limits from the environment: the failed run is
	// resumed after its last line and stops at the next rejected row.
	r = runCLI(t, []string{"USAGESTREAM_MAX_REJECTS=3", "USAGESTREAM_MAX_REJECT_SHARE=0.2"}, append(args, p)...)
	if r.code != exitFailed || !strings.Contains(r.stdout, "over --max-rejects 3 and --max-reject-share 0.2") {
		t.Fatalf("environment: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, append(args, "--force", "--max-reject-share", "1.5", p)...)
	if r.code != 1 || !strings.Contains(r.stderr, "--max-reject-share") {
		t.Fatalf("a share over 1: exit %d\n%s", r.code, r.stderr)
	}
	// Under the default limits (1000 rows and half) 21 rejects are just
	// rejects (other bytes, so nothing is resumed).
	q := filepath.Join(dir, "opwr_gec_res_v1-19-0_full_20250103030405.tsv")
	if err := os.WriteFile(q, append(text, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, nil, append(args, q)...); r.code != exitRejected {
		t.Fatalf("defaults: exit %d, want %d\n%s%s", r.code, exitRejected, r.stdout, r.stderr)
	}
}
