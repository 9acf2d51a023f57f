package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// crashAt returns the crash hook of a child process told
// USAGESTREAM_RUNTIME_CRASH=POINT[:N]: it SIGKILLs its own process the N-th
// time (default 1) the runtime reaches POINT, as a power cut there would.
func crashAt(spec string) func(string) {
	if spec == "" {
		return nil
	}
	point, nth, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(nth)
	if err != nil {
		n = 1
	}
	var reached atomic.Int32
	return func(p string) {
		if p == point && int(reached.Add(1)) == n {
			fmt.Fprintf(os.Stderr, "child: crashing at %s (#%d)\n", p, n)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way; nothing more runs
		}
	}
}

// waitCrashed waits for a child started with a crash point to kill itself
// there, and fails the test if it never reaches it.
func waitCrashed(t *testing.T, cmd *exec.Cmd, point string, timeout time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		kill(cmd)
		t.Fatalf("the child never crashed at %s within %s", point, timeout)
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended with %v, want killed at %s", cmd.ProcessState, point)
	}
}

// TestCrashAtEachStep kills the processor deterministically at each step
// of the commit protocol, during a restore and during a rebalance, then
// starts it again on the same data directory: the output is exactly the
// expected one, no event lost or doubled. Each subtest logs how long the
// restarted instance took to catch up (README "Guarantees under faults").
func TestCrashAtEachStep(t *testing.T) {
	const keys, half = 40, 1500
	for _, tc := range []struct {
		point string
		nth   int
	}{
		{crashProduced, 3},   // transaction open: the restart fences and aborts it
		{crashCommitted, 3},  // committed, Pebble behind: restore repairs it from the changelog
		{crashPersistMid, 3}, // a Pebble batch half built: never committed, as above
		{crashRestore, 1},    // the store lost, its rebuild cut short: the next restore goes on
		{crashAssigned, 1},   // partitions given, nothing restored or processed yet
		{crashRevoked, 1},    // a second instance joins; the first dies giving partitions up
	} {
		t.Run(tc.point, func(t *testing.T) {
			c := newCluster(t, 4)
			dir := t.TempDir()
			crash := fmt.Sprintf("USAGESTREAM_RUNTIME_CRASH=%s:%d", tc.point, tc.nth)
			small := "USAGESTREAM_RUNTIME_MAXPOLL=100" // many transactions, each over several partitions
			c.produce(t, keys, 0, half, "")
			var other *exec.Cmd
			switch tc.point {
			case crashRestore:
				// A first life builds the state; then the disk is lost,
				// so the next start restores from the changelog.
				cmd := startChild(t, c, dir)
				waitOutputs(t, c, half, time.Minute)
				kill(cmd)
				if err := os.RemoveAll(filepath.Join(dir, "counter", "pebble")); err != nil {
					t.Fatal(err)
				}
				waitCrashed(t, startChild(t, c, dir, crash), tc.point, time.Minute)
			case crashRevoked:
				cmd := startChild(t, c, dir, crash, small)
				waitOutputs(t, c, 100, time.Minute)
				other = startChild(t, c, t.TempDir(), small) // joins: a rebalance revokes some of the first's partitions
				waitCrashed(t, cmd, tc.point, time.Minute)
			default:
				waitCrashed(t, startChild(t, c, dir, crash, small), tc.point, time.Minute)
			}
			c.produce(t, keys, half, half, "")
			restarted := time.Now()
			cmd := startChild(t, c, dir)
			waitOutputs(t, c, 2*half, 2*time.Minute)
			took := time.Since(restarted)
			kill(cmd)
			if other != nil {
				kill(other)
			}
			counts, _, n := c.outputs(t)
			checkExactlyOnce(t, counts, keys, 2*half)
			t.Logf("crash at %s: restarted and caught up in %s; %d outputs, each exactly once", tc.point, took.Round(10*time.Millisecond), n)
		})
	}
}
