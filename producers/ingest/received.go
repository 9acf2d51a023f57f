package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"
)

// received is one file as ingest reads it: opened once, and everything
// (the identity hash, the rows, the final check) goes through that one
// descriptor, so a file replaced under its name cannot be hashed as one file
// and read as another.
//
// The identity hash must be known before the first record is produced: it
// names the transactional producer (which fences a crashed run) and keys the
// checkpoint a rerun resumes from. So the file is hashed once up front; then
// the rows are read with the same bytes teed through a second hash, and at
// the end (see changed) that hash, the size and the modification time must
// still match what was hashed. A file still being written (a partial upload
// that slipped past the watcher's settle time, or a CLI user's file being
// copied) is thereby caught: the rows published are not the file's content.
type received struct {
	path   string
	base   string
	f      *os.File
	opened os.FileInfo // fstat when opened
	sha256 string
	size   int64 // bytes hashed

	isZip bool
	tee   hash.Hash // the bytes the reader took, for a stream
}

// receive opens path and hashes its bytes.
func receive(path string) (*received, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w; check the path and its permissions", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a directory; give the path of a billing or interval file", path)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w; check the storage and run again", path, err)
	}
	return &received{path: path, base: filepath.Base(path), f: f, opened: st,
		sha256: hex.EncodeToString(h.Sum(nil)), size: n}, nil
}

func (r *received) Close() error { return r.f.Close() }

// content is the file's bytes from the start for the readers: a zip as the
// descriptor itself (read through its directory, at random), anything else as
// a stream teed through a hash.
func (r *received) content() (io.Reader, error) {
	var magic [4]byte
	n, _ := r.f.ReadAt(magic[:], 0)
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading %s: %w", r.path, err)
	}
	// The magic bytes fileopen tells a zip by (a local file header, or the
	// end record of an empty archive).
	if bytes.HasPrefix(magic[:n], []byte("PK\x03\x04")) || bytes.HasPrefix(magic[:n], []byte("PK\x05\x06")) {
		r.isZip = true
		return r.f, nil
	}
	r.tee = sha256.New()
	return io.TeeReader(r.f, r.tee), nil
}

// changed says how the file differs from what was hashed when it was opened,
// or "" when it does not. Call it once the reader is done with the file. A
// stream reader that stopped early (a bad line, the reject limit) leaves the
// rest unread: that rest is hashed here, so the check covers the whole file.
func (r *received) changed() (string, error) {
	st, err := r.f.Stat()
	if err != nil {
		return "", fmt.Errorf("checking %s after reading it: %w", r.path, err)
	}
	if r.size != r.opened.Size() {
		return fmt.Sprintf("it had %d bytes when opened but %d were hashed", r.opened.Size(), r.size), nil
	}
	if st.Size() != r.opened.Size() {
		return fmt.Sprintf("its size went from %d to %d bytes", r.opened.Size(), st.Size()), nil
	}
	if !st.ModTime().Equal(r.opened.ModTime()) {
		return fmt.Sprintf("its modification time went from %s to %s",
			r.opened.ModTime().UTC().Format(time.RFC3339Nano), st.ModTime().UTC().Format(time.RFC3339Nano)), nil
	}
	if now, err := os.Stat(r.path); err != nil || !os.SameFile(now, r.opened) {
		return "another file took its name, or it was removed", nil
	}
	if r.tee != nil {
		if _, err := io.Copy(r.tee, r.f); err != nil {
			return "", fmt.Errorf("checking %s after reading it: %w; check the storage and run again", r.path, err)
		}
		if got := hex.EncodeToString(r.tee.Sum(nil)); got != r.sha256 {
			return "the bytes read are not the bytes hashed when it was opened", nil
		}
	}
	return "", nil
}
