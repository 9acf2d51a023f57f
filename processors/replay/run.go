package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"golang.org/x/sync/errgroup"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/runtime"
)

// RunOptions say how Plan.Run runs the stages.
type RunOptions struct {
	// StateDir holds the stages' stores; "": a temporary directory, removed
	// afterwards.
	StateDir string
	// Timeout bounds the run; the stages must have caught up by then.
	Timeout time.Duration
	// Metrics, when set, are the metrics the stages update (served by the
	// caller); nil: metrics of the run's own.
	Metrics *runtime.Metrics
	// Progress gets a line per stage caught up; nil: nothing.
	Progress io.Writer
}

// Result is what a run did.
type Result struct {
	Took                  time.Duration
	RecordsIn, RecordsOut float64
}

func (r Result) String() string {
	return fmt.Sprintf("replay done in %s: %.0f records in, %.0f records out", r.Took.Round(time.Millisecond), r.RecordsIn, r.RecordsOut)
}

// ErrTimeout says the stages had not caught up when RunOptions.Timeout ran out.
var ErrTimeout = errors.New("the stages did not catch up in time")

// Run runs the planned stages (after Apply) until each has caught up with
// the end its input had when it was reached, stages in data-flow order, so a
// stage waits for the one before it.
func (plan *Plan) Run(ctx context.Context, ro RunOptions) (Result, error) {
	popts := []pipeline.Option{pipeline.ReadContract(plan.opts.ReadContract)}
	if plan.shadow {
		// The shadow's stages read the live input: they must know its
		// names, as they tell their inputs apart by them.
		popts = append(popts, pipeline.ExternalInputsFrom(plan.live.Prefix))
	}
	p, err := pipeline.New(ctx, plan.kc, plan.opts.Policy, popts...)
	if err != nil {
		return Result{}, err
	}
	byName := map[string]runtime.Stage{}
	for _, st := range p.Stages() {
		byName[runtime.StageName(st)] = st
	}
	dir := ro.StateDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "usagestream-replay-"); err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(dir)
	}
	m := ro.Metrics
	if m == nil {
		m = runtime.NewMetrics(nil)
	}
	progress := ro.Progress
	if progress == nil {
		progress = io.Discard
	}
	rctx, cancel := context.WithTimeout(ctx, ro.Timeout)
	defer cancel()
	// Every stage is opened before any runs: a stage that cannot start
	// fails the run before the others consume anything. Close stops and
	// waits for a live Run (runtime.Instance.Close).
	var insts []*runtime.Instance
	defer func() {
		for _, in := range insts {
			in.Close()
		}
	}()
	in0, out0 := m.RecordTotals()
	for _, sp := range plan.stages {
		st := byName[sp.name]
		if plan.shadow {
			st = runtime.WithInputs(st, sp.inputs)
		} else if len(sp.dropped) > 0 {
			st = runtime.WithoutOutputs(st, sp.dropped...)
		}
		ts := plan.run.MustStage(sp.name)
		m.Declare(sp.name, sp.inputs, ts.Outputs)
		in, err := runtime.NewInstance(runtime.Config{Kafka: plan.kc, Group: sp.group, DataDir: dir, Logger: plan.opts.Log, Metrics: m}, st)
		if err != nil {
			return Result{}, err
		}
		insts = append(insts, in)
	}
	eg, ectx := errgroup.WithContext(rctx)
	for _, in := range insts {
		eg.Go(func() error { return in.Run(ectx) })
	}
	started := time.Now()
	eg.Go(func() error {
		defer cancel()
		// Stages are waited for in data-flow order; should a later stage
		// feed an earlier one, a pass ends with that one's input grown: the
		// stages are waited for again until a pass sees no internal topic
		// grow. External input (live ingestion) is not waited for.
		for pass := 1; ; pass++ {
			before, err := plan.internalEnds(ectx)
			if err != nil {
				return err
			}
			for _, sp := range plan.stages {
				for _, in := range sp.inputs {
					if err := consume.WaitCaughtUp(ectx, plan.kc, sp.group, in); err != nil {
						return fmt.Errorf("stage %s did not catch up on %s: %w", sp.name, in, err)
					}
				}
				if pass == 1 {
					fmt.Fprintf(progress, "stage %s caught up (%s)\n", sp.name, time.Since(started).Round(time.Millisecond))
				}
			}
			after, err := plan.internalEnds(ectx)
			if err != nil {
				return err
			}
			if maps.Equal(before, after) {
				return nil
			}
		}
	})
	err = eg.Wait()
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return Result{}, err
	}
	if rctx.Err() != nil && !errors.Is(rctx.Err(), context.Canceled) {
		return Result{}, fmt.Errorf("%w (within %s)", ErrTimeout, ro.Timeout)
	}
	// The replay's members leave at once, so that the processors started
	// next get their partitions without waiting out a session timeout.
	cl, err := plan.kc.NewClient(ctx)
	if err == nil {
		adm := kadm.NewClient(cl)
		for _, in := range insts {
			if id, err := in.MemberID(); err == nil {
				_, _ = adm.LeaveGroup(ctx, kadm.LeaveGroup(in.Group()).InstanceIDs(id))
			}
		}
		cl.Close()
	}
	in1, out1 := m.RecordTotals()
	return Result{Took: time.Since(started), RecordsIn: in1 - in0, RecordsOut: out1 - out0}, nil
}

// internalEnds are the end offsets of the stages' internal inputs (the
// repartition topics between them).
func (plan *Plan) internalEnds(ctx context.Context) (map[string]int64, error) {
	var internal []string
	for _, sp := range plan.stages {
		for _, in := range sp.inputs {
			if plan.run.Internal(in) {
				internal = append(internal, in)
			}
		}
	}
	out := map[string]int64{}
	if len(internal) == 0 {
		return out, nil
	}
	cl, err := plan.kc.NewClient(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, internal...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %v: %w", internal, err)
	}
	ends.Each(func(o kadm.ListedOffset) { out[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.Offset })
	return out, nil
}
