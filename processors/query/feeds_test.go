package query

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

// TestConsoleEndpoints: the answers the web console reads beside the
// state's: the files ingested are the file events on files.v1 with their
// counts; a service point's corrections are the corrections.v1 records of
// its key with old and new values and the source line; a premise lists
// every account the service points' answers place there; a service point
// with interval reads has a day of coverage per day read, complete when
// the file had every interval. Every one asks for the token.
func TestConsoleEndpoints(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
	iv, _, err := gen.GenerateIntervals(t.TempDir(), gen.IntervalConfig{ServicePoints: 2, Days: 3, Minutes: 60, Seed: 3, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(f.ctx, f.env.Kafka, ingest.Config{Topics: f.env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(f.ctx, []string{iv}); err != nil {
		t.Fatal(err)
	}
	_, ts, _ := f.start(t, t.TempDir(), "tok")
	waitCaughtUp(t, f)

	for _, p := range []string{"/v1/files", "/v1/stages", "/v1/premises/P1", "/v1/service-points/SP1/corrections", "/v1/service-points/SP1/intervals"} {
		if code, _, _ := get(t, ts.URL, p, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d, want 401", p, code)
		}
	}

	// Files: one answer per file event, the counts the event carries.
	code, _, body := get(t, ts.URL, "/v1/files", "tok")
	if code != http.StatusOK {
		t.Fatalf("/v1/files: %d %s", code, body)
	}
	files := decode[Files](t, body)
	events := kafkatest.Decode(t, f.env.Kafka, kafkatest.ReadAll(t, f.env.Kafka, f.env.Topics.Files))
	if len(files.Files) != len(events) || len(events) < len(f.files)+1 {
		t.Fatalf("/v1/files lists %d events; files.v1 holds %d for %d files", len(files.Files), len(events), len(f.files)+1)
	}
	for _, e := range events {
		i := slices.IndexFunc(files.Files, func(fe FileEvent) bool { return fe.SHA256 == e["file_sha256"] && fe.Status == e["status"] })
		if i < 0 {
			t.Errorf("file event %v %v is not listed", e["file"], e["status"])
			continue
		}
		fe := files.Files[i]
		if fe.File != e["file"] || fe.RowsRead != e["rows_read"] || fe.RowsPublished != e["rows_published"] || fe.RowsRejected != e["rows_rejected"] {
			t.Errorf("listed %+v, event %v", fe, e)
		}
	}
	for i := 1; i < len(files.Files); i++ {
		if files.Files[i].EventTime > files.Files[i-1].EventTime {
			t.Errorf("files not newest first: %s before %s", files.Files[i-1].EventTime, files.Files[i].EventTime)
		}
	}

	// Corrections: those of the key, in order, with the values the topic has.
	bySP := map[string][]map[string]any{}
	for _, c := range kafkatest.Decode(t, f.env.Kafka, kafkatest.ReadAll(t, f.env.Kafka, f.env.Topics.Corrections)) {
		id := c["service_point_id"].(string)
		bySP[id] = append(bySP[id], c)
	}
	if len(bySP) == 0 {
		t.Fatal("the fixture made no correction")
	}
	for id, want := range bySP {
		code, _, body := get(t, ts.URL, "/v1/service-points/"+url.PathEscape(id)+"/corrections", "tok")
		if code != http.StatusOK {
			t.Fatalf("corrections of %s: %d %s", id, code, body)
		}
		got := decode[Corrections](t, body)
		if len(got.Corrections) != len(want) {
			t.Fatalf("%s: %d corrections, the topic has %d", id, len(got.Corrections), len(want))
		}
		for i, w := range want {
			g := got.Corrections[i]
			if g.EventID != w["event_id"] || g.OldValue != w["old_value"] || g.NewValue != w["new_value"] || g.Rule != w["rule"] {
				t.Errorf("%s correction %d: %+v, topic %v", id, i, g, w)
			}
			if g.Kind != "INTERVAL" && (g.Source.File == "" || g.Source.Line == 0) {
				t.Errorf("%s correction %d names no file line: %+v", id, i, g.Source)
			}
		}
	}
	if code, _, body := get(t, ts.URL, "/v1/service-points/NO-SUCH/corrections", "tok"); code != http.StatusOK || !strings.Contains(string(body), `"corrections": []`) {
		t.Errorf("an unknown service point's corrections: %d %s, want an empty list", code, body)
	}

	// Premises: every account a service point answer places at a premise.
	placed := map[string]map[string]bool{} // premise -> sp/customer
	for id := range stage1(t, f.files) {
		code, _, body := get(t, ts.URL, "/v1/service-points/"+url.PathEscape(id), "tok")
		if code != http.StatusOK {
			t.Fatalf("%s: %d", id, code)
		}
		for _, a := range decode[ServicePoint](t, body).Accounts {
			if a.Status == "deleted" {
				continue
			}
			if placed[a.PremiseID] == nil {
				placed[a.PremiseID] = map[string]bool{}
			}
			placed[a.PremiseID][id+"/"+a.CustomerID] = true
		}
	}
	for premise, want := range placed {
		code, _, body := get(t, ts.URL, "/v1/premises/"+url.PathEscape(premise), "tok")
		if code != http.StatusOK {
			t.Fatalf("premise %s: %d %s", premise, code, body)
		}
		got := map[string]bool{}
		for _, m := range decode[PremiseSite](t, body).Members {
			got[m.ServicePointID+"/"+m.CustomerID] = true
		}
		for k := range want {
			if !got[k] {
				t.Errorf("premise %s lacks %s: %v", premise, k, got)
			}
		}
	}
	if code, _, _ := get(t, ts.URL, "/v1/premises/NO-SUCH", "tok"); code != http.StatusNotFound {
		t.Errorf("an unknown premise: %d, want 404", code)
	}

	// Interval coverage: three days of hourly reads, each complete.
	code, _, body = get(t, ts.URL, "/v1/service-points/SP-E-00000001/intervals", "tok")
	if code != http.StatusOK {
		t.Fatalf("intervals: %d %s", code, body)
	}
	cov := decode[Coverage](t, body)
	if len(cov.Channels) != 1 || cov.Channels[0].Minutes != 60 || len(cov.Channels[0].Days) != 3 {
		t.Fatalf("coverage %+v, want one hourly channel of 3 days", cov)
	}
	for _, d := range cov.Channels[0].Days {
		if d.Missing != 0 || d.Present < 23 {
			t.Errorf("day %+v of a complete file is not complete", d)
		}
	}
}

// TestStagesFromMetrics: /v1/stages sums each stage's and sink's metrics
// over partitions and topics, aborts by reason.
func TestStagesFromMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "usagestream_processor_consumer_lag_records"}, []string{"processor", "topic", "partition"})
	aborted := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usagestream_processor_transactions_aborted_total"}, []string{"processor", "reason"})
	restore := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "usagestream_processor_restore_remaining_records"}, []string{"processor", "partition"})
	quar := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usagestream_sink_records_quarantined_total"}, []string{"sink", "topic"})
	reg.MustRegister(lag, aborted, restore, quar)
	lag.WithLabelValues("servicepoint", "billing.v1", "0").Set(3)
	lag.WithLabelValues("servicepoint", "billing.v1", "1").Set(4)
	lag.WithLabelValues("customer", "m", "0").Set(0)
	aborted.WithLabelValues("servicepoint", "rebalance").Add(2)
	restore.WithLabelValues("customer", "0").Set(10)
	restore.WithLabelValues("customer", "1").Set(5)
	quar.WithLabelValues("postgres", "eligibility.v1").Inc()

	api := New(Config{Token: "tok", Gatherer: reg})
	t.Cleanup(api.Close)
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/v1/stages", nil)
	req.Header.Set("Authorization", "Bearer tok")
	api.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	got := decode[Stages](t, w.Body.Bytes())
	want := Stages{
		Stages: []StageStatus{
			{Stage: "customer", RestoreRemaining: 15, Aborted: map[string]float64{}},
			{Stage: "servicepoint", Lag: 7, Aborted: map[string]float64{"rebalance": 2}},
		},
		Sinks: []SinkStatus{{Sink: "postgres", Quarantined: 1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
