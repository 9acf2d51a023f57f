package fileopen

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

const text = "header\r\nline 1\nline 2\n\nlast line without an end"

var want = []string{"header", "line 1", "line 2", "", "last line without an end"}

func gzipOf(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type entry struct{ name, body string }

func zipOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range entries {
		f, err := w.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(f, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func lines(t *testing.T, f *File) []string {
	t.Helper()
	var got []string
	for {
		b, long, err := f.ReadLine()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil || long {
			t.Fatalf("ReadLine: %v long=%v", err, long)
		}
		got = append(got, string(b))
	}
}

// TestFormats: the same lines come out of plain text, gzip (one or two
// members) and a one-file zip, found by content whatever the name says, by
// path and from a reader; the bytes counted reach the file's size.
func TestFormats(t *testing.T) {
	cut := strings.Index(text, "line 2")
	cases := map[string][]byte{
		"plain":           []byte(text),
		"gzip":            gzipOf(t, text),
		"gzip of two":     append(gzipOf(t, text[:cut]), gzipOf(t, text[cut:])...),
		"zip":             zipOf(t, entry{"inner.tsv", text}),
		"gzip named .zip": gzipOf(t, text),
	}
	for name, data := range cases {
		for _, how := range []string{"Open", "New"} {
			var count atomic.Int64
			o := Options{Kind: "billing", BufSize: 64, Count: &count}
			var f *File
			var err error
			if how == "Open" {
				f, err = Open(write(t, strings.ReplaceAll(name, " ", "_")+".zip", data), o)
			} else {
				f, err = New(bytes.NewReader(data), o)
			}
			if err != nil {
				t.Fatalf("%s %s: %v", name, how, err)
			}
			if got := lines(t, f); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("%s %s: %q", name, how, got)
			}
			if f.Consumed() != count.Load() || count.Load() <= 0 || count.Load() > int64(len(data)) {
				t.Fatalf("%s %s: consumed %d (counter %d) of %d bytes", name, how, f.Consumed(), count.Load(), len(data))
			}
			if name != "zip" && count.Load() != int64(len(data)) { // a zip ends with its directory, read first
				t.Fatalf("%s %s: consumed %d of %d bytes", name, how, count.Load(), len(data))
			}
			if err := f.Close(); err != nil {
				t.Fatalf("%s %s: Close: %v", name, how, err)
			}
		}
	}
}

// TestZipRules: a zip holds exactly one file and no folders; each refusal
// says what is wrong and what to do, naming the kind of file.
func TestZipRules(t *testing.T) {
	good := zipOf(t, entry{"a.tsv", text})
	cases := []struct {
		name string
		data []byte
		msg  string
	}{
		{"two files", zipOf(t, entry{"a.tsv", text}, entry{"b.tsv", text}), "holds 2 files; it must hold exactly one, so send one file per archive"},
		{"a folder", zipOf(t, entry{"dir/", ""}, entry{"dir/a.tsv", text}), `holds a folder (entry "dir/"); it must hold exactly one file and no folders, so zip the interval file alone`},
		{"its file in a folder", zipOf(t, entry{`dir\a.tsv`, text}), "holds a folder"},
		{"no file", zipOf(t), "holds no file; it must hold exactly one interval file, so send the file again"},
		{"cut short", good[:len(good)-10], "the zip archive is unreadable"},
		{"a long entry name", zipOf(t, entry{strings.Repeat("é", 40) + "/x", text}), strings.Repeat("é", 20) + "…"},
	}
	for _, c := range cases {
		f, err := Open(write(t, "f.zip", c.data), Options{Kind: "interval"})
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Fatalf("%s by path: %v", c.name, err)
		}
		if f != nil {
			t.Fatalf("%s: a File with an error", c.name)
		}
		if _, err := New(bytes.NewReader(c.data), Options{Kind: "interval"}); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Fatalf("%s from a reader: %v", c.name, err)
		}
	}
}

