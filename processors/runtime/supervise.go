package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/usagestream/usagestream/internal/supervise"
)

// SuperviseConfig says how a supervised stage restarts.
type SuperviseConfig struct {
	// MinBackoff and MaxBackoff bound the wait before a restart (defaults 1s
	// and 1m, see internal/supervise).
	MinBackoff, MaxBackoff time.Duration
	// Started, when set, is called with each new instance before it runs
	// (the query API attaches it to read its state).
	Started func(*Instance)
}

// Supervise runs stage st until ctx ends. The first instance is opened
// before Supervise returns, so a configuration error (a state directory that
// cannot be created, a broker that cannot be reached) is returned at once.
// After that, an instance that fails is closed and a fresh one opened in its
// place after a back-off, with the reason logged and
// usagestream_processor_restarts_total counted: it restores its state from
// the store (or the changelog) and goes on from the last committed
// transaction, so a restart changes no output. A failure no restart mends
// (ErrUndeclaredOutput, ErrRecordRejected) stops the stage instead, with the reason logged.
// The returned wait blocks until the stage has stopped and its instance is
// closed.
func Supervise(ctx context.Context, cfg Config, st Stage, sc SuperviseConfig) (wait func(), err error) {
	cfg.defaults(st.name()) // one Metrics for every instance
	in, err := NewInstance(cfg, st)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		supervise.Run(ctx, supervise.Config{
			Name: "stage " + st.name(), Min: sc.MinBackoff, Max: sc.MaxBackoff, Logger: cfg.Logger,
			Restarted: func() { cfg.Metrics.Restarted(st.name()) },
		}, func(ctx context.Context) error {
			if in == nil {
				var err error
				if in, err = NewInstance(cfg, st); err != nil {
					return fmt.Errorf("opening the stage again: %w", err)
				}
			}
			if sc.Started != nil {
				sc.Started(in)
			}
			err := in.Run(ctx)
			// Closed before the next one opens: it holds the store's lock
			// and its transactional id.
			in.Close()
			in = nil
			if permanent(err) {
				cfg.Logger.Error("stage stopped, not restarted: it would fail the same way after a restart; fix what the error says, then start it again",
					"stage", st.name(), "err", err)
				return nil
			}
			return err
		})
		if in != nil {
			in.Close()
		}
	}()
	return func() { <-done }, nil
}
