package runtime

import (
	"context"
	"testing"
	"time"
)

// TestCloseStopsAndWaitsForRun: Close called while Run is live (a caller
// whose later stage failed to start, say) first ends Run and waits for it,
// so Run stops cleanly instead of finding its client and store closed
// under it, and nothing runs on once Close has returned.
func TestCloseStopsAndWaitsForRun(t *testing.T) {
	c := newCluster(t, 2)
	c.produce(t, 10, 0, 100, "")
	in, err := NewInstance(Config{Kafka: c.kc, DataDir: t.TempDir(), WallClockTick: 50 * time.Millisecond}, countingProcessor(c.kc.TopicPrefix))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- in.Run(context.Background()) }()
	waitOutputs(t, c, 100, time.Minute)
	in.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run ended with %v, want a clean stop", err)
		}
	default:
		t.Fatal("Close returned while Run was still live")
	}
	if err := in.Run(context.Background()); err == nil {
		t.Fatal("a closed instance ran again")
	}
	counts, _, _ := c.outputs(t)
	checkExactlyOnce(t, counts, 10, 100)
}
