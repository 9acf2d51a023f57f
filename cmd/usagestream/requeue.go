package main

// replay --quarantine: re-feeding the records a stage (or a sink) put in its
// quarantine topic back to their source topics, addressed to that consumer
// only (processors/replay's PlanRefeed; this is its flags and output).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/processors/replay"
)

// requeue re-feeds the quarantine topic of c.Quarantine from where the
// last re-feed stopped (or --since, if later) to the topic's end now.
func (c *replayCmd) requeue(ctx context.Context, kc kafkaconf.Config, out io.Writer) error {
	if len(c.Stages) > 0 || len(c.Offsets) > 0 {
		return errors.New("--quarantine re-feeds one quarantine topic: give no stages and no --offsets")
	}
	if err := replay.CheckConsumer(c.Quarantine); err != nil {
		return fmt.Errorf("--quarantine %w", err)
	}
	opts := replay.RefeedOptions{Kafka: kc, Consumer: c.Quarantine}
	if c.Since != "" {
		at, err := parseWhen(c.Since, time.Now())
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		opts.Since = at
	}
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := replay.PlanRefeed(ctx, kadm.NewClient(cl), opts)
	if err != nil {
		return err
	}
	if c.DryRun {
		fmt.Fprint(out, r)
		fmt.Fprintln(out, "Dry run: nothing was re-fed.")
		return nil
	}
	fmt.Fprint(out, r.Summary())
	res, err := r.Apply(ctx)
	if err != nil {
		return err
	}
	fmt.Fprint(out, res)
	return nil
}
