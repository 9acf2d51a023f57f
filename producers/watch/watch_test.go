package watch

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestCompleteFilesInOrderThenMoved(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	write := func(name string, mtime time.Time) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	write("b.gz", old.Add(2*time.Second))
	write("a.gz", old.Add(5*time.Second))
	write("upload.gz.part", old)
	write(".hidden.gz", old)
	write("bad.gz", old.Add(9*time.Second))

	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Run(ctx, dir, func(_ context.Context, p string) (Outcome, string) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, filepath.Base(p))
			if len(got) == 3 {
				cancel()
			}
			if filepath.Base(p) == "bad.gz" {
				return Failed, "line 1, field customer_id: missing"
			}
			return Done, ""
		}, Options{Poll: 20 * time.Millisecond, Settle: 50 * time.Millisecond})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not handle the files")
	}
	if len(got) != 3 || got[0] != "b.gz" || got[1] != "a.gz" || got[2] != "bad.gz" {
		t.Fatalf("handled %v, want b.gz a.gz bad.gz (oldest first; partial and hidden files ignored)", got)
	}
	for _, p := range []string{"done/a.gz", "done/b.gz", "failed/bad.gz", "failed/bad.gz.error.txt", "upload.gz.part"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "failed/bad.gz.error.txt")); string(b) != "line 1, field customer_id: missing\n" {
		t.Fatalf("error file %q", b)
	}
}

func TestGrowingFileWaitsUntilStable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.gz")
	os.WriteFile(p, []byte("a"), 0o644)
	state := map[string]seen{}
	now := time.Now()
	if r, _ := scan(dir, state, time.Second, now); len(r) != 0 {
		t.Fatal("a file seen once is not yet complete")
	}
	os.WriteFile(p, []byte("ab"), 0o644) // still uploading
	if r, _ := scan(dir, state, time.Second, now.Add(2*time.Second)); len(r) != 0 {
		t.Fatal("a file that grew is not complete")
	}
	if r, _ := scan(dir, state, time.Second, now.Add(4*time.Second)); len(r) != 1 {
		t.Fatal("a file unchanged for the settle period is complete")
	}
}
