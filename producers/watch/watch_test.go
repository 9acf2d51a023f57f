package watch

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fast keeps the tests quick: a file is complete after 50ms unchanged.
var fast = Options{Poll: 10 * time.Millisecond, Settle: 50 * time.Millisecond}

// runWatch runs the watcher until until() holds (checked after each handled
// file and every few milliseconds) or 5 s pass, and returns the names
// handled in order.
func runWatch(t *testing.T, dir string, o Options, h Handler, until func() bool) []string {
	t.Helper()
	if h == nil {
		h = func(context.Context, string) (Outcome, string) { return Done, "" }
	}
	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, dir, func(ctx context.Context, p string) (Outcome, string) {
			mu.Lock()
			got = append(got, filepath.Base(p))
			mu.Unlock()
			return h(ctx, p)
		}, o)
	}()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), got...)
		case <-deadline:
			t.Fatal("the watcher did not get there in 5 s")
		case <-time.After(5 * time.Millisecond):
			if until() {
				cancel()
			}
		}
	}
}

func present(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Lstat(p)
	return err == nil
}

func write(t *testing.T, p, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		os.Chtimes(p, mtime, mtime)
	}
}

func TestCompleteFilesInOrderThenMoved(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	write(t, filepath.Join(dir, "b.gz"), "x", old.Add(2*time.Second))
	write(t, filepath.Join(dir, "a.gz"), "x", old.Add(5*time.Second))
	write(t, filepath.Join(dir, "upload.gz.part"), "x", old)
	write(t, filepath.Join(dir, "upload.gz.filepart"), "x", old)
	write(t, filepath.Join(dir, ".hidden.gz"), "x", old)
	write(t, filepath.Join(dir, "bad.gz"), "x", old.Add(9*time.Second))

	got := runWatch(t, dir, fast, func(_ context.Context, p string) (Outcome, string) {
		if filepath.Base(p) == "bad.gz" {
			return Failed, "line 1, field customer_id: missing"
		}
		return Done, ""
	}, func() bool { return present(t, filepath.Join(dir, "failed/bad.gz.error.txt")) })
	if strings.Join(got, " ") != "b.gz a.gz bad.gz" {
		t.Fatalf("handled %v, want b.gz a.gz bad.gz (oldest first; partial and hidden files ignored)", got)
	}
	for _, p := range []string{"done/a.gz", "done/b.gz", "failed/bad.gz", "failed/bad.gz.error.txt", "upload.gz.part", "upload.gz.filepart", ".hidden.gz"} {
		if !present(t, filepath.Join(dir, p)) {
			t.Fatalf("%s is missing", p)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "failed/bad.gz.error.txt"))
	if string(b) != "file: bad.gz\nmoved to: bad.gz\nerror: line 1, field customer_id: missing\n" {
		t.Fatalf("error file %q", b)
	}
}

func TestGrowingFileWaitsUntilStable(t *testing.T) {
	dir := t.TempDir()
	w, err := open(dir, Options{Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	p := filepath.Join(dir, "f.gz")
	os.WriteFile(p, []byte("a"), 0o644)
	now := time.Now()
	if r, _ := w.scan(now); len(r) != 0 {
		t.Fatal("a file seen once is not yet complete")
	}
	os.WriteFile(p, []byte("ab"), 0o644) // still uploading
	if r, _ := w.scan(now.Add(2 * time.Second)); len(r) != 0 {
		t.Fatal("a file that grew is not complete")
	}
	if r, _ := w.scan(now.Add(4 * time.Second)); len(r) != 1 {
		t.Fatal("a file unchanged for the settle period is complete")
	}
}

// TestPausedUploadThroughOneHandleIsTakenWhole: an SFTP upload writes
// through one open handle; a pause longer than the poll interval (but
// shorter than the settle time) must not make the half-written file look
// complete.
func TestPausedUploadThroughOneHandleIsTakenWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.tsv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("first half\n")
	var sizes []int64
	var mu sync.Mutex
	o := Options{Poll: 10 * time.Millisecond, Settle: 300 * time.Millisecond}
	go func() {
		time.Sleep(150 * time.Millisecond) // > 10 poll intervals
		f.WriteString("second half\n")
		f.Close()
	}()
	runWatch(t, dir, o, func(_ context.Context, p string) (Outcome, string) {
		st, _ := os.Stat(p)
		mu.Lock()
		sizes = append(sizes, st.Size())
		mu.Unlock()
		return Done, ""
	}, func() bool { return present(t, filepath.Join(dir, "done/f.tsv")) })
	if len(sizes) != 1 || sizes[0] != int64(len("first half\nsecond half\n")) {
		t.Fatalf("taken with sizes %v, want once, whole (%d bytes)", sizes, len("first half\nsecond half\n"))
	}
}

func TestSymlinkedDoneOrFailedFolderIsRefused(t *testing.T) {
	for _, sub := range []string{"done", "failed"} {
		t.Run(sub, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			if err := os.Symlink(outside, filepath.Join(dir, sub)); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "a.gz"), "x", time.Time{})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			called := false
			err := Run(ctx, dir, func(context.Context, string) (Outcome, string) { called = true; return Failed, "x" }, fast)
			if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), "--"+sub+"-dir") {
				t.Fatalf("Run: %v, want a refusal naming the symlink and --%s-dir", err, sub)
			}
			if called {
				t.Fatal("a file was handled although the folder is a symlink")
			}
			if es, _ := os.ReadDir(outside); len(es) != 0 {
				t.Fatalf("written outside the drop folder: %v", es)
			}
		})
	}
}

