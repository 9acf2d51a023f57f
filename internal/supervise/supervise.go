// Package supervise keeps a long-running task going: when it fails, it is
// started again after a back-off that grows while it keeps failing, and the
// reason is logged each time. run and process supervise every stage and
// sink with it, so one that fails never takes the others (or the embedded
// broker and registry) down with it, and one that fails at once on every
// start (a crash loop) costs a log line per back-off, not a busy CPU.
package supervise

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Config configures a supervisor.
type Config struct {
	// Name names the task in the logs ("stage servicepoint", "sink jsonl").
	Name string
	// Min and Max bound the back-off between a failure and the next start;
	// it doubles on each failure in a row. Default: 1s and 1m (Max at least
	// Min).
	Min, Max time.Duration
	// Healthy is how long a start must run before a failure counts as a new
	// one, with the back-off back at Min. Default: 1m.
	Healthy time.Duration
	Logger  *slog.Logger // Default: discard.
	// Restarted, when set, is called before each restart (a metric).
	Restarted func()
	// Now and Sleep are the clock; tests replace them. Default: time.Now and
	// a sleep that ends with ctx.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration)
}

// withDefaults returns c with the defaults its fields' docs state in place
// of zero values.
func (c Config) withDefaults() Config {
	if c.Min <= 0 {
		c.Min = time.Second
	}
	if c.Max < c.Min {
		c.Max = max(time.Minute, c.Min)
	}
	if c.Healthy <= 0 {
		c.Healthy = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	return c
}

// Run runs task until ctx ends, starting it again after each failure (the
// error is logged with the back-off before the next start). A task that
// returns nil has finished: Run returns too.
func Run(ctx context.Context, cfg Config, task func(ctx context.Context) error) {
	cfg = cfg.withDefaults()
	backoff := cfg.Min
	for {
		started := cfg.Now()
		err := task(ctx)
		if ctx.Err() != nil || err == nil {
			return
		}
		if cfg.Now().Sub(started) >= cfg.Healthy {
			backoff = cfg.Min // it ran well for a while: a new failure
		}
		// Jitter keeps instances that failed together (a broker lost) from
		// coming back in step.
		wait := backoff + rand.N(backoff/4+1)
		cfg.Logger.Error(cfg.Name+" failed; starting it again after a back-off", "err", err, "retry_in", wait.Round(time.Millisecond).String())
		cfg.Sleep(ctx, wait)
		if ctx.Err() != nil {
			return
		}
		if cfg.Restarted != nil {
			cfg.Restarted()
		}
		cfg.Logger.Info(cfg.Name + " starting again")
		backoff = min(2*backoff, cfg.Max)
	}
}
