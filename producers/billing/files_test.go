package billing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/records"
)

// TestFileErrors is the table of file-level problems: each must stop the file
// with a *filereader.FileError naming the file, the line and the column concerned.
func TestFileErrors(t *testing.T) {
	t.Parallel()
	hdr := records.LayoutColumns(records.LayoutFull)
	names := func(edit func([]string) []string) string {
		n := make([]string, len(hdr))
		for i, c := range hdr {
			n[i] = c.Name
		}
		return strings.Join(edit(n), "\t")
	}
	good := rowLine(records.LayoutFull, nil)
	full := gzipBytes(t, fileText(records.LayoutFull, good, good, good))
	var rows []string
	for i := range 500 {
		rows = append(rows, rowLine(records.LayoutFull, map[string]string{"customer_id": fmt.Sprint("C", i*7919), "usage_value": fmt.Sprint(i*31%977, ".", i%10)}))
	}
	manyRows := gzipBytes(t, fileText(records.LayoutFull, rows...))

	cases := []struct {
		name    string
		file    string
		data    []byte
		opts    Options
		rows    int // records read before the error; -1: some, and the error is at the last one
		line    int64
		field   string
		msg     []string // substrings of Error()
		isErr   error    // errors.Is target, when set
		nameErr bool     // a *records.NameError is wrapped
	}{
		{name: "empty file", data: nil, msg: []string{"the file is empty", "no header"}},
		{name: "empty gzip", data: gzipBytes(t, ""), msg: []string{"the file is empty"}},
		{name: "missing header", data: []byte(fileText(records.LayoutFull, good)[len(records.HeaderLine(records.LayoutFull))+1:]), line: 1,
			msg: []string{"line 1 is not a header", `"C1001"`, "looks like data"}},
		{name: "header without rate_code", line: 1, field: "rate_code",
			data: []byte(names(func(n []string) []string { return append(n[:11:11], n[12:]...) }) + "\n"),
			msg:  []string{`column "rate_code" is missing`, "position 12", `holds "service_point_id"`}},
		{name: "header without the last column", line: 1, field: "usage_charge",
			data: []byte(names(func(n []string) []string { return n[:len(n)-1] }) + "\n"),
			msg:  []string{`column "usage_charge" (position 28) is missing`}},
		{name: "header reordered", line: 1, field: "active_date",
			data: []byte(names(func(n []string) []string { n[7], n[8] = n[8], n[7]; return n }) + "\n"),
			msg:  []string{"out of order", `position 8 holds "inactive_date", expected "active_date" (found at position 9)`}},
		{name: "unknown column in the middle", line: 1, field: "email",
			data: []byte(names(func(n []string) []string { return append(n[:5:5], append([]string{"email"}, n[5:]...)...) }) + "\n"),
			msg:  []string{`unknown column "email" at header position 6`, `before the known column "business_name"`, "only after all known ones"}},
		{name: "unnamed extra column", line: 1,
			data: []byte(names(func(n []string) []string { return append(n, "") }) + "\n"),
			msg:  []string{"header position 29 (an extra column) has no name"}},
		{name: "duplicate extra column", line: 1, field: "PHONE",
			data: []byte(names(func(n []string) []string { return append(n, "phone", "PHONE") }) + "\n"),
			msg:  []string{`"PHONE" appears twice, at header positions 29 and 30`}},
		{name: "known column repeated at the end", line: 1, field: "duration",
			data: []byte(names(func(n []string) []string { return append(n, "duration") }) + "\n"),
			msg:  []string{`"duration" appears twice`}},
		{name: "customer header in a full file", line: 1, field: "usage_value",
			data: []byte(fileText(records.LayoutCustomer, rowLine(records.LayoutCustomer, nil))),
			msg:  []string{`column "usage_value" (position 24) is missing`, "this header is that of the customer layout"}},
		{name: "full header in a customer file", file: customerName, line: 1, field: "usage_value",
			data: []byte(fileText(records.LayoutFull, good)),
			msg:  []string{`column "usage_value" at header position 24 belongs to another layout, not the customer layout`, "this header is that of the full layout"}},
		{name: "UTF-16 file", line: 1, data: []byte("\xff\xfec\x00u\x00\n"), msg: []string{"UTF-16"}},
		{name: "header not UTF-8", line: 1, data: []byte("customer_id\xff\n"), msg: []string{"header is not valid UTF-8"}},
		{name: "header too long", line: 1, opts: Options{MaxLineBytes: 100}, data: []byte(fileText(records.LayoutFull)),
			msg: []string{"line 1 is longer than 100 bytes"}},
		{name: "truncated gzip", data: manyRows[:len(manyRows)/2], rows: -1, isErr: io.ErrUnexpectedEOF,
			msg: []string{"truncated or corrupt after line", "send the file again"}},
		{name: "gzip without its trailer", data: full[:len(full)-4], rows: 3, line: 4, isErr: io.ErrUnexpectedEOF,
			msg: []string{"line 4: the file is truncated or corrupt after line 4"}},
		{name: "gzip with a bad checksum", data: flipByte(full, len(full)-6), rows: 3, line: 4,
			msg: []string{"truncated or corrupt after line 4", "checksum"}},
		{name: "gzip cut inside the header line", data: full[:15], isErr: io.ErrUnexpectedEOF,
			msg: []string{"truncated or corrupt before the end of its header", "send the file again"}},
		{name: "gzip header damaged", data: []byte{0x1f, 0x8b, 0x99, 0, 0, 0, 0, 0, 0, 0},
			msg: []string{"gzip header is unreadable", "send the file again"}},
		{name: "zip with two files", file: "opwr_gec_res_v1-19-0_full_20240301120000.zip",
			data: zipBytes(t, zipEntry{"a.tsv", fileText(records.LayoutFull, good)}, zipEntry{"b.tsv", fileText(records.LayoutFull, good)}),
			msg:  []string{"holds 2 files; it must hold exactly one"}},
		{name: "zip with a folder", file: "opwr_gec_res_v1-19-0_full_20240301120000.zip",
			data: zipBytes(t, zipEntry{"dir/", ""}, zipEntry{"dir/a.tsv", fileText(records.LayoutFull, good)}),
			msg:  []string{`holds a folder (entry "dir/")`, "no folders"}},
		{name: "zip with its file in a folder", file: "opwr_gec_res_v1-19-0_full_20240301120000.zip",
			data: zipBytes(t, zipEntry{"dir/a.tsv", fileText(records.LayoutFull, good)}),
			msg:  []string{`holds a folder (entry "dir/a.tsv")`}},
		{name: "empty zip", file: "opwr_gec_res_v1-19-0_full_20240301120000.zip", data: zipBytes(t),
			msg: []string{"holds no file"}},
		{name: "zip holding an empty file", file: "opwr_gec_res_v1-19-0_full_20240301120000.zip",
			data: zipBytes(t, zipEntry{"a.tsv", ""}), msg: []string{"the file is empty"}},
		{name: "zip cut short", file: "opwr_gec_res_v1-19-0_full_20240301120000.zip",
			data: zipBytes(t, zipEntry{"a.tsv", fileText(records.LayoutFull, good)})[:100],
			msg:  []string{"zip archive is unreadable", "send the file again"}},
		{name: "non-conforming name without a layout", file: "billing-export.tsv", data: []byte(fileText(records.LayoutFull, good)),
			nameErr: true, msg: []string{"file billing-export.tsv: the layout cannot be taken from the name", "parts count is 1"}},
		{name: "interval name without a layout", file: "opwr_gec_res_v1-19-0_interval15_20240301120000.gz", data: []byte(fileText(records.LayoutFull, good)),
			msg: []string{`"interval15", an interval file`, "interval reader"}},
		{name: "unknown layout option", opts: Options{Layout: "daily"}, data: []byte(fileText(records.LayoutFull, good)),
			msg: []string{`layout "daily" is unknown`}},
		{name: "negative line limit", opts: Options{MaxLineBytes: -1}, data: []byte(fileText(records.LayoutFull, good)),
			msg: []string{"MaxLineBytes is -1"}},
		{name: "no usable service type", opts: Options{ServiceTypes: []string{" "}}, data: []byte(fileText(records.LayoutFull, good)),
			msg: []string{"ServiceTypes has no usable code"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			file := c.file
			if file == "" {
				file = fullName
			}
			// Through Open (a real file) and NewReader (a stream) alike.
			path := filepath.Join(t.TempDir(), file)
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, via := range []string{"Open", "NewReader"} {
				var r *Reader
				var err error
				if via == "Open" {
					r, err = Open(path, c.opts)
				} else {
					r, err = NewReader(file, bytes.NewReader(c.data), c.opts)
				}
				var recs []Record
				if err == nil {
					recs, err = readAll(t, r)
					r.Close()
				}
				var fe *filereader.FileError
				if !errors.As(err, &fe) {
					t.Fatalf("%s: got %v, want a *filereader.FileError", via, err)
				}
				line := c.line
				if c.rows < 0 {
					if len(recs) == 0 || len(recs) >= 500 {
						t.Errorf("%s: %d records before the error, want some", via, len(recs))
					}
					line = int64(len(recs)) + 1
				} else if len(recs) != c.rows {
					t.Errorf("%s: %d records before the error, want %d", via, len(recs), c.rows)
				}
				if fe.File != file || fe.Line != line || fe.Field != c.field {
					t.Errorf("%s: FileError at %s/%d/%q, want %s/%d/%q: %v", via, fe.File, fe.Line, fe.Field, file, line, c.field, err)
				}
				msg := err.Error()
				prefix := "file " + file
				if line > 0 {
					prefix += fmt.Sprintf(", line %d", line)
				}
				if c.field != "" {
					prefix += ", field " + c.field
				}
				if !strings.HasPrefix(msg, prefix+": ") {
					t.Errorf("%s: message %q does not start with %q", via, msg, prefix)
				}
				if !strings.Contains(msg, "; ") {
					t.Errorf("%s: message %q does not say what to do", via, msg)
				}
				for _, m := range c.msg {
					if !strings.Contains(msg, m) {
						t.Errorf("%s: message %q lacks %q", via, msg, m)
					}
				}
				if c.isErr != nil && !errors.Is(err, c.isErr) {
					t.Errorf("%s: %v does not wrap %v", via, err, c.isErr)
				}
				var ne *records.NameError
				if c.nameErr != errors.As(err, &ne) {
					t.Errorf("%s: wraps a records.NameError = %v, want %v", via, !c.nameErr, c.nameErr)
				}
			}
		})
	}
}

