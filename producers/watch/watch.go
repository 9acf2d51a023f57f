// Package watch turns a drop folder (as an SFTP upload directory would be)
// into a stream of complete files, in the order received, and moves each to
// done/ or failed/ once handled.
//
// Whoever can upload controls the folder's content, so nothing in it is
// trusted: done/ and failed/ must be real directories (a symlink there is
// refused, never followed), they are used through descriptors opened with
// O_NOFOLLOW, a file is moved without replacing anything (RENAME_NOREPLACE),
// error files are created with O_EXCL|O_NOFOLLOW and never overwritten, a
// symlink or special file dropped in the folder is a file fault moved to
// failed/ (its target is never read), and names are shown with DisplayName.
//
// A file is complete when, depending on Options.Ready, either it has not
// changed in size or modification time for Options.Settle (uploads in
// progress under a temporary name matching Options.Ignore are skipped), or
// its marker NAME.done exists.
package watch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
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

// Ready is how the watcher tells a complete upload from one in progress.
type Ready string

const (
	// ReadySettle takes a file once its size and modification time have not
	// changed for Options.Settle (uploads in progress under a temporary name
	// that matches Options.Ignore are never taken).
	ReadySettle Ready = "settle"
	// ReadyMarker takes NAME only once the uploader has written the marker
	// NAME<MarkerSuffix> (NAME.done), and NAME is unchanged since the scan
	// before; the marker is removed once NAME was moved.
	ReadyMarker Ready = "marker"
)

// DefaultSettle is long enough to ride out an SFTP client stalled by a
// network hiccup (TCP retransmission back-off reaches tens of seconds) and
// short against the hourly or daily cadence at which utilities send files.
// A file changing during its ingestion is caught by ingest anyway.
const DefaultSettle = 30 * time.Second

// DefaultMarkerSuffix names the marker file of ReadyMarker.
const DefaultMarkerSuffix = ".done"

// DefaultIgnore are the temporary names SFTP clients and uploaders use
// while a transfer is in progress (WinSCP .filepart, FileZilla/curl .part,
// rsync and hidden dot files, .tmp).
func DefaultIgnore() []string {
	return []string{".*", "*.tmp", "*.part", "*.partial", "*.filepart"}
}

// Options tune the watcher.
type Options struct {
	Poll   time.Duration // time between scans. Default: 2s.
	Settle time.Duration // ReadySettle: how long a file must stay unchanged. Default: DefaultSettle.
	Ready  Ready         // Default: ReadySettle.
	// MarkerSuffix is the marker of ReadyMarker. Default: DefaultMarkerSuffix.
	MarkerSuffix string
	// Ignore are shell patterns (path.Match, case-insensitive) of names that
	// are never taken. Default (nil): DefaultIgnore().
	Ignore []string
	// DoneDir and FailedDir must be real directories on the drop folder's
	// file system (files are renamed into them); missing ones are created.
	// Default: done/ and failed/ inside the drop folder.
	DoneDir, FailedDir string
	Logger             *slog.Logger // Default: discard.
}