// TestRefusals: what cannot be opened says why and what to do, and keeps
// the cause for errors.Is.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.tsv"), Options{Kind: "billing"}); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "check the path and its permissions") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Open(dir, Options{Kind: "interval"}); err == nil || !strings.Contains(err.Error(), "it is a directory); give the path of an interval file") {
		t.Fatalf("directory: %v", err)
	}
	if _, err := New(nil, Options{}); err == nil || !strings.Contains(err.Error(), "no reader was given") {
		t.Fatalf("nil reader: %v", err)
	}
	z := zipOf(t, entry{"a.tsv", text})
	if _, err := New(io.MultiReader(bytes.NewReader(z)), Options{}); err == nil || !strings.Contains(err.Error(), "needs random access; use Open with its path, or unzip it") {
		t.Fatalf("zip without random access: %v", err)
	}
	bad := []byte{0x1f, 0x8b, 0x99, 0, 0, 0, 0, 0, 0, 0}
	if _, err := New(bytes.NewReader(bad), Options{}); !errors.Is(err, gzip.ErrHeader) || !strings.Contains(err.Error(), "gzip header is unreadable") {
		t.Fatalf("damaged gzip header: %v", err)
	}
	if _, err := Open(write(t, "f.gz", bad), Options{}); !errors.Is(err, gzip.ErrHeader) {
		t.Fatalf("damaged gzip header by path: %v", err)
	}
}

// TestLongLines: a line longer than the buffer comes back in buffer-sized
// pieces marked long, then the next line whole.
func TestLongLines(t *testing.T) {
	long := strings.Repeat("x", 100)
	f, err := New(strings.NewReader(long+"\nshort\n"), Options{BufSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for {
		b, isLong, err := f.ReadLine()
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		if !isLong {
			break
		}
		if len(b) != 32 {
			t.Fatalf("a piece of %d bytes", len(b))
		}
	}
	if total != 100 {
		t.Fatalf("the long line came back as %d bytes", total)
	}
	if b, isLong, err := f.ReadLine(); string(b) != "short" || isLong || err != nil {
		t.Fatalf("next line %q %v %v", b, isLong, err)
	}
}

// TestCorruption: damage inside a compressed stream is told apart from a
// failing source, so readers can say "send the file again" or "run again".
func TestCorruption(t *testing.T) {
	full := gzipOf(t, strings.Repeat(text+"\n", 1000))
	flipped := bytes.Clone(full)
	flipped[len(flipped)-6] ^= 0xff // inside the CRC
	// A gzip header, then a deflate block of the reserved type 3: the
	// decompressor's own CorruptInputError.
	badBlock := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x07, 0, 0, 0, 0}
	for name, data := range map[string][]byte{"truncated": full[:len(full)/2], "bad checksum": flipped, "bad deflate block": badBlock} {
		f, err := New(bytes.NewReader(data), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, _, err = f.ReadLine()
		}
		if errors.Is(err, io.EOF) || !IsCorruption(err) {
			t.Fatalf("%s: %v (corruption %v)", name, err, IsCorruption(err))
		}
	}
	disk := errors.New("input/output error")
	f, err := New(io.MultiReader(strings.NewReader("head\nline\n"), iotest{disk}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, _, err = f.ReadLine()
	}
	if !errors.Is(err, disk) || IsCorruption(err) {
		t.Fatalf("a failing source: %v (corruption %v)", err, IsCorruption(err))
	}
}

type iotest struct{ err error }

func (r iotest) Read([]byte) (int, error) { return 0, r.err }

// TestCloseClosesFile: Close releases the file opened by Open.
func TestCloseClosesFile(t *testing.T) {
	f, err := Open(write(t, "f.gz", gzipOf(t, text)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	osf := f.closers[len(f.closers)-1].(*os.File)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := osf.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("the file is still open: %v", err)
	}
}