func flipByte(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0xff
	return out
}

// TestCompression reads the same file plain, gzip and zip, whatever its name says.
func TestCompression(t *testing.T) {
	t.Parallel()
	good := rowLine(records.LayoutFull, nil)
	text := fileText(records.LayoutFull, good, good)
	files := map[string][]byte{
		"gzip":                  gzipBytes(t, text),
		"zip":                   zipBytes(t, zipEntry{"inner.tsv", text}),
		"plain named .gz":       []byte(text),
		"gzip of two members":   append(gzipBytes(t, text[:len(text)-len(good)-1]), gzipBytes(t, good+"\n")...),
		"gzip, zip-named":       gzipBytes(t, text),
		"plain, CRLF, with BOM": []byte("\xEF\xBB\xBF" + strings.ReplaceAll(text, "\n", "\r\n")),
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := fullName
			if strings.Contains(name, "zip") {
				file = strings.TrimSuffix(fullName, ".gz") + ".zip"
			}
			path := filepath.Join(t.TempDir(), file)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			recs, err := readAll(t, r)
			if err != io.EOF || len(recs) != 2 || recs[0].Row == nil || recs[1].Row == nil {
				t.Fatalf("%v, %+v", err, recs)
			}
			if got := r.CompressedBytesRead(); got <= 0 || got > int64(len(data)) {
				t.Errorf("CompressedBytesRead = %d for a %d-byte file", got, len(data))
			}
			if !strings.Contains(name, "zip") && r.CompressedBytesRead() != int64(len(data)) {
				t.Errorf("CompressedBytesRead = %d after the whole %d-byte stream", r.CompressedBytesRead(), len(data))
			}
			if r.Name().Layout != records.LayoutFull || !r.Name().Conforms || r.Layout() != records.LayoutFull {
				t.Errorf("name %+v", r.Name())
			}
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("Next after the end and Close = %v, want io.EOF again", err)
			}
		})
	}
}

