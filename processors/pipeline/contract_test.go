package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/producers/adapter"
	"github.com/usagestream/usagestream/producers/httpin"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
	"github.com/usagestream/usagestream/schemas"
)

// badRead is one read that breaks the contract, expressible on every path.
type badRead struct {
	name  string
	sp    string
	ch    string    // channel
	local time.Time // the local end, at its offset
	units string
	value float64
	code  string // the reason every path gives
}

// TestSameBadReadRefusedOnEveryPath (issue 19): the same bad read sent as
// an interval file row, a POST /v1/intervals line, a Go SDK read, and a
// record produced straight to intervals.v1 (as an adapter in another
// language would) is refused on every path with the same codes: the file
// row and the HTTP and SDK reads go to rejected.v1, each with its origin;
// the record on the topic is quarantined by the interval stage with the
// reason. One implementation, producers/interval's contract, says so.
func TestSameBadReadRefusedOnEveryPath(t *testing.T) {
	env := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	edt := time.FixedZone("", -4*3600)
	at := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, edt) }
	cases := []badRead{
		{"control character in the id", "SP\x01C", "", at(2024, 6, 1, 0, 15), "KWH", 1.5, records.CodeControlChar},
		{"id over 256 bytes", strings.Repeat("L", 257), "", at(2024, 6, 1, 0, 15), "KWH", 1.5, records.CodeTooLong},
		{"id not UTF-8", "SP\xffU", "", at(2024, 6, 1, 0, 15), "KWH", 1.5, records.CodeInvalidUTF8},
		{"channel over 256 bytes", "SP-CH", strings.Repeat("c", 300), at(2024, 6, 1, 0, 15), "KWH", 1.5, records.CodeTooLong},
		{"off the 15-minute grid", "SP-GRID", "", at(2024, 6, 1, 0, 10), "KWH", 1.5, records.CodeOffGrid},
		{"dated 1980", "SP-1980", "", at(1980, 6, 1, 0, 15), "KWH", 1.5, records.CodeDateOutOfWindow},
		{"dated 9999", "SP-9999", "", at(9999, 6, 1, 0, 15), "KWH", 1.5, records.CodeDateOutOfWindow},
		{"unknown units", "SP-UNITS", "", at(2024, 6, 1, 0, 15), "BTU", 1.5, records.CodeBadUnits},
		{"value beyond the range", "SP-VALUE", "", at(2024, 6, 1, 0, 15), "KWH", 1e10, records.CodeOutOfRange},
	}
	got := make([]map[string]string, len(cases)) // case -> path -> codes
	for i := range got {
		got[i] = map[string]string{}
	}
	record := func(path string, i int, codes []string) { got[i][path] = strings.Join(codes, ",") }

	// 1. A file, through ingest (with good rows, so the file stands).
	var file strings.Builder
	file.WriteString(strings.Join(records.IntervalColumns(), "\t") + "\n")
	for _, c := range cases {
		fmt.Fprintf(&file, "%s\t%.1f\t%s\t%s\t%s\tA\t-0400\tE\t%s\n", c.sp, c.value, c.local.Format("20060102"), c.local.Format("1504"), c.units, c.ch)
	}
	for q := 1; q <= 20; q++ {
		fmt.Fprintf(&file, "SP-GOOD\t1\t20240601\t%02d%02d\tKWH\tA\t-0400\tE\t\n", q*15/60, q*15%60)
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "opwr_gec_res_v1-19-0_interval15_20241104120000.tsv")
	if err := os.WriteFile(name, []byte(file.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(ctx, []string{name}); err != nil {
		t.Fatal(err)
	}

	// 2. POST /v1/intervals, and 3. the Go SDK: clients as cmd makes them.
	newClient := func(name, kind string) *adapter.Client {
		rc, err := env.Kafka.NewRegistryClient()
		if err != nil {
			t.Fatal(err)
		}
		opts, err := env.Kafka.Opts()
		if err != nil {
			t.Fatal(err)
		}
		c, err := adapter.New(ctx, rc, adapter.Config{Utility: "gec", Name: name, Kind: kind, TopicPrefix: env.Kafka.TopicPrefix}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	hc := newClient("http", adapter.KindHTTP)
	var body bytes.Buffer
	for _, c := range cases {
		b, err := json.Marshal(map[string]any{"service_point_id": c.sp, "interval_end": c.local.Format(time.RFC3339),
			"minutes": 15, "value": c.value, "units": c.units, "is_estimate": "A", "service_type": "E", "channel": c.ch})
		if err != nil {
			t.Fatal(err)
		}
		body.Write(append(b, '\n'))
	}
	w := httptest.NewRecorder()
	httpin.Handler(hc, httpin.Config{}).ServeHTTP(w, httptest.NewRequest(http.MethodPost, httpin.Path, &body))
	var resp httpin.Response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != http.StatusOK || resp.Rejected != len(cases) {
		t.Fatalf("POST: %d %s", w.Code, w.Body.String())
	}
	for i, r := range resp.Results {
		var codes []string
		for _, e := range r.Errors {
			codes = append(codes, e.Code)
		}
		record("http answer", i, codes)
	}
	hc.Close(ctx)

	sc := newClient("sdk", adapter.KindAdapter)
	reads := make([]adapter.Read, len(cases))
	for i, c := range cases {
		reads[i] = adapter.Read{ServicePointID: c.sp, Channel: c.ch, LocalEnd: c.local, Minutes: 15, Value: c.value, Units: c.units, Estimate: "A", ServiceType: "E", Line: int64(i + 1)}
	}
	for i, err := range sc.SendBatch(ctx, reads) {
		var re *adapter.ReadError
		if !errors.As(err, &re) || re.Err != nil {
			t.Fatalf("SDK read %d: %v", i, err)
		}
		record("sdk error", i, re.Codes())
	}
	sc.Close(ctx)

	// What rejected.v1 holds, by origin and line.
	for _, m := range kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Rejected)) {
		src := m["source"].(map[string]any)
		line := int(src["line"].(int64))
		var codes []string
		for _, r := range m["reasons"].([]any) {
			codes = append(codes, r.(map[string]any)["code"].(string))
		}
		switch f := src["file"].(string); f {
		case filepath.Base(name):
			record("file on rejected.v1", line-2, codes)
		case "http:http", "adapter:sdk":
			record(f+" on rejected.v1", line-1, codes)
		default:
			t.Fatalf("rejected record from %q", f)
		}
	}

	// 4. Straight to intervals.v1, by a producer that checks nothing.
	rc, err := env.Kafka.NewRegistryClient()
	if err != nil {
		t.Fatal(err)
	}
	reg := serde.NewRegistry(rc)
	id, err := reg.Register(ctx, serde.SubjectFor(env.Topics.Intervals), schemas.MustText(schemas.IntervalRead))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := env.Kafka.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, c := range cases {
		_, off := c.local.Zone()
		r := records.IntervalRead{ServicePointID: c.sp, Channel: c.ch, LocalDate: dates.FromCivil(c.local.Date()), LocalTime: int16(c.local.Hour()*60 + c.local.Minute()),
			OffsetMinutes: int16(off / 60), OffsetGiven: true, EndMillis: c.local.UnixMilli(), Minutes: 15, Value: c.value, Units: c.units, Estimate: records.EstimateActual, ServiceType: "E"}
		v, err := interval.AppendAvro(nil, id, &r, interval.Origin{Utility: "gec", Kind: "adapter", Name: "python-mdms"})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: env.Topics.Intervals, Key: []byte(c.sp), Value: v})
	}
	// And one only a record on the topic can hold: its UTC end an hour
	// away from its local end (a producer that got its offset wrong).
	skew := records.IntervalRead{ServicePointID: "SP-SKEW", LocalDate: dates.MustParse("20240601"), LocalTime: 15, OffsetMinutes: -240, OffsetGiven: true,
		EndMillis: at(2024, 6, 1, 1, 15).UnixMilli(), Minutes: 15, Value: 1, Units: "KWH", Estimate: records.EstimateActual}
	v, err := interval.AppendAvro(nil, id, &skew, interval.Origin{Utility: "gec", Kind: "adapter", Name: "python-mdms"})
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, &kgo.Record{Topic: env.Topics.Intervals, Key: []byte("SP-SKEW"), Value: v})
	cases = append(cases, badRead{name: "UTC end and local end disagree", sp: "SP-SKEW", code: records.CodeInconsistentTime})
	got = append(got, map[string]string{})
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	runIntervalStage(t, env.Kafka, t.TempDir(), nil, func() bool {
		return len(kafkatest.ReadAll(t, env.Kafka, quarantine.StageTopic(env.Kafka.TopicPrefix, StageInterval))) >= len(cases)
	})
	reason := regexp.MustCompile(`(?:: |; )[A-Za-z_]+ ([A-Z][A-Z0-9_]+) \(`)
	for _, r := range kafkatest.ReadAll(t, env.Kafka, quarantine.StageTopic(env.Kafka.TopicPrefix, StageInterval)) {
		q, err := quarantine.Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		i := -1
		for k, c := range cases {
			if c.sp == string(r.Key) {
				i = k
			}
		}
		if i < 0 || q.Source.Topic != env.Topics.Intervals {
			t.Fatalf("quarantined %q from %s: %s", r.Key, q.Source.Topic, q.Error)
		}
		var codes []string
		for _, m := range reason.FindAllStringSubmatch(q.Error, -1) {
			codes = append(codes, m[1])
		}
		record("quarantined by the interval stage", i, codes)
	}

	paths := []string{"file on rejected.v1", "http answer", "http:http on rejected.v1", "sdk error", "adapter:sdk on rejected.v1", "quarantined by the interval stage"}
	for i, c := range cases {
		if c.sp == "SP-SKEW" {
			if q := got[i]["quarantined by the interval stage"]; q != c.code {
				t.Errorf("%s: quarantined with %q, want %s", c.name, q, c.code)
			}
			continue
		}
		for _, p := range paths {
			if got[i][p] != c.code {
				t.Errorf("%s: %s gave %q, want %s (every path: %v)", c.name, p, got[i][p], c.code, got[i])
			}
		}
	}
}
