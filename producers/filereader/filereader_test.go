package filereader

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/usagestream/usagestream/records"
)

func TestFileErrorFormat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		e    FileError
		want string
	}{
		{FileError{File: "f.gz", Err: errors.New("x; y")}, "file f.gz: x; y"},
		{FileError{File: "f.gz", Line: 3, Err: errors.New("x; y")}, "file f.gz, line 3: x; y"},
		{FileError{File: "f.gz", Line: 1, Field: "date_to", Err: errors.New("x; y")}, "file f.gz, line 1, field date_to: x; y"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}

func open(t *testing.T, text string, opts Options) *File {
	t.Helper()
	f, err := New("f.tsv", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.From(strings.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestLines: blank and over-long lines are rejected and counted here, each
// under DC-2.1 with its physical line; an over-long line's length leaves out
// its line end (LF or CRLF) however many buffer-fulls it spans, or none when
// it just fits the buffer; other lines
// come back as they are; the counts reconcile once the caller accepts.
func TestLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	text := "h\r\nSP1\tok\n\nSP2\t" + long + "\r\n" + "SP3\t123456789\n" + "SP4\t1234567\n" + "last"
	var prefixes []string
	f := open(t, text, Options{Kind: "billing", Item: "row", MaxLineBytes: 10, Prefix: func(b []byte) (string, string) {
		prefixes = append(prefixes, string(b[:3]))
		return "cut", string(b[:3])
	}})
	if h, err := f.Header("the columns h"); err != nil || string(h) != "h" || f.Line() != 1 {
		t.Fatalf("header %q %v at line %d", h, err, f.Line())
	}
	type got struct {
		text, code, raw, spid, msg string
		line                       int64
	}
	var all []got
	for {
		b, rej, err := f.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rej == nil {
			f.Accept()
			all = append(all, got{text: string(b), line: f.Line()})
			continue
		}
		r := rej.Reasons[0]
		if r.Rule != records.RuleFormat || rej.Line != f.Line() {
			t.Errorf("%+v at line %d", rej, f.Line())
		}
		all = append(all, got{code: r.Code, raw: rej.Raw, spid: rej.ServicePointID, msg: r.Message, line: rej.Line})
	}
	want := []got{
		{text: "SP1\tok", line: 2},
		{code: records.CodeBlankLine, msg: "the line is blank; every data line must hold a row, so remove blank lines", line: 3},
		{code: records.CodeLineTooLong, raw: "cut", spid: "SP2", msg: "the line is 104 bytes, over the limit of 10; check for a missing line end, or raise MaxLineBytes", line: 4},
		{code: records.CodeLineTooLong, raw: "cut", spid: "SP3", msg: "the line is 13 bytes, over the limit of 10; check for a missing line end, or raise MaxLineBytes", line: 5},
		{code: records.CodeLineTooLong, raw: "cut", spid: "SP4", msg: "the line is 11 bytes, over the limit of 10; check for a missing line end, or raise MaxLineBytes", line: 6},
		{text: "last", line: 7},
	}
	if !slices.Equal(all, want) {
		t.Fatalf("lines\n%+v\nwant\n%+v", all, want)
	}
	st := f.Stats()
	if st.Lines != 6 || st.Accepted != 2 || st.Rejected != 4 || st.RejectedByCode[records.CodeLineTooLong] != 3 || st.RejectedByCode[records.CodeBlankLine] != 1 {
		t.Fatalf("stats %+v", st)
	}
	st.RejectedByCode["X"] = 1
	if f.Stats().RejectedByCode["X"] != 0 {
		t.Fatal("Stats must return a copy")
	}
	if _, _, err := f.Next(); err != io.EOF {
		t.Fatalf("after the end: %v, want io.EOF again", err)
	}
}

// TestFileErrors: what stops a file is a *FileError naming the file and line,
// with what to do; it comes back on every later call.
func TestFileErrors(t *testing.T) {
	t.Parallel()
	if _, err := New("f.tsv", Options{MaxLineBytes: -1}); err == nil || !strings.Contains(err.Error(), "file f.tsv: MaxLineBytes is -1; give 0 for the default") {
		t.Fatalf("negative limit: %v", err)
	}
	headers := []struct{ text, want string }{
		{"", "file f.tsv: the file is empty: it has no header line; send it with a header naming the columns a, b"},
		{"\xFF\xFEa\n", "file f.tsv, line 1: the file is UTF-16; send it encoded as UTF-8"},
		{"a\xff\n", "file f.tsv, line 1: the header is not valid UTF-8"},
		{strings.Repeat("a", 20) + "\n", "file f.tsv, line 1: line 1 is longer than 10 bytes, so it cannot be the header; check the file is a tab-separated interval file"},
	}
	for _, h := range headers {
		f := open(t, h.text, Options{Kind: "interval", MaxLineBytes: 10})
		if _, err := f.Header("the columns a, b"); err == nil || !strings.HasPrefix(err.Error(), h.want) {
			t.Errorf("header %q: %v, want %q", h.text, err, h.want)
		}
	}
	f := open(t, "\xEF\xBB\xBFa\nrow\n", Options{Kind: "interval", Item: "read"})
	if h, err := f.Header("a"); err != nil || string(h) != "a" {
		t.Fatalf("a byte order mark stays in the header: %q %v", h, err)
	}

	broken := errors.New("disk on fire")
	f, _ = New("f.tsv", Options{Kind: "billing"})
	if err := f.From(io.MultiReader(strings.NewReader("h\nrow\npartial"), iotest.ErrReader(broken))); err != nil {
		t.Fatal(err)
	}
	f.Header("h")
	if b, _, err := f.Next(); err != nil || string(b) != "row" {
		t.Fatalf("%q %v", b, err)
	}
	_, _, err := f.Next()
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, broken) || fe.Line != 2 ||
		err.Error() != "file f.tsv, line 2: reading stopped after line 2 (disk on fire); check the storage or connection and run again" {
		t.Fatalf("stream error %v", err)
	}
	if _, _, again := f.Next(); again != err {
		t.Fatalf("the error is not sticky: %v", again)
	}
	f.Close()
	f = open(t, "h\nrow\n", Options{})
	f.Header("h")
	f.Close()
	if _, _, err := f.Next(); err == nil || !strings.Contains(err.Error(), "the reader is closed") {
		t.Fatalf("after Close: %v", err)
	}
}

// TestDC21TrailingEmptyLine: an empty line that ends the file is no row; a
// blank line inside the file, or before that last one, is a rejected row
// (issue 16).
func TestDC21TrailingEmptyLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		text           string
		lines, blanks  int64
		accepted, last int64
	}{
		{"one trailing empty line", "h\nSP1\nSP2\n\n", 2, 0, 2, 3},
		{"a trailing empty line after CRLF", "h\r\nSP1\r\n\r\n", 1, 0, 1, 2},
		{"a blank line inside", "h\nSP1\n\nSP2\n", 3, 1, 2, 4},
		{"two empty lines at the end: the first is blank", "h\nSP1\n\n\n", 2, 1, 1, 3},
		{"no line end at all", "h\nSP1", 1, 0, 1, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := open(t, tc.text, Options{Kind: "billing", Item: "row"})
			if _, err := f.Header("the columns h"); err != nil {
				t.Fatal(err)
			}
			for {
				_, rej, err := f.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if rej == nil {
					f.Accept()
				}
			}
			st := f.Stats()
			if st.Lines != tc.lines || st.Accepted != tc.accepted || st.RejectedByCode[records.CodeBlankLine] != tc.blanks || f.Line() != tc.last {
				t.Errorf("stats %+v at line %d", st, f.Line())
			}
		})
	}
}
