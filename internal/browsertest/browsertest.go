// Package browsertest drives a headless Chromium for the tests of the pages
// usagestream serves or writes (the validate report, the web console): one
// way to find the browser, start it and watch what a page does wrong, so
// that every page is held to the same checks.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Path is the browser to test with: $USAGESTREAM_CHROMIUM (exported by
// scripts/test.d/30-chromium.sh), else /usr/bin/chromium. Without one the
// test fails on CI (CI=true) and is skipped elsewhere.
func Path(t testing.TB) string {
	t.Helper()
	path := os.Getenv("USAGESTREAM_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (%v): run `make test`, whose lane 30-chromium installs Debian's chromium, or apt-get install chromium", path, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// Browser is a started headless Chromium and what it saw.
type Browser struct {
	// Ctx runs actions in the browser's tab (chromedp.Run, chromedp.Do);
	// it has no deadline: bound the actions with one of their own.
	Ctx    context.Context
	cancel func()
	wg     sync.WaitGroup

	mu       sync.Mutex
	problems []string
	requests []string
}

// Start starts the browser at path with a fresh profile and a 1280 x 900
// window, and watches the tab: a console message other than log, info or
// debug, an HTTP answer of 400 or more, and a request that failed are
// problems; every request's URL is kept. t's cleanup stops the browser.
func Start(t testing.TB, path string) *Browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx, cancel: func() { cancelTab(); cancelAlloc() }}
	t.Cleanup(b.Stop)
	// The first Do starts the browser, which lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	watch := func(events func(yield func(string, bool) bool)) {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for p, isRequest := range events {
				b.mu.Lock()
				if isRequest {
					b.requests = append(b.requests, p)
				} else {
					b.problems = append(b.problems, p)
				}
				b.mu.Unlock()
			}
		}()
	}
	console := chromedp.Console(ctx)
	watch(func(yield func(string, bool) bool) {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleLog && m.Type != "info" && m.Type != "debug" && !yield(fmt.Sprintf("console %s: %s", m.Type, m.Text), false) {
				return
			}
		}
	})
	sent := chromedp.Events(ctx, network.RequestWillBeSent)
	watch(func(yield func(string, bool) bool) {
		for e, err := range sent {
			if err != nil || !yield(e.Request.URL, true) {
				return
			}
		}
	})
	answered := chromedp.Events(ctx, network.ResponseReceived)
	watch(func(yield func(string, bool) bool) {
		for e, err := range answered {
			if err != nil {
				return
			}
			if e.Response.Status >= 400 && !yield(fmt.Sprintf("HTTP %d for %s", int(e.Response.Status), e.Response.URL), false) {
				return
			}
		}
	})
	failed := chromedp.Events(ctx, network.LoadingFailed)
	watch(func(yield func(string, bool) bool) {
		for e, err := range failed {
			if err != nil || !yield(fmt.Sprintf("request failed: %s %s", e.ErrorText, e.BlockedReason), false) {
				return
			}
		}
	})
	return b
}

// Stop lets late console messages arrive, stops the browser and waits for
// the watchers; Problems and Requests are final after it. Stopping twice
// is harmless.
func (b *Browser) Stop() {
	time.Sleep(300 * time.Millisecond)
	b.cancel()
	b.wg.Wait()
}

// Problems are what went wrong in the page so far (see Start).
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// Requests are the URLs the page requested so far.
func (b *Browser) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}
