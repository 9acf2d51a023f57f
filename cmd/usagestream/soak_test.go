package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
)

// soakInt reads a positive integer setting of the soak from the
// environment.
func soakInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}

// TestSoakKillsKeepExactlyOnce (issue 14's soak; scripts/soak.sh, not in
// the test command): two `usagestream process` instances over more than
// 1,000,000 generated billing rows on the three-node cluster, with
// SOAK_KILLS (100) SIGKILLs of either instance at random moments, each
// started again at once on its state directory, and SOAK_BROKER_KILLS (5)
// broker kills spread over them. At the end the topics must hold exactly
// what the rules give (checkExactlyOnce: duplicates and losses are
// reported there); the time each restarted instance took to commit again,
// and the time from the last fault to every stage caught up, are logged.
func TestSoakKillsKeepExactlyOnce(t *testing.T) {
	if os.Getenv("USAGESTREAM_SOAK") != "1" {
		t.Skip("the soak runs with USAGESTREAM_SOAK=1 (scripts/soak.sh starts the cluster and sets it)")
	}
	ce := loadClusterEnv(t)
	servicePoints := soakInt(t, "SOAK_SERVICE_POINTS", 85_000) // × 12 months: about 1,020,000 rows
	minRows := int64(soakInt(t, "SOAK_MIN_ROWS", 1_000_000))
	kills := soakInt(t, "SOAK_KILLS", 100)
	brokerKills := soakInt(t, "SOAK_BROKER_KILLS", 5)
	seed := uint64(soakInt(t, "SOAK_SEED", int(time.Now().UnixNano()%1_000_000)))
	t.Logf("soak: %d service points, %d process kills, %d broker kills, seed %d (SOAK_SEED repeats the moments)", servicePoints, kills, brokerKills, seed)
	rng := mrand.New(mrand.NewPCG(seed, 14))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	kc, adm := clusterTopics(t, ctx, ce, "soak")
	names := topics.NewNames(kc.TopicPrefix)

	dir := t.TempDir()
	gr := runCLI(t, nil, "gen", "-o", dir, "--service-points", strconv.Itoa(servicePoints), "--months", "12", "--seed", "14",
		"--now", "20250315", "--anomalies", "all=1")
	if gr.code != 0 {
		t.Fatalf("gen: exit %d\n%s", gr.code, gr.stderr)
	}
	files := strings.Fields(gr.stdout)
	rows := countRows(t, files)
	if rows < minRows {
		t.Fatalf("the generated files hold %d rows; the soak wants at least %d", rows, minRows)
	}

	procs := []*procRun{startProcess(t, ce, kc, "process"), startProcess(t, ce, kc, "process2")}
	ing := exec.Command(binary, append(append([]string{"ingest", "--progress", "never"}, connArgs(kc)...), files...)...)
	ingOut, err := os.Create(ce.logDir + "/" + kc.TopicPrefix + "ingest.log")
	if err != nil {
		t.Fatal(err)
	}
	defer ingOut.Close()
	ing.Stdout, ing.Stderr = ingOut, ingOut
	started := time.Now()
	if err := ing.Start(); err != nil {
		t.Fatal(err)
	}
	ingDone := make(chan error, 1)
	go func() { ingDone <- ing.Wait() }()
	defer func() {
		if ing.ProcessState == nil {
			ing.Process.Kill()
			<-ingDone
		}
	}()
	since := func() float64 { return time.Since(started).Seconds() }

	// Broker kills run beside the process kills, one at a time, evenly
	// spread over them.
	brokerDone := make(chan error, 1)
	brokerBusy := false
	brokerKill := func(node int) {
		brokerBusy = true
		go func() {
			out, err := exec.Command(ce.script, "broker-kill", strconv.Itoa(node)).CombinedOutput()
			if err == nil {
				time.Sleep(8 * time.Second)
				out, err = exec.Command(ce.script, "broker-start", strconv.Itoa(node)).CombinedOutput()
			}
			if err != nil {
				err = fmt.Errorf("node %d: %w: %s", node, err, out)
			}
			brokerDone <- err
		}()
	}
	waitBroker := func() {
		if !brokerBusy {
			return
		}
		if err := <-brokerDone; err != nil {
			t.Fatal(err)
		}
		brokerBusy = false
		waitFullISR(t, adm, kc.TopicPrefix, 3*time.Minute)
	}

	// recoveries: for each kill, how long the restarted instance took to
	// commit a transaction (its counter starts at 0 with the process).
	var recoveries []time.Duration
	notBefore := 0 // killed again (or the soak ended) before it committed
	type pending struct {
		restarted time.Time
		pr        *procRun
	}
	var waiting []pending
	poll := func() {
		waiting = slices.DeleteFunc(waiting, func(p pending) bool {
			if p.pr.metric("usagestream_processor_transactions_committed_total", "") > 0 {
				recoveries = append(recoveries, time.Since(p.restarted))
				return true
			}
			return false
		})
	}
	brokersDone := 0
	for k := 0; k < kills; k++ {
		// A random moment: 0.5 to 3 s after the previous kill (most of
		// them while the rows flow), polling for the restarted instances'
		// first commits meanwhile.
		until := time.Now().Add(500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond))))
		for time.Now().Before(until) {
			poll()
			time.Sleep(100 * time.Millisecond)
		}
		if brokersDone < brokerKills && k >= (brokersDone+1)*kills/(brokerKills+1) {
			waitBroker()
			node := 1 + rng.IntN(3)
			t.Logf("%.1f s: broker kill %d: node %d", since(), brokersDone+1, node)
			brokerKill(node)
			brokersDone++
		}
		pr := procs[rng.IntN(2)]
		waiting = slices.DeleteFunc(waiting, func(p pending) bool {
			if p.pr == pr {
				notBefore++
				return true
			}
			return false
		})
		if err := pr.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d of %s: %v", k+1, pr.name, err)
		}
		<-pr.done
		startProcessAt(t, kc, pr)
		waiting = append(waiting, pending{restarted: time.Now(), pr: pr})
		if (k+1)%10 == 0 {
			t.Logf("%.1f s: %d kills; billing.v1 holds %d records", since(), k+1, endOffset(ctx, adm, names.Billing))
		}
	}
	for brokersDone < brokerKills { // fewer process kills than broker kills
		waitBroker()
		brokerKill(1 + rng.IntN(3))
		brokersDone++
	}
	waitBroker()
	lastFault := time.Now()
	t.Logf("%.1f s: last fault (%d process kills, %d broker kills)", since(), kills, brokersDone)

	select {
	case err := <-ingDone:
		if code := exitCode(err); code != exitRejected {
			t.Fatalf("ingest through the soak: exit %d, want %d (its output: %s)", code, exitRejected, ingOut.Name())
		}
	case <-time.After(15 * time.Minute):
		t.Fatalf("ingest not finished 15 minutes after the last fault (its output: %s)", ingOut.Name())
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Minute)
	err = pipeline.WaitCaughtUp(wctx, kc)
	wcancel()
	if err != nil {
		t.Fatalf("the stages did not catch up after the soak: %v%s%s", err, stuckRestores(t, procs[0].logPath), stuckRestores(t, procs[1].logPath))
	}
	caught := time.Since(lastFault)
	poll()
	notBefore += len(waiting)
	slices.Sort(recoveries)
	pct := func(q float64) time.Duration {
		if len(recoveries) == 0 {
			return 0
		}
		return recoveries[min(len(recoveries)-1, int(q*float64(len(recoveries))))].Round(100 * time.Millisecond)
	}
	t.Logf("soak: %d rows in %.0f s; caught up %.1f s after the last fault; restart to first commit over %d kills: median %s, p95 %s, max %s (%d instances killed again, or idle, before committing)",
		rows, since(), caught.Seconds(), len(recoveries), pct(0.5), pct(0.95), pct(1), notBefore)
	for _, pr := range procs {
		pr.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-pr.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30 s of SIGTERM", pr.name)
		}
	}
	for _, pr := range procs {
		t.Logf("what %s logged at WARN and above, by stage and message:\n%s", pr.name, logSummary(t, pr.logPath))
	}
	checkExactlyOnce(t, kc, files, rows)
	if !t.Failed() {
		t.Logf("soak: no duplicate and no loss: every row once, every event as the rules give it, no event id twice")
	}
}
