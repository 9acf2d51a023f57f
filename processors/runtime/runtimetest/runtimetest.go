// Package runtimetest runs the stages of a test: an instance of each,
// started and stopped with the test.
package runtimetest

import (
	"context"
	"testing"

	"github.com/usagestream/usagestream/processors/runtime"
)

// StartAll runs an instance of each stage until t ends, each made with the
// configuration cfg returns for it and handed to attach (a query API's
// Attach, say; nil for none) before it runs. When t ends the instances are
// stopped, each Run's error is reported, and they are closed: register the
// cleanup of what they were attached to before calling StartAll, so that it
// runs after theirs.
func StartAll(t testing.TB, ctx context.Context, stages []runtime.Stage, cfg func(runtime.Stage) runtime.Config,
	attach func(context.Context, *runtime.Instance)) []*runtime.Instance {
	t.Helper()
	ctx, stop := context.WithCancel(ctx)
	errs := make(chan error, len(stages))
	var insts []*runtime.Instance
	t.Cleanup(func() {
		stop()
		for range insts {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		for _, in := range insts {
			in.Close()
		}
	})
	for _, st := range stages {
		in, err := runtime.NewInstance(cfg(st), st)
		if err != nil {
			t.Fatal(err)
		}
		if attach != nil {
			attach(ctx, in)
		}
		insts = append(insts, in)
		go func() { errs <- in.Run(ctx) }()
	}
	return insts
}
