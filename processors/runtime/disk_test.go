package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// badDisk fails every write of the file system it wraps with errno while
// on: ENOSPC as a full disk, EROFS as one remounted read-only. (The tests
// run as root, whom file permissions do not stop, so chmod cannot make a
// directory read-only for them.)
type badDisk struct {
	errno syscall.Errno
	on    atomic.Bool
}

func (d *badDisk) String() string { return d.errno.Error() }

func (d *badDisk) MaybeError(op errorfs.Op) error {
	if d.on.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
		return fmt.Errorf("%s: %w", op.Path, d.errno)
	}
	return nil
}

// TestFullDiskStopsTheStageAndResumes (issue 14): the disk under a stage's
// store fills up (or turns read-only) while records flow. The stage must stop with an error
// naming the directory and what to do (not hang once Pebble's memtables are
// full, not loop), lose nothing, and once the disk has room again a new run
// on the same directory must catch up with every count exactly once.
func TestFullDiskStopsTheStageAndResumes(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EROFS} {
		t.Run(errno.Error(), func(t *testing.T) { testBadDisk(t, errno) })
	}
}

func testBadDisk(t *testing.T, errno syscall.Errno) {
	c := newCluster(t, 3)
	disk := &badDisk{errno: errno}
	dir := t.TempDir()
	// A small memtable and many keys: Pebble writes to the disk after a few
	// thousand states, not 64 MiB of them.
	cfg := Config{Kafka: c.kc, DataDir: dir, WallClockTick: 50 * time.Millisecond,
		store: storeOptions{fs: errorfs.Wrap(vfs.Default, disk), memTable: 256 << 10}}
	run := func(ctx context.Context) chan error {
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg, countingProcessor(c.kc.TopicPrefix)) }()
		return done
	}
	c.produce(t, 5000, 0, 5000, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := run(ctx)
	waitOutputs(t, c, 5000, time.Minute)

	disk.on.Store(true)
	c.produce(t, 5000, 5000, 20000, "")
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal("the stage still runs a minute after its disk filled up")
	}
	if !errors.Is(err, ErrStoreUnwritable) || !errors.Is(err, errno) || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), "free space") {
		t.Fatalf("Run: %v; want ErrStoreUnwritable naming %s, the disk's error and what to do", err, dir)
	}
	// While the disk is full the stage does not start.
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = <-run(sctx)
	if !errors.Is(err, ErrStoreUnwritable) || sctx.Err() != nil {
		t.Fatalf("Run on the full disk: %v (context: %v), want ErrStoreUnwritable at once", err, sctx.Err())
	}
	scancel()

	disk.on.Store(false)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = run(ctx)
	waitOutputs(t, c, 25000, 2*time.Minute)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after the disk was fixed: %v", err)
	}
	counts, _, _ := c.outputs(t)
	checkExactlyOnce(t, counts, 5000, 25000)
}
