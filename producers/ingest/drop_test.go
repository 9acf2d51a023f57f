package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/records"
)

func writePlain(t *testing.T, dir, name string, lines []string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	text := records.HeaderLine(records.LayoutFull) + "\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func appendRows(t *testing.T, p string, rows ...string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(rows, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

func goodRows(n int) []string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = goodRow("SP"+itoa(int64(i)), 1+i%12)
	}
	return rows
}

// TestFileThatGrowsWhileReadIsFailed (issue 13): a file still being written
// while ingest reads it, or right after, is FAILED with an error naming the
// file, never COMPLETED: the rows published are not the file's final content.
func TestFileThatGrowsWhileReadIsFailed(t *testing.T) {
	const name = "opwr_gec_res_v1-19-0_full_20250102030405.tsv"
	cases := map[string]func(p string) func(*Config){
		// Mid-file: the first chunk is committed while most lines are unread.
		"while read": func(p string) func(*Config) {
			return func(c *Config) {
				c.ChunkRows = 100
				grown := false
				c.afterCommit = func(int64) error {
					if !grown {
						grown = true
						appendRows(t, p, goodRow("SPLATE", 3))
					}
					return nil
				}
			}
		},
		// After the last line, before the outcome.
		"after read": func(p string) func(*Config) {
			return func(c *Config) {
				grown := false
				c.Progress = func(Progress) {
					if !grown {
						grown = true
						appendRows(t, p, goodRow("SPLATE", 3))
					}
				}
			}
		},
	}
	for cname, mod := range cases {
		t.Run(cname, func(t *testing.T) {
			env := kafkatest.Start(t)
			rows := 5
			if cname == "while read" {
				rows = 3000 // well past the read buffer, so the append lands mid-read
			}
			p := writePlain(t, t.TempDir(), name, goodRows(rows))
			res, err := newIngester(t, env, mod(p)).File(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != Failed || res.Err == nil {
				t.Fatalf("status %s (err %v), want failed: the file changed while it was read", res.Status, res.Err)
			}
			if msg := res.Err.Error(); !strings.Contains(msg, name) || !strings.Contains(msg, "changed") {
				t.Fatalf("error %q does not name the file and say it changed", msg)
			}
			if res.Read != res.Published+res.Rejected {
				t.Fatalf("counts do not reconcile: %+v", res)
			}
			events := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Files))
			if last := events[len(events)-1]; last["status"] != "FAILED" {
				t.Fatalf("last file event %v, want FAILED", last["status"])
			}
		})
	}
}

// TestMisnamedFileIsAFileFault (issue 13): without Utility, a name that
// breaks the convention is the file's fault, a Failed result saying what to
// do, not an error that stops the run (and makes the watcher retry it).
func TestMisnamedFileIsAFileFault(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	bad := writePlain(t, dir, "export.tsv", goodRows(2))
	good := writePlain(t, dir, "opwr_gec_res_v1-19-0_full_20250102030405.tsv", goodRows(2))
	res, err := newIngester(t, env, nil).Run(context.Background(), []string{bad, good})
	if err != nil {
		t.Fatalf("a misnamed file stopped the run: %v", err)
	}
	if len(res) != 2 {
		t.Fatalf("%d results, want 2", len(res))
	}
	for _, r := range res {
		switch r.File {
		case "export.tsv":
			if r.Status != Failed || r.Err == nil || !strings.Contains(r.Err.Error(), "--utility") || !strings.Contains(r.Err.Error(), "export.tsv") {
				t.Fatalf("misnamed file: %s %v", r.Status, r.Err)
			}
			if r.SHA256 != "" || r.Published != 0 {
				t.Fatalf("a misnamed file was hashed or published: %+v", r)
			}
		default:
			if r.Status != Completed || r.Published != 2 {
				t.Fatalf("the good file: %+v", r)
			}
		}
	}
	if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing)); n != 2 {
		t.Fatalf("%d billing records, want the good file's 2", n)
	}
}

// TestBlankLinesFailAtTheRejectThreshold (issue 13): a tiny gzip of many
// blank lines fails early, once, with what to do, instead of publishing a
// rejected record per line; the counts of what was read still reconcile.
func TestBlankLinesFailAtTheRejectThreshold(t *testing.T) {
	env := kafkatest.Start(t)
	const blank = 200_000
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(records.HeaderLine(records.LayoutFull) + "\n" + goodRow("SP1", 1) + "\n" + strings.Repeat("\n", blank)))
	zw.Close()
	const name = "opwr_gec_res_v1-19-0_full_20250102030405.gz"
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := newIngester(t, env, nil).File(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != Failed {
		t.Fatalf("status %s with %d rejected, want failed at the threshold", res.Status, res.Rejected)
	}
	want := "file " + name + ": 1001 of 1002 rows rejected (over --max-rejects 1000 and --max-reject-share 0.5); fix the file or raise the limits"
	if res.Err == nil || !strings.Contains(res.Err.Error(), want) {
		t.Fatalf("error %v\nwant it to contain %q", res.Err, want)
	}
	if res.Read != 1002 || res.Published != 1 || res.Rejected != 1001 || res.Read != res.Published+res.Rejected {
		t.Fatalf("counts read %d published %d rejected %d, want 1002 = 1 + 1001", res.Read, res.Published, res.Rejected)
	}
	if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Rejected)); n != 1001 {
		t.Fatalf("%d rejected records, want 1001", n)
	}
	events := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Files))
	last := events[len(events)-1]
	if last["status"] != "FAILED" || last["rows_read"] != int64(1002) || last["rows_rejected"] != int64(1001) {
		t.Fatalf("last file event %v", last)
	}
}
