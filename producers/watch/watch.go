// Package watch turns a drop folder (as an SFTP upload directory would be)
// into a stream of complete files: a file is taken once its size and
// modification time have not changed for a settle period, in the order
// received, and moved to done/ or failed/ beside the files once handled.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Outcome is what the handler decided for a file.
type Outcome int

const (
	Done   Outcome = iota // moved to done/
	Failed                // moved to failed/, with <name>.error.txt
	Retry                 // left in place, tried again on a later scan
)

// Handler ingests one file. Detail is written next to a failed file.
type Handler func(ctx context.Context, path string) (o Outcome, detail string)

// Options tune the watcher.
type Options struct {
	Poll   time.Duration // time between scans; default 2s
	Settle time.Duration // how long a file must stay unchanged; default 2s
	Logger *slog.Logger
}

// partial reports names that uploaders use while a transfer is in progress.
func partial(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(name, ".") || strings.HasSuffix(lower, ".part") || strings.HasSuffix(lower, ".tmp") ||
		strings.HasSuffix(lower, ".filepart") || strings.HasSuffix(lower, ".partial") || strings.HasSuffix(lower, ".error.txt")
}

type seen struct {
	size  int64
	mtime time.Time
	since time.Time
}

// Run watches dir until ctx ends. Files are handled one at a time, oldest
// modification first (the order received), then by name.
func Run(ctx context.Context, dir string, h Handler, o Options) error {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for _, sub := range []string{"done", "failed"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return fmt.Errorf("creating %s/ in the drop folder %s: %w", sub, dir, err)
		}
	}
	state := map[string]seen{}
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	for {
		ready, err := scan(dir, state, o.Settle, time.Now())
		if err != nil {
			return err
		}
		for _, p := range ready {
			if ctx.Err() != nil {
				return nil
			}
			out, detail := h(ctx, p)
			if err := settle(dir, p, out, detail); err != nil {
				o.Logger.Error("could not move a handled file; it will be handled again", "file", filepath.Base(p), "err", err)
				continue
			}
			delete(state, p)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func scan(dir string, state map[string]seen, settleFor time.Duration, now time.Time) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the drop folder %s: %w", dir, err)
	}
	type cand struct {
		path  string
		mtime time.Time
	}
	var ready []cand
	present := map[string]bool{}
	for _, e := range entries {
		if !e.Type().IsRegular() || partial(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil {
			continue // removed between ReadDir and Info
		}
		present[p] = true
		s, ok := state[p]
		if !ok || s.size != info.Size() || !s.mtime.Equal(info.ModTime()) {
			state[p] = seen{size: info.Size(), mtime: info.ModTime(), since: now}
			continue
		}
		if now.Sub(s.since) >= settleFor {
			ready = append(ready, cand{p, info.ModTime()})
		}
	}
	for p := range state {
		if !present[p] {
			delete(state, p)
		}
	}
	sort.Slice(ready, func(a, b int) bool {
		if !ready[a].mtime.Equal(ready[b].mtime) {
			return ready[a].mtime.Before(ready[b].mtime)
		}
		return ready[a].path < ready[b].path
	})
	out := make([]string, len(ready))
	for i, c := range ready {
		out[i] = c.path
	}
	return out, nil
}

func settle(dir, path string, out Outcome, detail string) error {
	var sub string
	switch out {
	case Done:
		sub = "done"
	case Failed:
		sub = "failed"
	default:
		return errors.New("left for a retry")
	}
	dst := filepath.Join(dir, sub, filepath.Base(path))
	if _, err := os.Stat(dst); err == nil {
		dst = filepath.Join(dir, sub, time.Now().UTC().Format("20060102T150405")+"-"+filepath.Base(path))
	}
	if err := os.Rename(path, dst); err != nil {
		return err
	}
	if out == Failed && detail != "" {
		return os.WriteFile(dst+".error.txt", []byte(detail+"\n"), 0o640)
	}
	return nil
}