// withDefaults returns o with the defaults its fields' docs state in place
// of zero values, for the drop folder dir.
func (o Options) withDefaults(dir string) Options {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	if o.Ready == "" {
		o.Ready = ReadySettle
	}
	if o.MarkerSuffix == "" {
		o.MarkerSuffix = DefaultMarkerSuffix
	}
	if o.Ignore == nil {
		o.Ignore = DefaultIgnore()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DoneDir == "" {
		o.DoneDir = filepath.Join(dir, "done")
	}
	if o.FailedDir == "" {
		o.FailedDir = filepath.Join(dir, "failed")
	}
	return o
}

type seen struct {
	size  int64
	mtime time.Time
	since time.Time
}

type watcher struct {
	dir          string
	o            Options
	drop         *os.File // the drop folder
	done, failed *os.File // opened with O_NOFOLLOW: a symlink is never followed
	state        map[string]seen
	faulted      map[string]bool // names already failed that could not be moved
}

// Run watches dir until ctx ends. Files are handled one at a time, oldest
// modification first (the order received), then by name.
func Run(ctx context.Context, dir string, h Handler, o Options) error {
	w, err := open(dir, o)
	if err != nil {
		return err
	}
	defer w.close()
	tick := time.NewTicker(w.o.Poll)
	defer tick.Stop()
	for {
		ready, err := w.scan(time.Now())
		if err != nil {
			return err
		}
		for _, c := range ready {
			if ctx.Err() != nil {
				return nil
			}
			w.handle(ctx, c, h)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func open(dir string, o Options) (*watcher, error) {
	o = o.withDefaults(dir)
	if o.Ready != ReadySettle && o.Ready != ReadyMarker {
		return nil, fmt.Errorf("ready mode %q is unknown; use %q or %q", o.Ready, ReadySettle, ReadyMarker)
	}
	for _, p := range o.Ignore {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("ignore pattern %q: %w; use shell patterns such as *.part", p, err)
		}
	}
	w := &watcher{dir: dir, o: o, state: map[string]seen{}, faulted: map[string]bool{}}
	var err error
	if w.drop, err = os.Open(dir); err != nil {
		return nil, fmt.Errorf("opening the drop folder: %w", err)
	}
	if w.done, err = realDir(o.DoneDir, "done"); err != nil {
		w.close()
		return nil, err
	}
	if w.failed, err = realDir(o.FailedDir, "failed"); err != nil {
		w.close()
		return nil, err
	}
	ds, _ := w.drop.Stat()
	for _, d := range []*os.File{w.done, w.failed} {
		if st, err := d.Stat(); err == nil && ds != nil && os.SameFile(st, ds) {
			w.close()
			return nil, fmt.Errorf("%s is the drop folder itself; give done and failed folders of their own", DisplayName(d.Name()))
		}
	}
	return w, nil
}

// realDir opens (creating it if missing) a directory that must not be a
// symlink: O_NOFOLLOW makes the check and the use one step, so the folder
// cannot be swapped for a link in between.
func realDir(p, role string) (*os.File, error) {
	if err := os.Mkdir(p, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("creating the %s folder %s: %w", role, DisplayName(p), err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("the %s folder %s is a symbolic link or not a directory; it must be a real directory (whoever can upload could point a link anywhere): remove it, or give another with --%s-dir", role, DisplayName(p), role)
		}
		return nil, fmt.Errorf("opening the %s folder %s: %w", role, DisplayName(p), err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

func (w *watcher) close() {
	for _, f := range []*os.File{w.drop, w.done, w.failed} {
		if f != nil {
			f.Close()
		}
	}
}

// candidate is a file ready to be handled, or a fault to move to failed/.
type candidate struct {
	name  string
	mtime time.Time
	fault string // set: not a regular file; moved to failed/ without the handler
}

func (w *watcher) ignored(name string) bool {
	lower := strings.ToLower(name)
	for _, p := range w.o.Ignore {
		if ok, _ := path.Match(strings.ToLower(p), lower); ok {
			return true
		}
	}
	return false
}

func (w *watcher) scan(now time.Time) ([]candidate, error) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("reading the drop folder %s: %w", DisplayName(w.dir), err)
	}
	markers := map[string]bool{}
	if w.o.Ready == ReadyMarker {
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), w.o.MarkerSuffix) {
				markers[strings.TrimSuffix(e.Name(), w.o.MarkerSuffix)] = true
			}
		}
	}
	var ready []candidate
	present := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if w.ignored(name) || w.o.Ready == ReadyMarker && strings.HasSuffix(name, w.o.MarkerSuffix) {
			continue // in progress, or a marker (removed with its file)
		}
		t := e.Type()
		if t.IsDir() {
			continue // done/ and failed/, or an operator's folder: not an upload
		}
		present[name] = true
		if w.faulted[name] {
			continue
		}
		if !t.IsRegular() {
			// Never followed nor read: a link would make ingest read (and
			// publish) whatever file it points to.
			what := "a symbolic link"
			if t&os.ModeSymlink == 0 {
				what = "not a regular file (" + t.String() + ")"
			}
			ready = append(ready, candidate{name: name, fault: what + "; the watcher takes only regular files and never follows links: upload the file itself"})
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed between ReadDir and Info
		}
		s, ok := w.state[name]
		if !ok || s.size != info.Size() || !s.mtime.Equal(info.ModTime()) {
			w.state[name] = seen{size: info.Size(), mtime: info.ModTime(), since: now}
			continue
		}
		switch w.o.Ready {
		case ReadyMarker:
			if !markers[name] {
				continue
			}
		default:
			if now.Sub(s.since) < w.o.Settle {
				continue
			}
		}
		ready = append(ready, candidate{name: name, mtime: info.ModTime()})
	}
	for p := range w.state {
		if !present[p] {
			delete(w.state, p)
		}
	}
	for p := range w.faulted {
		if !present[p] {
			delete(w.faulted, p)
		}
	}
	slices.SortFunc(ready, func(a, b candidate) int {
		return cmp.Or(a.mtime.Compare(b.mtime), cmp.Compare(a.name, b.name))
	})
	return ready, nil
}

