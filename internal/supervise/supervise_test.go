package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when the supervisor sleeps, so back-offs are
// observed exactly and the test takes no time.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
}

func TestFailingTaskRestartsWithGrowingBackoffAndSaysWhy(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	var logs bytes.Buffer
	restarts := 0
	runs := 0
	Run(context.Background(), Config{
		Name: "stage servicepoint", Min: time.Second, Max: 4 * time.Second, Healthy: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Restarted: func() { restarts++ },
		Now: clk.Now, Sleep: clk.Sleep,
	}, func(context.Context) error {
		runs++
		if runs <= 4 {
			return fmt.Errorf("store: disk full (run %d)", runs)
		}
		return nil // finished
	})
	if runs != 5 || restarts != 4 {
		t.Fatalf("runs %d restarts %d, want 5 and 4", runs, restarts)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, d := range clk.sleeps {
		if d < want[i] || d > want[i]+want[i]/4 {
			t.Errorf("back-off %d = %v, want %v plus at most a quarter of jitter", i, d, want[i])
		}
	}
	out := logs.String()
	if !strings.Contains(out, "stage servicepoint failed") || !strings.Contains(out, "disk full (run 4)") || !strings.Contains(out, "retry_in=") {
		t.Fatalf("the log does not say which task failed, why and when it restarts:\n%s", out)
	}
}

func TestBackoffResetsAfterAHealthyRun(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	runs := 0
	Run(context.Background(), Config{Min: time.Second, Max: time.Minute, Healthy: 10 * time.Second, Now: clk.Now, Sleep: clk.Sleep},
		func(context.Context) error {
			runs++
			switch runs {
			case 1, 2:
				return errors.New("quick failure")
			case 3:
				clk.now = clk.now.Add(time.Minute) // ran well for a minute
				return errors.New("failure after a healthy run")
			case 4:
				return errors.New("quick failure")
			}
			return nil
		})
	// 1s, 2s, then reset to 1s after the healthy run, then 2s.
	if len(clk.sleeps) != 4 || clk.sleeps[2] > time.Second+time.Second/4 || clk.sleeps[3] < 2*time.Second {
		t.Fatalf("back-offs %v: want 1s 2s 1s 2s (plus jitter)", clk.sleeps)
	}
}

func TestStopEndsTheBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	done, failed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Min: time.Hour}, func(context.Context) error {
			if runs++; runs == 1 {
				close(failed)
			}
			return errors.New("fails")
		})
	}()
	<-failed // Run is in (or about to enter) its hour of back-off
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a stop during the back-off did not end Run")
	}
	if runs != 1 {
		t.Fatalf("%d runs, want 1 (no restart after the stop)", runs)
	}
}