func TestExplicitLayout(t *testing.T) {
	t.Parallel()
	data := fileText(records.LayoutUsage, rowLine(records.LayoutUsage, nil))
	r, recs, err := readString(t, "export.txt", data, Options{Layout: records.LayoutUsage})
	if err != io.EOF || len(recs) != 1 || recs[0].Row == nil {
		t.Fatalf("%v %+v", err, recs)
	}
	if r.Name().Conforms || r.Layout() != records.LayoutUsage || len(r.Warnings()) != 1 || !strings.Contains(r.Warnings()[0], "processed as the usage layout given explicitly") {
		t.Errorf("name %+v, warnings %q", r.Name(), r.Warnings())
	}
	// An explicit layout wins over the name's kind, with a warning.
	r, recs, err = readString(t, fullName, data, Options{Layout: records.LayoutUsage})
	if err != io.EOF || len(recs) != 1 || recs[0].Row == nil || len(r.Warnings()) != 1 {
		t.Fatalf("%v %+v %q", err, recs, r.Warnings())
	}
}

func TestStreamErrorKeepsRows(t *testing.T) {
	t.Parallel()
	good := rowLine(records.LayoutFull, nil)
	text := fileText(records.LayoutFull, good, good)
	boom := errors.New("connection reset")
	r, err := NewReader(fullName, io.MultiReader(strings.NewReader(text+good[:10]), &failing{boom}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(t, r)
	var fe *filereader.FileError
	if len(recs) != 2 || !errors.As(err, &fe) || !errors.Is(err, boom) || fe.Line != 3 ||
		!strings.Contains(err.Error(), "reading stopped after line 3") {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if _, again := r.Next(); again != err {
		t.Fatalf("the file error must repeat: %v", again)
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

func TestNewReaderNil(t *testing.T) {
	t.Parallel()
	var fe *filereader.FileError
	if _, err := NewReader(fullName, nil, Options{}); !errors.As(err, &fe) {
		t.Fatalf("got %v", err)
	}
}

func TestNewReaderZipNeedsRandomAccess(t *testing.T) {
	t.Parallel()
	data := zipBytes(t, zipEntry{"a.tsv", fileText(records.LayoutFull, rowLine(records.LayoutFull, nil))})
	_, err := NewReader(fullName, io.MultiReader(bytes.NewReader(data)), Options{})
	var fe *filereader.FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "needs random access") {
		t.Fatalf("got %v", err)
	}
}

// TestLongLineMemory feeds a 5 MB line through a 64 KiB limit: it is rejected,
// the rows after it are read, and the heap never holds the line.
func TestLongLineMemory(t *testing.T) {
	// Not parallel: it measures memory, which other tests would disturb.
	good := rowLine(records.LayoutFull, nil)
	const size = 5 << 20
	src := io.MultiReader(
		strings.NewReader(fileText(records.LayoutFull, good)+"C1\tP1\t"),
		&repeatReader{b: 'y', n: size - 6},
		strings.NewReader("\r\n"+good+"\n"+good+"\n"),
	)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := NewReader(fullName, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(t, r)
	runtime.ReadMemStats(&after)
	if err != io.EOF || len(recs) != 4 {
		t.Fatalf("%v, %d records", err, len(recs))
	}
	rej := recs[1].Rejected
	if rej == nil || rej.Line != 3 || rej.Reasons[0].Code != records.CodeLineTooLong ||
		!strings.Contains(rej.Reasons[0].Message, fmt.Sprintf("the line is %d bytes, over the limit of %d", size, DefaultMaxLineBytes)) {
		t.Fatalf("long line: %+v", recs[1])
	}
	if len(rej.Raw) > maxPrefix+64 || !strings.HasPrefix(rej.Raw, "C1\tP1\tyyy") {
		t.Errorf("Raw is %d bytes: %.80q", len(rej.Raw), rej.Raw)
	}
	if recs[2].Row == nil || recs[2].Row.Line != 4 || recs[3].Row == nil || recs[3].Row.Line != 5 {
		t.Fatalf("rows after the long line: %+v %+v", recs[2], recs[3])
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("reading allocated %d bytes for a %d-byte line; it must stay bounded", alloc, size)
	}
}

type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = r.b
	}
	r.n -= n
	return n, nil
}

func TestLongLineKeepsServicePoint(t *testing.T) {
	t.Parallel()
	long := rowLine(records.LayoutUsage, map[string]string{"usage_charge": strings.Repeat("9", 200)})
	_, recs, _ := readString(t, usageName, fileText(records.LayoutUsage, long), Options{MaxLineBytes: 100})
	rej := recs[0].Rejected
	if rej == nil || rej.Reasons[0].Code != records.CodeLineTooLong || rej.ServicePointID != "SP4001" {
		t.Fatalf("%+v", recs[0])
	}
	// Personal columns in the kept prefix are redacted too.
	long = rowLine(records.LayoutFull, map[string]string{"usage_charge": strings.Repeat("9", 400)})
	_, recs, _ = readString(t, fullName, fileText(records.LayoutFull, long), Options{MaxLineBytes: 400})
	rej = recs[0].Rejected
	if rej == nil || rej.Reasons[0].Code != records.CodeLineTooLong || rej.ServicePointID != "SP4001" || !strings.Contains(rej.Raw, "RES\t[redacted]\tA3001") {
		t.Fatalf("%+v", recs[0])
	}
	assertNoPersonal(t, rej)
}

// TestTestdata reads the small files kept under testdata/.
func TestTestdata(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file             string
		opts             Options
		accepted, reject int64
	}{
		{"opwr_gec_res_v1-19-0_full_20240301120000.tsv", Options{}, 2, 1},
		{"opwr_gec_nonres-smb_v1-19-0_customer_20240301120000.tsv", Options{}, 2, 0},
		{"opwr_gec_nonres-lci_v1-19-0_usage_20240301120000.tsv", Options{}, 3, 1},
		{"legacy-export.txt", Options{Layout: records.LayoutUsage}, 1, 0},
	}
	for _, c := range cases {
		r, err := Open(filepath.Join("testdata", c.file), c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		recs, err := readAll(t, r)
		r.Close()
		s := r.Stats()
		if err != io.EOF || s.Accepted != c.accepted || s.Rejected != c.reject {
			t.Errorf("%s: %v, stats %+v", c.file, err, s)
		}
		for _, rec := range recs {
			if rec.Rejected != nil {
				t.Logf("%s line %d: %v", c.file, rec.Rejected.Line, rec.Rejected.Reasons)
			}
		}
	}
}

func TestOpenMissingOrDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, fullName), dir} {
		_, err := Open(path, Options{Layout: records.LayoutFull})
		var fe *filereader.FileError
		if !errors.As(err, &fe) || fe.File != filepath.Base(path) || !strings.Contains(err.Error(), "; ") {
			t.Errorf("%s: %v", path, err)
		}
	}
}
