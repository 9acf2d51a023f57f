package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/producers/gen"
)

// TestReplayPausesTheAllInOneRun: `replay --pause URL` against a running
// `usagestream run` pauses its processors, replays into the live topics,
// and resumes them: no restart as `run --no-process`, and the run goes on
// processing what comes next.
func TestReplayPausesTheAllInOneRun(t *testing.T) {
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	run := startRun(t, hport, "--data-dir", t.TempDir(), "--kafka-port", fmt.Sprint(kport), "--registry-port", fmt.Sprint(rport))
	defer run.stop(t)
	kc := kafkaconf.Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", kport)}, Registry: fmt.Sprintf("http://127.0.0.1:%d", rport), TopicPrefix: "usagestream."}
	conn := []string{"USAGESTREAM_BROKERS=" + kc.Brokers[0], "USAGESTREAM_REGISTRY=" + kc.Registry}
	caughtUp := func(what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for {
			st, err := pipelineStatus(ctx, kc)
			done := err == nil
			for _, s := range st.Stages {
				done = done && s.Started && s.Lag == 0 && len(s.Members) == 1
			}
			if done {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: the stages did not catch up: %+v %v\n%s", what, st, err, run.se.String())
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	dir := t.TempDir()
	first := genFiles(t, dir, gen.Config{ServicePoints: 20, Months: 3, Seed: 4})
	if r := runCLI(t, conn, append([]string{"ingest"}, first.Files...)...); r.code != 0 {
		t.Fatalf("ingest: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	caughtUp("the first file")

	// Without --pause the replay is refused: the run's processors are members.
	r := runCLI(t, conn, "replay", "--yes", "--no-run")
	if r.code != 2 || !strings.Contains(r.stderr, "members") {
		t.Fatalf("replay beside a running run without --pause: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, conn, "replay", "--yes", "--pause", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	if r.code != 1 || !strings.Contains(r.stderr, "is run (or process) serving there?") || strings.Contains(r.stdout+r.stderr, "resume") {
		t.Fatalf("replay --pause to no server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, conn, "replay", "--dry-run", "--pause", fmt.Sprintf("http://127.0.0.1:%d", hport))
	if r.code != 0 || strings.Contains(r.stdout, "would be refused") || !strings.Contains(r.stdout, "pauses the processors") {
		t.Fatalf("dry run with --pause: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, conn, "replay", "--yes", "--pause", fmt.Sprintf("http://127.0.0.1:%d", hport))
	if r.code != 0 || !strings.Contains(r.stdout, "paused the processors") || !strings.Contains(r.stdout, "resumed the processors") {
		t.Fatalf("replay --pause: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	caughtUp("after the replay")

	// The resumed processors take the next file.
	second := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 20, Months: 3, Seed: 5, Now: time.Date(2025, 4, 15, 12, 0, 0, 0, time.UTC)})
	if r := runCLI(t, conn, append([]string{"ingest"}, second.Files...)...); r.code != 0 {
		t.Fatalf("ingest after the replay: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	caughtUp("the second file")
	if !strings.Contains(run.se.String(), "processors paused") || !strings.Contains(run.se.String(), "processors resumed") {
		t.Fatalf("run's log does not say it paused and resumed:\n%s", run.se.String())
	}
}