func TestPlantedErrorFileSymlinkIsNotWrittenThrough(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "authorized_keys")
	write(t, target, "original\n", time.Time{})
	os.Mkdir(filepath.Join(dir, "failed"), 0o750)
	if err := os.Symlink(target, filepath.Join(dir, "failed", "bad.gz.error.txt")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "bad.gz"), "x", time.Time{})
	runWatch(t, dir, fast, func(context.Context, string) (Outcome, string) { return Failed, "ssh-ed25519 AAAA attacker" },
		func() bool { return present(t, filepath.Join(dir, "failed/bad.gz.1.error.txt")) })
	if b, _ := os.ReadFile(target); string(b) != "original\n" {
		t.Fatalf("the symlink target was written: %q", b)
	}
	if !present(t, filepath.Join(dir, "failed/bad.gz.1")) {
		t.Fatal("the failed file was not moved beside a fresh error file")
	}
}

func TestSymlinkedInputIsAFileFaultNotFollowed(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret.tsv")
	write(t, secret, "secret\n", time.Time{})
	if err := os.Symlink(secret, filepath.Join(dir, "opwr_gec_res_v1_full_20250101000000.tsv")); err != nil {
		t.Fatal(err)
	}
	got := runWatch(t, dir, fast, nil, func() bool {
		return present(t, filepath.Join(dir, "failed/opwr_gec_res_v1_full_20250101000000.tsv.error.txt"))
	})
	if len(got) != 0 {
		t.Fatalf("the handler was given a symlink: %v", got)
	}
	st, err := os.Lstat(filepath.Join(dir, "failed/opwr_gec_res_v1_full_20250101000000.tsv"))
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link itself should be in failed/: %v %v", st, err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "secret\n" {
		t.Fatal("the link target changed")
	}
	msg, _ := os.ReadFile(filepath.Join(dir, "failed/opwr_gec_res_v1_full_20250101000000.tsv.error.txt"))
	if !strings.Contains(string(msg), "symbolic link") {
		t.Fatalf("error file %q does not say it is a link", msg)
	}
}

func TestNewlineInNameIsQuotedOnOneLine(t *testing.T) {
	dir := t.TempDir()
	name := "x\nssh-ed25519 AAAA attacker\x1b[2J.gz"
	write(t, filepath.Join(dir, name), "x", time.Time{})
	runWatch(t, dir, fast, func(_ context.Context, p string) (Outcome, string) {
		return Failed, "file " + filepath.Base(p) + ": bad header" // errors often quote the name raw
	}, func() bool { return present(t, filepath.Join(dir, "failed", name+".error.txt")) })
	b, _ := os.ReadFile(filepath.Join(dir, "failed", name+".error.txt"))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "file: "+strconv.Quote(name) || strings.Contains(string(b), "\x1b") {
		t.Fatalf("error file %q: want 3 lines, the name quoted, no raw control characters", b)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "file: ") && !strings.HasPrefix(l, "moved to: ") && !strings.HasPrefix(l, "error: ") {
			t.Fatalf("a line the uploader chose: %q", l)
		}
	}
}

func TestExistingFilesInFailedAreNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "failed"), 0o750)
	write(t, filepath.Join(dir, "failed", "bad.gz"), "earlier upload", time.Time{})
	write(t, filepath.Join(dir, "failed", "bad.gz.1.error.txt"), "operator notes\n", time.Time{})
	write(t, filepath.Join(dir, "bad.gz"), "new upload", time.Time{})
	runWatch(t, dir, fast, func(context.Context, string) (Outcome, string) { return Failed, "broken" },
		func() bool { return present(t, filepath.Join(dir, "failed/bad.gz.2.error.txt")) })
	for p, want := range map[string]string{
		"failed/bad.gz":             "earlier upload",
		"failed/bad.gz.1.error.txt": "operator notes\n",
		"failed/bad.gz.2":           "new upload",
	} {
		if b, _ := os.ReadFile(filepath.Join(dir, p)); string(b) != want {
			t.Fatalf("%s = %q, want %q", p, b, want)
		}
	}
}

func TestTempNameConventionIsConfigurable(t *testing.T) {
	dir := t.TempDir()
	o := fast
	o.Ignore = []string{"*.uploading"}
	write(t, filepath.Join(dir, "a.gz.uploading"), "x", time.Time{})
	write(t, filepath.Join(dir, "b.gz"), "x", time.Time{})
	got := runWatch(t, dir, o, nil, func() bool { return present(t, filepath.Join(dir, "done/b.gz")) })
	if strings.Join(got, " ") != "b.gz" || !present(t, filepath.Join(dir, "a.gz.uploading")) {
		t.Fatalf("handled %v; a file under its temporary name must be left alone", got)
	}
	os.Rename(filepath.Join(dir, "a.gz.uploading"), filepath.Join(dir, "a.gz"))
	got = runWatch(t, dir, o, nil, func() bool { return present(t, filepath.Join(dir, "done/a.gz")) })
	if strings.Join(got, " ") != "a.gz" {
		t.Fatalf("after the rename handled %v, want a.gz", got)
	}
}

func TestMarkerConventionWaitsForTheMarker(t *testing.T) {
	dir, doneDir, failedDir := t.TempDir(), t.TempDir(), t.TempDir()
	o := Options{Poll: 10 * time.Millisecond, Settle: 10 * time.Millisecond, Ready: ReadyMarker, DoneDir: doneDir, FailedDir: failedDir}
	write(t, filepath.Join(dir, "a.gz"), "x", time.Time{})
	start := time.Now()
	got := runWatch(t, dir, o, nil, func() bool { return time.Since(start) > 200*time.Millisecond })
	if len(got) != 0 {
		t.Fatalf("taken without its marker: %v", got)
	}
	write(t, filepath.Join(dir, "a.gz.done"), "", time.Time{})
	got = runWatch(t, dir, o, nil, func() bool { return present(t, filepath.Join(doneDir, "a.gz")) })
	if strings.Join(got, " ") != "a.gz" {
		t.Fatalf("handled %v, want a.gz (the marker itself is not a file to ingest)", got)
	}
	if present(t, filepath.Join(dir, "a.gz.done")) || present(t, filepath.Join(dir, "done")) {
		t.Fatal("the marker must be removed with its file, and done/ given elsewhere is not created in the drop folder")
	}
}

func TestDisplayNameQuotesControlCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"opwr_gec_res_v1_full_20250101000000.gz": "opwr_gec_res_v1_full_20250101000000.gz",
		"a\x1b]0;owned\x07.gz":                   `"a\x1b]0;owned\a.gz"`,
		"a\nb":                                   `"a\nb"`,
		"with space.gz":                          `"with space.gz"`,
		"bad\xffutf8":                            `"bad\xffutf8"`,
	} {
		if got := DisplayName(in); got != want {
			t.Errorf("DisplayName(%q) = %s, want %s", in, got, want)
		}
	}
	if got := OneLine("file a\nb\x1b[2J: bad"); got != `file a\nb\x1b[2J: bad` {
		t.Errorf("OneLine = %q", got)
	}
}
