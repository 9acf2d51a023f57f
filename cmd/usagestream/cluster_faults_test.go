package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/records"
)

// Fault tests against the three-node KRaft cluster of
// scripts/realkafka-cluster.sh (issue 14). The lane scripts/test.d/65-cluster.sh
// starts it and points USAGESTREAM_TEST_CLUSTER at its env file.

// clusterEnv is the cluster's env file: bootstrap list, registry, and the
// script that kills and starts its nodes.
type clusterEnv struct {
	brokers  []string
	registry string
	script   string
	logDir   string // the env file's folder: logs kept after the test, for a failure's diagnosis
}

// clusterTopics creates the topics and schemas of a prefix of the test's
// own (stem and random hex) on the cluster, with replication 3
// (min.insync.replicas 2 is the cluster's default), and returns its
// connection settings and an admin client closed when the test ends.
func clusterTopics(t *testing.T, ctx context.Context, ce clusterEnv, stem string) (kafkaconf.Config, *kadm.Client) {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	kc := kafkaconf.Config{Brokers: ce.brokers, Registry: ce.registry, TopicPrefix: stem + hex.EncodeToString(r[:]) + "."}
	if err := ensureTopicsAndSchemas(ctx, kc, 3, 3, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kc, kadm.NewClient(cl)
}

func loadClusterEnv(t *testing.T) clusterEnv {
	t.Helper()
	path := os.Getenv("USAGESTREAM_TEST_CLUSTER")
	if path == "" {
		t.Skip("USAGESTREAM_TEST_CLUSTER is not set: this test needs the three-node Kafka cluster of scripts/realkafka-cluster.sh " +
			"(set it to the env file that `scripts/realkafka-cluster.sh start` writes; scripts/test.d/65-cluster.sh does)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("USAGESTREAM_TEST_CLUSTER: %v", err)
	}
	ce := clusterEnv{logDir: filepath.Dir(path)}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "USAGESTREAM_BROKERS":
			ce.brokers = strings.Split(v, ",")
		case "USAGESTREAM_REGISTRY":
			ce.registry = v
		case "REALKAFKA_CLUSTER":
			ce.script = v
		}
	}
	if len(ce.brokers) != 3 || ce.registry == "" || ce.script == "" {
		t.Fatalf("%s: want three brokers, a registry and the cluster script, got %+v", path, ce)
	}
	return ce
}

// node runs one of the cluster script's node commands (broker-kill N,
// broker-start N).
func (ce clusterEnv) node(t *testing.T, cmd string, id int32) {
	t.Helper()
	out, err := exec.Command(ce.script, cmd, fmt.Sprint(id)).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s %d: %v\n%s", ce.script, cmd, id, err, out)
	}
}

// run runs a cluster script command without argument (registry-stop,
// registry-start) and returns how long it took.
func (ce clusterEnv) run(t *testing.T, cmd string) time.Duration {
	t.Helper()
	start := time.Now()
	out, err := exec.Command(ce.script, cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", ce.script, cmd, err, out)
	}
	return time.Since(start)
}

// procRun is one `usagestream process` instance started by a test, its
// output in a log file kept next to the cluster's env file.
type procRun struct {
	name, stateDir, haddr, logPath string
	cmd                            *exec.Cmd
	done                           chan error
}

func startProcess(t *testing.T, ce clusterEnv, kc kafkaconf.Config, name string) *procRun {
	t.Helper()
	return startProcessAt(t, kc, &procRun{name: name, stateDir: t.TempDir(), haddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		logPath: filepath.Join(ce.logDir, kc.TopicPrefix+name+".log")})
}

// startProcessAt starts the process of pr (again: a restart after a kill
// keeps its state directory, port and log, appended to).
func startProcessAt(t *testing.T, kc kafkaconf.Config, pr *procRun) *procRun {
	t.Helper()
	pr.done = make(chan error, 1)
	lf, err := os.OpenFile(pr.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	pr.cmd = exec.Command(binary, append([]string{"process", "--state-dir", pr.stateDir, "--http-addr", pr.haddr,
		"--session-timeout", clusterSessionTimeout.String()}, connArgs(kc)...)...)
	pr.cmd.Stdout, pr.cmd.Stderr = lf, lf
	if err := pr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { pr.done <- pr.cmd.Wait() }()
	t.Cleanup(func() {
		if pr.cmd.ProcessState == nil {
			pr.cmd.Process.Signal(syscall.SIGCONT) // a stopped process does not die of SIGKILL until continued on some kernels
			pr.cmd.Process.Kill()
			<-pr.done
		}
	})
	return pr
}

// logged reports whether the instance's log holds msg (a substring of a
// line) after its first skip bytes.
func (pr *procRun) logged(t *testing.T, skip int64, msg string) bool {
	t.Helper()
	b, err := os.ReadFile(pr.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b)) > skip && bytes.Contains(b[skip:], []byte(msg))
}