func (w *watcher) handle(ctx context.Context, c candidate, h Handler) {
	log := w.o.Logger.With("file", DisplayName(c.name))
	out, detail := Failed, c.fault
	if c.fault == "" {
		out, detail = h(ctx, filepath.Join(w.dir, c.name))
	} else {
		log.Warn("refused a file that is not a regular file; moving it to failed/", "reason", c.fault)
	}
	switch out {
	case Retry:
		return // the handler said why; the file is tried again after the next poll
	case Done:
		if _, err := w.move(c.name, w.done, false); err != nil {
			log.Error("could not move a handled file to done/; it will be handled again (and skipped as already ingested)", "err", err)
			return
		}
	case Failed:
		moved, err := w.move(c.name, w.failed, true)
		if err != nil {
			log.Error("could not move a failed file to failed/; it stays in the drop folder and is not taken again until it changes name", "err", err)
			w.faulted[c.name] = true
			return
		}
		if err := writeErrorFile(int(w.failed.Fd()), c.name, moved, detail); err != nil {
			log.Error("moved a failed file to failed/ but could not write its error file", "moved_to", DisplayName(moved), "err", err)
		}
	}
	delete(w.state, c.name)
	if w.o.Ready == ReadyMarker {
		err := unix.Unlinkat(int(w.drop.Fd()), c.name+w.o.MarkerSuffix, 0)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			log.Error("could not remove the marker of a handled file", "err", err)
		}
	}
}

// move renames name from the drop folder into dst under a name that
// replaces nothing (NAME, else NAME.1, NAME.2, ...); withError also skips a
// name whose error file exists. It returns the name given.
func (w *watcher) move(name string, dst *os.File, withError bool) (string, error) {
	dropFD, dstFD := int(w.drop.Fd()), int(dst.Fd())
	for k := 0; k < 1000; k++ {
		cand := name
		if k > 0 {
			cand = fmt.Sprintf("%s.%d", name, k)
		}
		if withError && exists(dstFD, cand+".error.txt") {
			continue // keep each error file beside its own file
		}
		err := unix.Renameat2(dropFD, name, dstFD, cand, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// A file system without RENAME_NOREPLACE: a hard link fails too
			// when the target exists, and links a symlink itself, not its target.
			if err = unix.Linkat(dropFD, name, dstFD, cand, 0); err == nil {
				err = unix.Unlinkat(dropFD, name, 0)
			}
		}
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("moving %s to %s: %w (done and failed folders must be on the drop folder's file system)", DisplayName(name), DisplayName(dst.Name()), err)
		}
		return cand, nil
	}
	return "", fmt.Errorf("moving %s to %s: 1000 files of that name are there already; clear the folder", DisplayName(name), DisplayName(dst.Name()))
}

func exists(dirFD int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirFD, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// writeErrorFile creates the error file of a failed file. O_EXCL|O_NOFOLLOW:
// an existing file or a planted symlink is never written through; another
// name is picked instead. Names and detail are escaped, so each field is
// one line whatever the uploader named the file.
func writeErrorFile(dirFD int, orig, moved, detail string) error {
	text := fmt.Sprintf("file: %s\nmoved to: %s\nerror: %s\n", DisplayName(orig), DisplayName(moved), OneLine(detail))
	for k := 0; k < 1000; k++ {
		name := moved + ".error.txt"
		if k > 0 {
			name = fmt.Sprintf("%s.%d.error.txt", moved, k)
		}
		fd, err := unix.Openat(dirFD, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o640)
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ELOOP) {
			continue
		}
		if err != nil {
			return fmt.Errorf("creating the error file of %s: %w", DisplayName(moved), err)
		}
		f := os.NewFile(uintptr(fd), name)
		_, err = f.WriteString(text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing the error file of %s: %w", DisplayName(moved), err)
		}
		return nil
	}
	return fmt.Errorf("creating the error file of %s: 1000 error files of that name exist; clear the failed folder", DisplayName(moved))
}
