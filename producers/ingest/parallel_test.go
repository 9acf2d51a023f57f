package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/records"
	recavro "github.com/usagestream/usagestream/records/avro"
)

// TestBillingRecordsMatchReader: billing lines parsed by the encoders
// (NextLine, a billing.Parser per worker, slabs reused after each commit)
// are published as exactly the records billing.Reader.Next gives, encoded
// one by one: the same keys and bytes for every accepted row and every
// rejected row (reasons, line, field, redacted text), with the extra
// columns of a header, blank, short, over-long and invalid lines among them,
// and commits falling inside batches.
func TestBillingRecordsMatchReader(t *testing.T) {
	env := kafkatest.Start(t)
	rng := rand.New(rand.NewPCG(5, 6))
	bad := []func(string) string{
		func(string) string { return "" },
		func(s string) string { return s[:strings.LastIndexByte(s, '\t')] },
		func(s string) string { return strings.Replace(s, "20240101", "20240230", 1) },
		func(s string) string { return strings.Replace(s, "\tE\t", "\tQ\t", 1) },
		func(s string) string { return strings.Replace(s, "41.5", "4,1.5", 1) },
		func(s string) string { return strings.Replace(s, "Secret Street", "Caf\xe9", 1) },
		func(s string) string { return strings.Replace(s, "\tA\t", "\tNA\t", 1) },
		func(s string) string { return s + strings.Repeat("x", 70_000) }, // over the line limit
	}
	var lines []string
	for i := range 20000 {
		row := goodRow(fmt.Sprintf("SP%04d", i%700), 1+i%12) + "\tMacon\t" + fmt.Sprint(i)
		if rng.IntN(10) == 0 {
			row = bad[rng.IntN(len(bad))](row)
		}
		lines = append(lines, row)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "opwr_gec_res_v1-19-0_full_20250102030405.tsv")
	writeText(t, path, records.HeaderLine(records.LayoutFull)+"\tmail_city\tnote\n"+strings.Join(lines, "\n")+"\n")

	in := newIngester(t, env, func(c *Config) {
		c.ChunkRows = 700 // commits inside batches of 512 lines
		c.RejectLimit = &RejectLimit{MaxRows: -1}
	})
	res, err := in.Run(context.Background(), []string{path})
	if err != nil || res[0].Status != Completed {
		t.Fatalf("%+v %v", res, err)
	}

	// The same file through Next, each record encoded as ingest encodes it.
	src := source{utility: "gec", file: filepath.Base(path), sha256: res[0].SHA256}
	rd, err := billing.Open(path, billing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var wantBilling, wantRejected []string
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Row != nil {
			v, err := recavro.AppendBillingRow(nil, in.billing, rec.Row, recavro.BillingSource{Utility: src.utility, File: src.file, SHA256: src.sha256})
			if err != nil {
				t.Fatal(err)
			}
			wantBilling = append(wantBilling, rec.Row.ServicePointID+"|"+string(v))
			continue
		}
		key := rec.Rejected.ServicePointID
		if key == "" {
			key = src.sha256
		}
		v, err := in.rejected.Append(nil, rejectedRecord(rec.Rejected, "full", src))
		if err != nil {
			t.Fatal(err)
		}
		wantRejected = append(wantRejected, key+"|"+string(v))
	}
	if res[0].Published != int64(len(wantBilling)) || res[0].Rejected != int64(len(wantRejected)) || len(wantRejected) < 100 {
		t.Fatalf("ingest published %d and rejected %d; Next gives %d and %d", res[0].Published, res[0].Rejected, len(wantBilling), len(wantRejected))
	}
	for topic, want := range map[string][]string{env.Topics.Billing: wantBilling, env.Topics.Rejected: wantRejected} {
		var got []string
		for _, r := range kafkatest.ReadAll(t, env.Kafka, topic) {
			got = append(got, string(r.Key)+"|"+string(r.Value))
		}
		// Partitions interleave: compare as multisets.
		slices.Sort(got)
		slices.Sort(want)
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, Next gives %d", topic, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: a record differs from Next's:\n got %q\nwant %q", topic, got[i], want[i])
			}
		}
	}
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