func (pr *procRun) logSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(pr.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// metric sums the samples of a metric family on the instance's /metrics
// whose line contains match ("" for all).
func (pr *procRun) metric(name, match string) float64 {
	resp, err := http.Get("http://" + pr.haddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, l := range strings.Split(string(b), "\n") {
		if (strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ")) && strings.Contains(l, match) {
			var v float64
			if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// clusterSessionTimeout is the processes' --session-timeout: a SIGSTOP
// longer than it gets an instance removed from its groups.
const clusterSessionTimeout = 10 * time.Second

// waitGroups waits until ok holds for the group of every stage, and
// returns how long that took.
func waitGroups(t *testing.T, adm *kadm.Client, prefix string, timeout time.Duration, what string, ok func(kadm.DescribedGroup) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var groups []string
	for _, st := range pipeline.StageNames() {
		groups = append(groups, groupName(prefix, st))
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		dg, err := adm.DescribeGroups(ctx, groups...)
		cancel()
		bad := ""
		if err != nil {
			bad = err.Error()
		} else {
			for _, g := range groups {
				d, found := dg[g]
				if !found || d.Err != nil || !ok(d) {
					bad = fmt.Sprintf("group %s: state %s, %d members (%v)", g, d.State, len(d.Members), d.Err)
					break
				}
			}
		}
		if bad == "" {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not so after %s: %s", what, timeout, bad)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// onlyMember says whether the group is stable with instance (a static
// member id) as its one member, which then holds every partition.
func onlyMember(d kadm.DescribedGroup, instance func(stage string) string) bool {
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].InstanceID == nil {
		return false
	}
	for _, st := range pipeline.StageNames() {
		if strings.HasSuffix(d.Group, "processor-"+st) {
			return *d.Members[0].InstanceID == instance(st)
		}
	}
	return false
}

// progressSample is what every stage's group had committed at one moment.
type progressSample struct {
	at        time.Time
	committed map[string]int64 // stage -> sum of committed offsets over its inputs
}

// progressLog samples the committed offsets of every stage's group, so the
// recovery after a kill can be measured afterwards.
type progressLog struct {
	mu      sync.Mutex
	samples []progressSample
	errs    int   // failed samples
	lastErr error // the last one's error
}

func (pl *progressLog) run(ctx context.Context, kc kafkaconf.Config) {
	prev := map[string]int64{}
	var cl *kgo.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	for {
		s := progressSample{at: time.Now(), committed: map[string]int64{}}
		for _, stage := range pipeline.StageNames() {
			var err error
			if cl == nil {
				cl, err = kc.NewClient(ctx)
			}
			var offs kadm.OffsetResponses
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				offs, err = kadm.NewClient(cl).FetchOffsets(cctx, groupName(kc.TopicPrefix, stage))
				cancel()
			}
			if err != nil {
				// The stage keeps its last value this round (committed
				// offsets never go back). A fresh client next time: one
				// may keep asking a dead node for the group's coordinator.
				pl.mu.Lock()
				pl.errs++
				pl.lastErr = err
				pl.mu.Unlock()
				s.committed[stage] = prev[stage]
				if cl != nil {
					cl.Close()
					cl = nil
				}
				continue
			}
			var sum int64
			offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
			s.committed[stage] = sum
			prev[stage] = sum
		}
		pl.mu.Lock()
		pl.samples = append(pl.samples, s)
		pl.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// last returns the latest sample (zero when there is none).
func (pl *progressLog) last() progressSample {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if len(pl.samples) == 0 {
		return progressSample{committed: map[string]int64{}}
	}
	return pl.samples[len(pl.samples)-1]
}

// recovery says, for each stage, how long after at its group committed
// beyond what it had committed before at: the time it took to make progress
// again. A stage that had already committed everything it ever commits is
// idle; one with work left and no commit before until is reported stalled.
func (pl *progressLog) recovery(at, until time.Time) map[string]string {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	out := map[string]string{}
	var before progressSample
	for _, s := range pl.samples {
		if s.at.After(at) {
			break
		}
		before = s
	}
	final := pl.samples[len(pl.samples)-1]
	for _, stage := range pipeline.StageNames() {
		if before.committed[stage] == final.committed[stage] {
			out[stage] = "idle (done before the fault)"
			continue
		}
		out[stage] = "STALLED until " + until.Sub(at).Round(100*time.Millisecond).String()
		for _, s := range pl.samples {
			if s.at.After(at) && !s.at.After(until) && s.committed[stage] > before.committed[stage] {
				out[stage] = s.at.Sub(at).Round(100 * time.Millisecond).String()
				break
			}
		}
	}
	return out
}

// waitFullISR waits until every partition of the test's topics and of the
// consumer-offsets and transaction-state topics is replicated on all three
// nodes again, so the next kill leaves two in-sync replicas everywhere.
func waitFullISR(t *testing.T, adm *kadm.Client, prefix string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		td, err := adm.ListTopicsWithInternal(ctx)
		cancel()
		short := ""
		if err == nil {
			td.EachPartition(func(p kadm.PartitionDetail) {
				if short == "" && len(p.ISR) < 3 && (strings.HasPrefix(p.Topic, prefix) || strings.HasPrefix(p.Topic, "__")) {
					short = fmt.Sprintf("%s[%d] ISR %v", p.Topic, p.Partition, p.ISR)
				}
			})
		} else {
			short = err.Error()
		}
		if short == "" {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("the cluster is not fully replicated %s after a restart: %s", timeout, short)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestClusterFaultsKeepExactlyOnce (issue 14): a generated billing file of
// more than 300,000 rows is ingested into the three-node cluster while two
// `usagestream process` instances run every stage against it, and faults
// come, nobody touching the processes:
//
//  1. the first process is stopped (SIGSTOP) for longer than its session
//     timeout: the second takes all its partitions; continued (SIGCONT),
//     the first logs that it lost them and rejoins;
//  2. meanwhile the schema registry stops for 30 s: the running ingest and
//     stages go on (they hold the schema ids they use), while an ingest and
//     a process started during the outage exit at once with an error naming
//     the registry;
//  3. the node leading billing.v1 partition 0 is killed with SIGKILL and
//     started again, then another node (the servicepoint stage's
//     transaction coordinator when that is a different node).
//
// Ingest must finish, every stage must catch up, and the topics must hold
// exactly what the rules give for the file: every row once on billing.v1 or
// rejected.v1, the same stage-1 events at the same file lines, no event id
// twice, and the same final eligibility as the pure rules. The time each
// stage took to commit again after each fault is logged.
func TestClusterFaultsKeepExactlyOnce(t *testing.T) {
	ce := loadClusterEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	kc, adm := clusterTopics(t, ctx, ce, "cf")
	names := topics.NewNames(kc.TopicPrefix)
	checkClusterDurability(t, ctx, adm, names.Billing, false)

	// 40,000 service points × 12 months: about 480,000 rows, one of every
	// anomaly kind; enough that the stages still have work when the second
	// node dies (about 40 s after the start on an idle two-core machine).
	dir := t.TempDir()
	gr := runCLI(t, nil, "gen", "-o", dir, "--service-points", "40000", "--months", "12", "--seed", "14",
		"--now", "20250315", "--anomalies", "all=1")
	if gr.code != 0 {
		t.Fatalf("gen: exit %d\n%s", gr.code, gr.stderr)
	}
	files := strings.Fields(gr.stdout)
	rows := countRows(t, files)
	if rows < 300_000 {
		t.Fatalf("the generated files hold %d rows; the test wants at least 300,000", rows)
	}
	// What an ingest started during the registry outage is given.
	smallDir := t.TempDir()
	sg := runCLI(t, nil, "gen", "-o", smallDir, "--service-points", "5", "--months", "2", "--seed", "1", "--now", "20250315")
	if sg.code != 0 {
		t.Fatalf("gen: exit %d\n%s", sg.code, sg.stderr)
	}
	small := strings.Fields(sg.stdout)

	conn := connArgs(kc)
	// Two instances of the same stages, each with its own state directory.
	pa := startProcess(t, ce, kc, "process")
	pb := startProcess(t, ce, kc, "process2")
	dump := func() {
		for _, pr := range []*procRun{pa, pb} {
			t.Logf("what %s logged at WARN and above, by stage and message:\n%s", pr.name, logSummary(t, pr.logPath))
			b, _ := os.ReadFile(pr.logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("%s log (%s, kept), last %d of %d lines:", pr.name, pr.logPath, min(len(lines), 40), len(lines))
			for _, l := range lines[max(0, len(lines)-40):] {
				t.Log(l)
			}
		}
		t.Log("broker logs: next to the cluster's data")
	}
	var ingOut, ingErr bytes.Buffer
	ing := exec.Command(binary, append(append([]string{"ingest", "--progress", "never"}, conn...), files...)...)
	ingLog, err := os.Create(filepath.Join(ce.logDir, kc.TopicPrefix+"ingest.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer ingLog.Close()
	ing.Stdout, ing.Stderr = io.MultiWriter(&ingOut, ingLog), io.MultiWriter(&ingErr, ingLog)
	started := time.Now()
	if err := ing.Start(); err != nil {
		t.Fatal(err)
	}
	ingDone := make(chan error, 1)
	var ingEnded time.Time // set before ingDone is sent to
	go func() {
		err := ing.Wait()
		ingEnded = time.Now()
		ingDone <- err
	}()
	defer func() {
		if ing.ProcessState == nil {
			ing.Process.Kill()
			<-ingDone
		}
	}()
	since := func() float64 { return time.Since(started).Seconds() }

	pl := &progressLog{}
	mctx, mcancel := context.WithCancel(ctx)
	defer mcancel()
	go pl.run(mctx, kc)

	// The faults land once the servicepoint stage is under way, both
	// processes in every group.
	for pl.last().committed[pipeline.StageServicePoint] == 0 {
		if time.Since(started) > 2*time.Minute {
			dump()
			t.Fatal("the servicepoint stage committed nothing in 2 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitGroups(t, adm, kc.TopicPrefix, 2*time.Minute, "both processes in every group", func(d kadm.DescribedGroup) bool {
		return d.State == "Stable" && len(d.Members) == 2
	})
	instance := func(pr *procRun) func(string) string {
		return func(stage string) string { return stage + "-" + readInstanceID(t, pr.stateDir, stage) }
	}
	type fault struct {
		what       string
		at, restAt time.Time
	}
	var faults []fault

	// Faults 1 and 2 at once (they are independent: the running processes
	// do not call the registry): the first process stalls longer than its
	// session timeout, and the registry is down for 30 s.
	stall := fault{what: "process stopped", at: time.Now()}
	if err := pa.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Logf("%.1f s: process stopped (SIGSTOP); billing.v1 holds %d records, committed per stage %v", since(), endOffset(ctx, adm, names.Billing), pl.last().committed)
	regStop := time.Now()
	ce.run(t, "registry-stop")
	before := pl.last().committed
	t.Logf("%.1f s: registry stopped", since())
	outage := func(what string, args ...string) {
		cctx, ccancel := context.WithTimeout(ctx, 45*time.Second)
		defer ccancel()
		t0 := time.Now()
		out, err := exec.CommandContext(cctx, binary, args...).CombinedOutput()
		code := exitCode(err)
		last := strings.TrimSpace(string(out))
		last = last[strings.LastIndexByte(last, '\n')+1:]
		if cctx.Err() != nil || code == 0 || code == exitRejected || !strings.Contains(string(out), "registry") {
			dump()
			t.Fatalf("%s during the registry outage: exit %d after %.1f s, want a failure naming the registry at once; output:\n%s",
				what, code, time.Since(t0).Seconds(), out)
		}
		t.Logf("%.1f s: registry outage: %s started now exits %d after %.1f s: %s", since(), what, code, time.Since(t0).Seconds(), last)
	}
	// The test's own topics: were it to write anything, the exactly-once
	// check at the end would see it.
	outage("ingest", append(append([]string{"ingest", "--progress", "never"}, conn...), small...)...)
	outage("process", append([]string{"process", "--state-dir", t.TempDir(), "--http-addr", "127.0.0.1:0"}, conn...)...)
	// The registry comes back 30 s after it stopped, whatever the test
	// does meanwhile.
	regBack := make(chan error, 1)
	var regStart time.Time // set before regBack is sent to
	go func() {
		time.Sleep(time.Until(regStop.Add(30 * time.Second)))
		regStart = time.Now()
		out, err := exec.Command(ce.script, "registry-start").CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		regBack <- err
	}()

	moved := waitGroups(t, adm, kc.TopicPrefix, clusterSessionTimeout+time.Minute, "process2 alone in every group while process is stopped",
		func(d kadm.DescribedGroup) bool { return onlyMember(d, instance(pb)) })
	time.Sleep(time.Until(stall.at.Add(clusterSessionTimeout + 5*time.Second)))
	logAt := pa.logSize(t)
	stall.restAt = time.Now()
	if err := pa.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("%.1f s: process continued (SIGCONT) after %.1f s stopped; process2 held every partition of every stage %.1f s after the stop",
		since(), stall.restAt.Sub(stall.at).Seconds(), moved.Seconds())
	for !pa.logged(t, logAt, "partitions lost") {
		if time.Since(stall.restAt) > time.Minute {
			dump()
			t.Fatal("process did not log that it lost its partitions within a minute of SIGCONT")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%.1f s: process logged that it lost its partitions %.1f s after SIGCONT", since(), time.Since(stall.restAt).Seconds())
	faults = append(faults, stall)

	// Fault 3: two broker kills, the first while the registry is still down.
	td, err := adm.ListTopics(ctx, names.Billing)
	if err != nil {
		t.Fatal(err)
	}
	p0 := td[names.Billing].Partitions[0]
	if len(p0.Replicas) != 3 {
		t.Fatalf("%s[0] has replicas %v; the test wants replication 3", names.Billing, p0.Replicas)
	}
	txnID := "usagestream-" + pipeline.StageServicePoint + "-" + readInstanceID(t, pa.stateDir, pipeline.StageServicePoint)
	dt, err := adm.DescribeTransactions(ctx, txnID)
	if err != nil {
		t.Fatal(err)
	}
	coord := dt[txnID].Coordinator
	t.Logf("%s[0] leader: node %d; coordinator of %s: node %d", names.Billing, p0.Leader, txnID, coord)
	second := coord
	if second == p0.Leader {
		second = p0.Leader%3 + 1
	}
	for i, victim := range []int32{p0.Leader, second} {
		end := endOffset(ctx, adm, names.Billing)
		k := fault{what: fmt.Sprintf("node %d killed", victim), at: time.Now()}
		ce.node(t, "broker-kill", victim)
		t.Logf("%.1f s: node %d killed (SIGKILL); billing.v1 holds %d records, committed per stage %v", since(), victim,
			end, pl.last().committed)
		// Down long enough for the controller to fence it (4 s without a
		// heartbeat) and move its leaderships and coordinators.
		time.Sleep(8 * time.Second)
		k.restAt = time.Now()
		ce.node(t, "broker-start", victim)
		if i == 0 {
			// The registry must be back before the ISR check.
			if err := <-regBack; err != nil {
				t.Fatalf("registry-start: %v", err)
			}
			during := pl.last().committed
			t.Logf("%.1f s: registry started again after %.1f s down (it answered %.1f s after its start); committed per stage during the outage: %v -> %v",
				since(), regStart.Sub(regStop).Seconds(), time.Since(regStart).Seconds(), before, during)
			progressed := false
			for st, n := range during {
				progressed = progressed || n > before[st]
			}
			if !progressed {
				dump()
				t.Fatalf("no stage committed during the registry outage (%v -> %v): the running stages hold the schema ids they decode and encode, and should not need the registry", before, during)
			}
			faults = append(faults, fault{what: "registry down", at: regStop, restAt: regStart})
		}
		isr := waitFullISR(t, adm, kc.TopicPrefix, 2*time.Minute)
		t.Logf("%.1f s: node %d started again; fully replicated %.1f s later", since(), victim, isr.Seconds())
		faults = append(faults, k)
	}

	select {
	case err := <-ingDone:
		if code := exitCode(err); code != exitRejected {
			dump()
			t.Fatalf("ingest through the faults: exit %d, want %d (every file read, the injected bad rows rejected)\n%s\n%s",
				code, exitRejected, ingOut.String(), ingErr.String())
		}
	case <-time.After(4 * time.Minute):
		dump()
		t.Fatalf("ingest not finished 4 minutes after the last fault (its output: %s)", ingLog.Name())
	}
	t.Logf("%.1f s: ingest done", ingEnded.Sub(started).Seconds())
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	err = pipeline.WaitCaughtUp(wctx, kc)
	wcancel()
	if err != nil {
		dump()
		state := ""
		for _, pr := range []*procRun{pa, pb} {
			select {
			case perr := <-pr.done:
				state += fmt.Sprintf(" %s exited (%v);", pr.name, perr)
			default:
				state += fmt.Sprintf(" %s still running;", pr.name)
			}
		}
		t.Fatalf("the stages did not catch up after the faults (%s): %v%s%s", state, err, stuckRestores(t, pa.logPath), stuckRestores(t, pb.logPath))
	}
	caught := time.Now()
	t.Logf("%.1f s: every stage caught up", since())
	mcancel()
	// The faults overlap (the stall and the registry outage begin
	// together), so each is measured up to the end, not to the next one.
	for i, f := range faults {
		t.Logf("fault %d (%s): first commit after it per stage: %v (ended after %.1f s)",
			i+1, f.what, pl.recovery(f.at, caught), f.restAt.Sub(f.at).Seconds())
	}
	pl.mu.Lock()
	t.Logf("offset samples: %d, failed %d (last: %v)", len(pl.samples), pl.errs, pl.lastErr)
	pl.mu.Unlock()
	for _, pr := range []*procRun{pa, pb} {
		select {
		case err := <-pr.done:
			dump()
			t.Fatalf("%s exited by itself during the faults: %v", pr.name, err)
		default:
		}
		t.Logf("%s: stage restarts %v, transactions aborted %v (rebalance %v), partitions lost logged: %v", pr.name,
			pr.metric("usagestream_processor_restarts_total", ""), pr.metric("usagestream_processor_transactions_aborted_total", ""),
			pr.metric("usagestream_processor_transactions_aborted_total", `reason="rebalance"`), pr.logged(t, 0, "partitions lost"))
	}
	for _, pr := range []*procRun{pa, pb} {
		pr.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, pr := range []*procRun{pa, pb} {
		select {
		case err := <-pr.done:
			if err != nil {
				dump()
				t.Fatalf("%s did not stop cleanly on SIGTERM: %v", pr.name, err)
			}
		case <-time.After(30 * time.Second):
			dump()
			t.Fatalf("%s did not stop within 30 s of SIGTERM", pr.name)
		}
	}

	for _, pr := range []*procRun{pa, pb} {
		t.Logf("what %s logged at WARN and above, by stage and message:\n%s", pr.name, logSummary(t, pr.logPath))
	}
	checkClusterDurability(t, ctx, adm, names.Billing, true)
	checkExactlyOnce(t, kc, files, rows)
	if t.Failed() {
		dump()
	}
}

// stuckRestores names the partitions whose restore from the changelog
// began and never ended, as process logged them: a stage stuck there holds
// its partitions without processing them and without failing.
func stuckRestores(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type restore struct {
		Time, Msg, Processor string
		Partition            int32
		From, To             int64
	}
	open := map[string]restore{}
	for _, l := range strings.Split(string(b), "\n") {
		var r restore
		if json.Unmarshal([]byte(l), &r) != nil {
			continue
		}
		k := fmt.Sprintf("%s[%d]", r.Processor, r.Partition)
		switch r.Msg {
		case "restoring partition from the changelog":
			open[k] = r
		case "partition restored":
			delete(open, k)
		}
	}
	var out []string
	for k, r := range open {
		out = append(out, fmt.Sprintf("stage %s: restore of changelog offsets %d..%d began at %s and never ended", k, r.From, r.To, r.Time))
	}
	if len(out) == 0 {
		return ""
	}
	slices.Sort(out)
	return "\n" + strings.Join(out, "\n") + "\n(a restore whose changelog range ends in an aborted transaction waits forever for records read_committed never returns: see docs/real-kafka.md)"
}

// logSummary counts the JSON log lines at WARN and above by level, stage,
// component and message.
func logSummary(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	counts, example := map[string]int{}, map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		var e struct{ Level, Msg, Processor, Component, Err string }
		if json.Unmarshal([]byte(l), &e) != nil || (e.Level != "WARN" && e.Level != "ERROR") {
			continue
		}
		k := fmt.Sprintf("%s %s %s %q", e.Level, e.Processor, e.Component, e.Msg)
		counts[k]++
		if e.Err != "" {
			example[k] = e.Err // the last one
		}
	}
	var out []string
	for k, n := range counts {
		l := fmt.Sprintf("%5d %s", n, k)
		if e := example[k]; e != "" {
			l += " (last err: " + e[:min(len(e), 200)] + ")"
		}
		out = append(out, l)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "(nothing)"
	}
	return strings.Join(out, "\n")
}

// checkClusterDurability checks what the test relies on: topic (the
// billing topic), the consumer offsets and the transaction state are on all
// three nodes, and a write needs two of them in sync. The two internal
// topics are made by the first group and the first transaction: before
// those, pass afterRun false and they are checked only if they exist.
func checkClusterDurability(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, afterRun bool) {
	t.Helper()
	internal := []string{"__consumer_offsets", "__transaction_state"}
	td, err := adm.ListTopicsWithInternal(ctx, append([]string{topic}, internal...)...)
	if err != nil {
		t.Fatal(err)
	}
	check := []string{topic}
	for _, name := range append([]string{topic}, internal...) {
		d, ok := td[name]
		if name != topic && !afterRun && (!ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition)) {
			continue
		}
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			t.Fatalf("topic %s: %v", name, d.Err)
		}
		for _, p := range d.Partitions {
			if len(p.Replicas) != 3 {
				t.Fatalf("%s[%d] has replicas %v; the cluster must replicate it three times", name, p.Partition, p.Replicas)
			}
		}
		if name == "__transaction_state" {
			check = append(check, name)
		}
	}
	rc, err := adm.DescribeTopicConfigs(ctx, check...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range check {
		r, err := rc.On(name, nil)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			t.Fatalf("the configuration of %s: %v", name, err)
		}
		isr := ""
		for _, c := range r.Configs {
			if c.Key == "min.insync.replicas" {
				isr = c.MaybeValue()
			}
		}
		if isr != "2" {
			t.Fatalf("%s: min.insync.replicas %q, want 2", name, isr)
		}
	}
}

// checkExactlyOnce compares the topics with the pure rules run over files.
func checkExactlyOnce(t *testing.T, kc kafkaconf.Config, files []string, rows int64) {
	t.Helper()
	names := topics.NewNames(kc.TopicPrefix)
	// Ingest: the COMPLETED file event's counts, and every line exactly once.
	var published, rejected int64 = -1, -1
	for _, m := range kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, names.Files)) {
		if m["status"] == "COMPLETED" {
			published, rejected = m["rows_published"].(int64), m["rows_rejected"].(int64)
		}
	}
	if published+rejected != rows {
		t.Fatalf("file event: published %d + rejected %d, the file has %d rows", published, rejected, rows)
	}
	lines := map[int64]int{}
	var nBilling, nRejected int64
	for topic, n := range map[string]*int64{names.Billing: &nBilling, names.Rejected: &nRejected} {
		eachDecoded(t, kc, topic, func(m map[string]any) {
			lines[m["source"].(map[string]any)["line"].(int64)]++
			*n++
		})
	}
	if nBilling != published || nRejected != rejected {
		t.Errorf("read_committed: %d on %s, %d on %s; the file event says %d published, %d rejected",
			nBilling, names.Billing, nRejected, names.Rejected, published, rejected)
	}
	for line := int64(2); line <= rows+1; line++ {
		if lines[line] != 1 {
			t.Fatalf("line %d of the file is on Kafka %d times, want exactly once", line, lines[line])
		}
	}

	// The rules over the same file.
	chain := rules.NewChain(rules.DefaultPolicy())
	var want []string
	wantFinal := map[string]string{}
	err := ingest.EachRow(files, billing.Options{}, func(file string, row *records.BillingRow) error {
		out, err := chain.Apply(row, rules.Source{File: file, Line: row.Line})
		for _, c := range out.Corrections {
			want = append(want, fmt.Sprintf("correction %s %s %s %s:%d", c.ServicePointID, c.Kind, c.DateTo, c.Source.File, c.Source.Line))
		}
		for _, a := range out.Anomalies {
			want = append(want, fmt.Sprintf("anomaly %s %s %v %s:%d", a.ServicePointID, a.Code, a.Cleared, a.Source.File, a.Source.Line))
		}
		for _, a := range out.AccountEvents {
			want = append(want, fmt.Sprintf("account %s %s %s %s:%d", a.ServicePointID, a.AccountID, a.Type, a.Source.File, a.Source.Line))
		}
		for _, e := range out.Eligibility {
			var rs []string
			for _, r := range e.Reasons {
				rs = append(rs, r.Code+"/"+r.Rule+"/"+r.ServicePointID)
			}
			wantFinal[e.CustomerID+" "+e.PremiseID+" "+e.Program] = fmt.Sprintf("%v %s", e.Eligible, strings.Join(rs, ","))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Stage 1: the same events at the same lines, each once.
	var got []string
	ids := map[string]int{}
	event := func(m map[string]any) {
		ids[m["event_id"].(string)]++
	}
	eachDecoded(t, kc, names.Corrections, func(m map[string]any) {
		event(m)
		got = append(got, fmt.Sprintf("correction %s %s %s %s", m["service_point_id"], m["kind"], plain(m["date_to"]), causeLineOf(m)))
	})
	eachDecoded(t, kc, names.Anomalies, func(m map[string]any) {
		event(m)
		got = append(got, fmt.Sprintf("anomaly %s %s %v %s", m["service_point_id"], m["code"], m["cleared"], causeLineOf(m)))
	})
	eachDecoded(t, kc, names.AccountEvents, func(m map[string]any) {
		event(m)
		got = append(got, fmt.Sprintf("account %s %s %s %s", m["service_point_id"], m["account_id"], m["type"], causeLineOf(m)))
	})
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("stage-1 events differ from the rules: %d from the rules, %d on the topics; first differences:\n%s",
			len(want), len(got), firstDiffs(want, got, 20))
	}

	// Stage 2: every (customer, premise, program)'s last event equals the
	// rules' final state.
	gotFinal := map[string]string{}
	nElig := 0
	eachDecoded(t, kc, names.Eligibility, func(m map[string]any) {
		event(m)
		nElig++
		var rs []string
		for _, r := range m["reasons"].([]any) {
			rr := r.(map[string]any)
			rs = append(rs, plain(rr["code"])+"/"+plain(rr["rule"])+"/"+plain(rr["service_point_id"]))
		}
		gotFinal[fmt.Sprintf("%s %s %s", m["customer_id"], m["premise_id"], m["program"])] = fmt.Sprintf("%v %s", m["eligible"], strings.Join(rs, ","))
	})
	if len(gotFinal) != len(wantFinal) {
		t.Errorf("%d subjects×programs on %s, %d from the rules", len(gotFinal), names.Eligibility, len(wantFinal))
	}
	bad := 0
	for k, v := range wantFinal {
		if gotFinal[k] != v {
			if bad++; bad <= 20 {
				t.Errorf("final eligibility of %s: streamed %q, rules %q", k, gotFinal[k], v)
			}
		}
	}
	dups := 0
	for id, n := range ids {
		if n != 1 {
			if dups++; dups <= 20 {
				t.Errorf("event id %s is on the event topics %d times", id, n)
			}
		}
	}
	t.Logf("%d rows: %d published, %d rejected, each line once; %d stage-1 events as the rules give them; %d eligibility events, final state of %d subjects×programs as the rules; %d event ids, none twice",
		rows, published, rejected, len(got), nElig, len(gotFinal), len(ids))
}

// eachDecoded decodes topic (read_committed) in chunks, so 300,000 rows do
// not sit in memory decoded all at once.
func eachDecoded(t *testing.T, kc kafkaconf.Config, topic string, fn func(map[string]any)) {
	t.Helper()
	recs := kafkatest.ReadAll(t, kc, topic)
	for len(recs) > 0 {
		n := min(len(recs), 10_000)
		for _, m := range kafkatest.Decode(t, kc, recs[:n]) {
			fn(m)
		}
		recs = recs[n:]
	}
}

// plain renders an Avro union, date or value as the rules print it.
func plain(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case map[string]any:
		for _, u := range x {
			return plain(u)
		}
		return ""
	case time.Time:
		return x.Format("20060102")
	default:
		return fmt.Sprint(x)
	}
}

func causeLineOf(m map[string]any) string {
	c := m["cause"].(map[string]any)
	return plain(c["file"]) + ":" + plain(c["line"])
}

// firstDiffs lists up to n lines in one sorted list and not the other.
func firstDiffs(want, got []string, n int) string {
	var out []string
	i, j := 0, 0
	for (i < len(want) || j < len(got)) && len(out) < n {
		switch {
		case j == len(got) || (i < len(want) && want[i] < got[j]):
			out = append(out, "- "+want[i])
			i++
		case i == len(want) || got[j] < want[i]:
			out = append(out, "+ "+got[j])
			j++
		default:
			i++
			j++
		}
	}
	return strings.Join(out, "\n")
}

// countRows counts the data rows (lines after the header) of gzip files.
func countRows(t *testing.T, files []string) int64 {
	t.Helper()
	var n int64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			n++
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		n-- // the header
	}
	return n
}

func readInstanceID(t *testing.T, stateDir, stage string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, stage, "instance-id"))
	if err != nil {
		t.Fatalf("the %s stage's instance id: %v", stage, err)
	}
	return strings.TrimSpace(string(b))
}

func endOffset(ctx context.Context, adm *kadm.Client, topic string) int64 {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return -1
	}
	var sum int64
	lo.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
