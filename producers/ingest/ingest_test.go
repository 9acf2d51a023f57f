package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/records"
)

// fullRow renders one full-layout line from column values by name.
func fullRow(vals map[string]string) string {
	parts := make([]string, len(records.BillingColumns()))
	for i, c := range records.BillingColumns() {
		parts[i] = vals[c.Name]
	}
	return strings.Join(parts, "\t")
}

func goodRow(sp string, month int) string {
	start := time.Date(2024, time.Month(month), 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, -1)
	return fullRow(map[string]string{
		"customer_id": "C-" + sp, "premise_id": "P-" + sp, "account_id": "A-" + sp,
		"active_date": "20240101", "service_point_id": sp, "service_type": "E", "rate_code": "R1",
		"service_street_name": "Secret Street", "service_house_number": "12",
		"usage_value": fmt.Sprint(300 + month), "date_to": end.Format("20060102"),
		"duration": fmt.Sprint(int(end.Sub(start).Hours()/24) + 1), "is_estimate": "A", "usage_charge": "41.5",
	})
}

func writeGz(t *testing.T, dir, name string, lines []string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(records.HeaderLine(records.LayoutFull) + "\n" + strings.Join(lines, "\n") + "\n"))
	zw.Close()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newIngester(t *testing.T, env *kafkatest.Env, mod func(*Config)) *Ingester {
	t.Helper()
	cfg := Config{Topics: env.Topics}
	if mod != nil {
		mod(&cfg)
	}
	in, err := New(context.Background(), env.Kafka, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestIngestPublishesRowsRejectsAndFileEvents(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	bad := fullRow(map[string]string{"customer_id": "C9", "premise_id": "P9", "account_id": "A9", "active_date": "20240230",
		"service_point_id": "SP9", "service_type": "E", "service_street_name": "Secret Street",
		"usage_value": "1,234", "date_to": "20240131", "duration": "31"})
	path := writeGz(t, dir, "opwr_gec_res_v1-19-0_full_20250102030405.gz",
		[]string{goodRow("SP1", 1), goodRow("SP1", 2), bad, goodRow("SP2", 1), "short\trow"})

	res, err := newIngester(t, env, nil).Run(context.Background(), []string{path})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Status != Completed || r.Read != 5 || r.Published != 3 || r.Rejected != 2 {
		t.Fatalf("result %+v", r)
	}
	if r.ByCode["BAD_DATE"] != 1 || r.ByCode["THOUSANDS_SEPARATOR"] != 1 || r.ByCode["FIELD_COUNT"] != 1 {
		t.Fatalf("by code %v", r.ByCode)
	}

	rows := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing))
	if len(rows) != 3 {
		t.Fatalf("%d billing records, want 3", len(rows))
	}
	for _, m := range rows {
		if m["utility"] != "gec" || m["layout"] != "full" {
			t.Fatalf("record %v", m)
		}
		src := m["source"].(map[string]any)
		if src["file"] != filepath.Base(path) || src["file_sha256"] != r.SHA256 {
			t.Fatalf("source %v", src)
		}
		if m["service_point_id"] == "SP2" {
			if src["line"] != int64(5) {
				t.Fatalf("SP2 line %v, want 5", src["line"])
			}
			if uv := m["usage_value"].(map[string]any)["double"]; uv != 301.0 {
				t.Fatalf("usage_value %v", uv)
			}
			dt := m["date_to"].(map[string]any)["int.date"].(time.Time)
			if dt.Format("20060102") != "20240131" {
				t.Fatalf("date_to %v", dt)
			}
		}
	}

	rejRecs := kafkatest.ReadAll(t, env.Kafka, env.Topics.Rejected)
	rejected := kafkatest.Decode(t, env.Kafka, rejRecs)
	if len(rejected) != 2 {
		t.Fatalf("%d rejected records, want 2", len(rejected))
	}
	for i, m := range rejected {
		raw := m["raw"].(string)
		if strings.Contains(raw, "Secret Street") {
			t.Fatalf("personal data in the rejected topic: %q", raw)
		}
		line := m["source"].(map[string]any)["line"].(int64)
		if line == 4 && string(rejRecs[i].Key) != "SP9" {
			t.Fatalf("rejected row key %q, want the service point", rejRecs[i].Key)
		}
		if line == 4 && len(m["reasons"].([]any)) != 2 {
			t.Fatalf("line 4 reasons %v: want every problem, not the first", m["reasons"])
		}
	}

	events := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Files))
	if len(events) != 2 || events[0]["status"] != "RECEIVED" || events[1]["status"] != "COMPLETED" {
		t.Fatalf("file events %v", events)
	}
	done := events[1]
	if done["rows_read"] != int64(5) || done["rows_published"] != int64(3) || done["rows_rejected"] != int64(2) {
		t.Fatalf("completed counts %v", done)
	}
	if done["event_id"] != r.SHA256+":1:COMPLETED" || done["kind"] != "full" || done["utility"] != "gec" {
		t.Fatalf("completed event %v", done)
	}
}

func TestSameBytesAreSkippedUnlessForced(t *testing.T) {
	env := kafkatest.Start(t)
	path := writeGz(t, t.TempDir(), "opwr_gec_res_v1-19-0_full_20250102030405.gz", []string{goodRow("SP1", 1), goodRow("SP2", 1)})
	ctx := context.Background()
	if _, err := newIngester(t, env, nil).Run(ctx, []string{path}); err != nil {
		t.Fatal(err)
	}
	// The same bytes under another name are the same file.
	copyPath := filepath.Join(t.TempDir(), "opwr_gec_res_v1-19-0_full_20250102030405.gz")
	b, _ := os.ReadFile(path)
	os.WriteFile(copyPath, b, 0o644)
	res, err := newIngester(t, env, nil).Run(ctx, []string{copyPath})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != Skipped || !strings.Contains(res[0].Note, "--force") {
		t.Fatalf("second ingestion: %+v", res[0])
	}
	if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing)); n != 2 {
		t.Fatalf("%d billing records after a skipped re-ingestion, want 2", n)
	}
	if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Files)); n != 2 {
		t.Fatalf("%d file events after a skipped re-ingestion, want 2", n)
	}
	res, err = newIngester(t, env, func(c *Config) { c.Force = true }).Run(ctx, []string{path})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != Completed || res[0].Generation != 2 {
		t.Fatalf("forced: %+v", res[0])
	}
	if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing)); n != 4 {
		t.Fatalf("%d billing records after a forced re-ingestion, want 4", n)
	}
}

var errCrash = errors.New("simulated crash")

// TestResumeAfterCrash kills an ingestion (in two places: right after a
// commit, and with a transaction open and full of flushed records) and
// checks that the rerun publishes every line exactly once.
func TestResumeAfterCrash(t *testing.T) {
	for _, where := range []string{"after commit", "inside open transaction"} {
		t.Run(where, func(t *testing.T) {
			env := kafkatest.Start(t)
			var lines []string
			for sp := 0; sp < 50; sp++ {
				for m := 1; m <= 12; m++ {
					lines = append(lines, goodRow(fmt.Sprintf("SP%03d", sp), m))
				}
			}
			lines[100] = "NA\tbroken" // one rejected row before the crash
			path := writeGz(t, t.TempDir(), "opwr_gec_res_v1-19-0_full_20250102030405.gz", lines)
			ctx := context.Background()
			commits := 0
			crash := func(int64) error {
				commits++
				if commits == 3 {
					return errCrash
				}
				return nil
			}
			_, err := newIngester(t, env, func(c *Config) {
				c.ChunkRows = 100
				if where == "after commit" {
					c.afterCommit = crash
				} else {
					c.beforeCommit = crash
				}
			}).Run(ctx, []string{path})
			if !errors.Is(err, errCrash) {
				t.Fatalf("want the simulated crash, got %v", err)
			}
			res, err := newIngester(t, env, func(c *Config) { c.ChunkRows = 100 }).Run(ctx, []string{path})
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			if r.Status != Completed || r.ResumedFrom == 0 || r.Read != 600 || r.Published != 599 || r.Rejected != 1 {
				t.Fatalf("resumed run: %+v", r)
			}
			seen := map[int64]int{}
			for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Billing)) {
				seen[m["source"].(map[string]any)["line"].(int64)]++
			}
			for line := int64(2); line <= 601; line++ {
				want := 1
				if line == 102 {
					want = 0
				}
				if seen[line] != want {
					t.Fatalf("line %d published %d times, want %d", line, seen[line], want)
				}
			}
			if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Rejected)); n != 1 {
				t.Fatalf("%d rejected records, want 1", n)
			}
			var statuses []string
			for _, e := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Files)) {
				statuses = append(statuses, e["status"].(string))
			}
			if strings.Join(statuses, ",") != "RECEIVED,COMPLETED" {
				t.Fatalf("file events %v", statuses)
			}
		})
	}
}

func TestFileFailsWithClearErrorAndEvent(t *testing.T) {
	env := kafkatest.Start(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "opwr_gec_res_v1-19-0_full_20250102030405.tsv")
	os.WriteFile(p, []byte("customer_id\taccount_id\n"), 0o644)
	res, err := newIngester(t, env, nil).Run(context.Background(), []string{p})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != Failed || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "premise_id") {
		t.Fatalf("result %+v", res[0])
	}
	events := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Files))
	if len(events) != 2 || events[1]["status"] != "FAILED" || events[1]["error"] == nil {
		t.Fatalf("events %v", events)
	}
}
