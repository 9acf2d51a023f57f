package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/testwait"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/runtime/runtimetest"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/records"
)

// fixture: generated files with every anomaly kind, ingested and processed
// by one set of instances whose state the API serves.
type fixture struct {
	env    *kafkatest.Env
	files  []string
	labels []gen.Label
	p      *pipeline.Pipeline
	ctx    context.Context
	reg    *prometheus.Registry // the metrics of the APIs started (one: the last)
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	kinds := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		kinds[k] = 1
	}
	env := kafkatest.Start(t)
	res, err := gen.Generate(t.TempDir(), gen.Config{ServicePoints: 60, Months: 14, Seed: 21,
		Now: time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC), Anomalies: kinds})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(ctx, res.Files); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(ctx, env.Kafka, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, files: res.Files, labels: res.Labels, p: p, ctx: ctx}
}

// start runs every stage in dir, attached to a new API served by an
// httptest server; stopping happens at the end of the test.
func (f *fixture) start(t testing.TB, dir, token string, opts ...func(*Config)) (*Server, *httptest.Server, []*runtime.Instance) {
	t.Helper()
	f.reg = prometheus.NewRegistry()
	cfg := Config{Kafka: f.env.Kafka, Token: token, Metrics: f.reg}
	for _, o := range opts {
		o(&cfg)
	}
	api := New(cfg)
	ts := httptest.NewServer(api.Handler())
	api.Listening(strings.TrimPrefix(ts.URL, "http://"))
	t.Cleanup(func() { ts.Close(); api.Close() })
	insts := runtimetest.StartAll(t, f.ctx, f.p.Stages(), func(runtime.Stage) runtime.Config {
		return runtime.Config{Kafka: f.env.Kafka, DataDir: dir, SessionTimeout: 6 * time.Second}
	}, api.Attach)
	return api, ts, insts
}

func get(t *testing.T, base, path, token string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, b)
	}
	return v
}

// stage1 runs stage 1 of the rules over the files: the state each service
// point must have (stage 1 is per service point, so the order between
// service points does not matter).
func stage1(t testing.TB, files []string) map[string]*rules.ServicePoint {
	t.Helper()
	out := map[string]*rules.ServicePoint{}
	err := ingest.EachRow(files, billing.Options{}, func(file string, row *records.BillingRow) error {
		sp := out[row.ServicePointID]
		if sp == nil {
			sp = &rules.ServicePoint{}
			out[row.ServicePointID] = sp
		}
		sp.Apply(rules.DefaultPolicy(), row, rules.Source{File: file, Line: row.Line})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func iso(d dates.Date) string {
	if d == 0 {
		return ""
	}
	return d.Time().Format("2006-01-02")
}

// TestServicePointAnswersEveryField: for every service point, the answer is
// the state the rules give: each period, each account with its status,
// dates, rate and source line, each open anomaly with its rule, dates and
// source line.
func TestServicePointAnswersEveryField(t *testing.T) {
	f := newFixture(t)
	_, ts, _ := f.start(t, t.TempDir(), "")
	waitCaughtUp(t, f)
	want := stage1(t, f.files)
	n := partitions(t, f)
	anomalies, terminated := 0, 0
	for id, sp := range want {
		code, _, body := get(t, ts.URL, "/v1/service-points/"+url.PathEscape(id), "")
		if code != http.StatusOK {
			t.Fatalf("GET service point %s: %d %s", id, code, body)
		}
		v := decode[ServicePoint](t, body)
		if v.ServicePointID != id || v.ServiceType != sp.ServiceType {
			t.Errorf("%s: id %q type %q, want %q", id, v.ServicePointID, v.ServiceType, sp.ServiceType)
		}
		if v.Partition != runtime.KeyPartition([]byte(id), n) {
			t.Errorf("%s: partition %d", id, v.Partition)
		}
		if len(v.Timeline) != len(sp.Periods) {
			t.Fatalf("%s: %d periods, want %d", id, len(v.Timeline), len(sp.Periods))
		}
		for i, p := range sp.Periods {
			got := v.Timeline[i]
			if got.Start != iso(p.Start) || got.DateTo != iso(p.DateTo) || got.Value != p.Value ||
				got.Duration != int32(p.DateTo-p.Start)+1 || (got.Charge != nil) != p.HasCharge || (p.HasCharge && *got.Charge != p.Charge) {
				t.Errorf("%s period %d: %+v, want %+v", id, i, got, p)
			}
		}
		if len(v.Accounts) != len(sp.Tenures) {
			t.Fatalf("%s: %d accounts, want %d", id, len(v.Accounts), len(sp.Tenures))
		}
		active := 0
		for i, tn := range sp.Tenures {
			a := v.Accounts[i]
			if a.AccountID != tn.AccountID || a.CustomerID != tn.CustomerID || a.PremiseID != tn.PremiseID ||
				a.SecondaryID != tn.SecondaryID || a.ActiveDate != iso(tn.ActiveDate) || a.InactiveDate != iso(tn.InactiveDate) ||
				a.DeletedOn != iso(tn.DeletedOn) || a.RateCode != tn.RateCode || a.RateSince != iso(tn.RateSince) ||
				a.Source.File != tn.Source.File || a.Source.Line != tn.Source.Line || a.Source.Line == 0 {
				t.Errorf("%s account %d: %+v, want %+v", id, i, a, tn)
			}
			if (a.EndSource != nil) != (tn.EndSource.Line != 0) || (a.EndSource != nil && a.EndSource.Line != tn.EndSource.Line) {
				t.Errorf("%s account %d: end source %+v, want %+v", id, i, a.EndSource, tn.EndSource)
			}
			switch {
			case tn.Deleted && a.Status != "deleted", !tn.Deleted && tn.InactiveDate != 0 && a.Status != "terminated":
				t.Errorf("%s account %d: status %s for %+v", id, i, a.Status, tn)
			case a.Status == "terminated":
				terminated++
			case a.Status == "active":
				active++
			}
		}
		if active > 1 {
			t.Errorf("%s: %d active accounts", id, active)
		}
		if len(v.Anomalies) != len(sp.Open) {
			t.Fatalf("%s: %d open anomalies, want %d", id, len(v.Anomalies), len(sp.Open))
		}
		for i, o := range sp.Open {
			a := v.Anomalies[i]
			if a.Code != o.Code || a.Rule == "" || a.AccountID != o.AccountID || a.From != iso(o.From) || a.To != iso(o.To) ||
				a.EffectiveDate != iso(o.EffectiveDate) || a.Until != iso(o.Until) || a.Source.File != o.Source.File || a.Source.Line != o.Source.Line {
				t.Errorf("%s anomaly %d: %+v, want %+v", id, i, a, o)
			}
			anomalies++
		}
	}
	if anomalies == 0 || terminated == 0 {
		t.Fatalf("the data gave %d open anomalies and %d terminated accounts: the test checks too little", anomalies, terminated)
	}
	// The labelled anomalies are where the answers say they are.
	for _, l := range f.labels {
		if l.Rule != "U2" {
			continue
		}
		_, _, body := get(t, ts.URL, "/v1/service-points/"+url.PathEscape(l.ServicePointID), "")
		v := decode[ServicePoint](t, body)
		if !slices.ContainsFunc(v.Anomalies, func(a Anomaly) bool { return a.Code == rules.AnomalyUsageGap && a.Rule == "U2" }) {
			t.Errorf("labelled gap on %s (%s:%d) is not an open anomaly: %+v", l.ServicePointID, l.File, l.Line, v.Anomalies)
		}
	}
}

func waitCaughtUp(t testing.TB, f *fixture) {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 3*time.Minute)
	defer cancel()
	if err := pipeline.WaitCaughtUp(ctx, f.env.Kafka); err != nil {
		t.Fatal(err)
	}
}

type subject struct{ customer, premise, program string }

// TestPremiseAnswersEligibilityWithReasons: for every customer and premise,
// each program's eligibility and reasons (code, rule, service point, dates,
// source file and line) are those of the last eligibility event of that
// subject on the topic; the customer's answer lists its premises.
func TestPremiseAnswersEligibilityWithReasons(t *testing.T) {
	f := newFixture(t)
	_, ts, _ := f.start(t, t.TempDir(), "")
	waitCaughtUp(t, f)
	last := map[subject]map[string]any{}
	premises := map[string]map[string]bool{}
	for _, m := range kafkatest.Decode(t, f.env.Kafka, kafkatest.ReadAll(t, f.env.Kafka, f.env.Topics.Eligibility)) {
		s := subject{m["customer_id"].(string), m["premise_id"].(string), m["program"].(string)}
		last[s] = m
		if premises[s.customer] == nil {
			premises[s.customer] = map[string]bool{}
		}
		premises[s.customer][s.premise] = true
	}
	if len(last) == 0 {
		t.Fatal("no eligibility events")
	}
	ineligible, withLine := 0, 0
	checked := map[string]bool{}
	for s := range last {
		key := s.customer + "/" + s.premise
		if checked[key] {
			continue
		}
		checked[key] = true
		code, _, body := get(t, ts.URL, "/v1/customers/"+url.PathEscape(s.customer)+"/premises/"+url.PathEscape(s.premise), "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", key, code, body)
		}
		v := decode[Premise](t, body)
		if v.CustomerID != s.customer || v.PremiseID != s.premise || !v.Evaluated || len(v.ServicePoints) == 0 {
			t.Errorf("%s: %+v", key, v)
		}
		if len(v.Programs) != len(rules.Programs()) {
			t.Fatalf("%s: %d programs, want %d", key, len(v.Programs), len(rules.Programs()))
		}
		for _, pr := range v.Programs {
			ev := last[subject{s.customer, s.premise, pr.Program}]
			if ev == nil {
				t.Fatalf("%s: program %s has no event", key, pr.Program)
			}
			if pr.Eligible != ev["eligible"].(bool) || v.SecondaryID != unwrap(ev["secondary_id"]) {
				t.Errorf("%s %s: eligible %v secondary %q, event says %v %q", key, pr.Program, pr.Eligible, v.SecondaryID, ev["eligible"], unwrap(ev["secondary_id"]))
			}
			rs := ev["reasons"].([]any)
			if len(pr.Reasons) != len(rs) {
				t.Fatalf("%s %s: %d reasons, the event has %d", key, pr.Program, len(pr.Reasons), len(rs))
			}
			for i, x := range rs {
				r := x.(map[string]any)
				src := r["source"].(map[string]any)
				got := pr.Reasons[i]
				if got.Code != r["code"] || got.Rule != r["rule"] || got.ServicePointID != unwrap(r["service_point_id"]) ||
					got.EffectiveDate != unwrap(r["effective_date"]) || got.Until != unwrap(r["until"]) ||
					got.Source.File != unwrap(src["file"]) || fmt.Sprint(got.Source.Line) != orZero(unwrap(src["line"])) {
					t.Errorf("%s %s reason %d: %+v, event %v", key, pr.Program, i, got, r)
				}
				if got.Source.Line > 0 && got.Source.File != "" {
					withLine++
				}
			}
			if !pr.Eligible {
				ineligible++
			}
		}
	}
	if ineligible == 0 || withLine == 0 {
		t.Fatalf("%d ineligible programs, %d reasons with a file line: the test checks too little", ineligible, withLine)
	}
	for c, ps := range premises {
		code, _, body := get(t, ts.URL, "/v1/customers/"+url.PathEscape(c), "")
		if code != http.StatusOK {
			t.Fatalf("GET customer %s: %d %s", c, code, body)
		}
		v := decode[Customer](t, body)
		var ids []string
		for _, p := range v.Premises {
			ids = append(ids, p.PremiseID)
			for _, prog := range rules.Programs() {
				if ev := last[subject{c, p.PremiseID, prog}]; ev != nil && p.Eligible[prog] != ev["eligible"].(bool) {
					t.Errorf("customer %s premise %s %s: eligible %v, event %v", c, p.PremiseID, prog, p.Eligible[prog], ev["eligible"])
				}
			}
		}
		for p := range ps {
			if !slices.Contains(ids, p) {
				t.Errorf("customer %s: premise %s missing from %v", c, p, ids)
			}
		}
	}
}

// unwrap renders a decoded Avro value as the API writes it.
func unwrap(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case map[string]any:
		for _, y := range x {
			return unwrap(y)
		}
	case time.Time:
		return x.UTC().Format("2006-01-02")
	case string:
		return x
	}
	return fmt.Sprint(v)
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// TestErrorsAndToken: unknown ids answer 404, malformed ids 400, a missing
// or wrong token 401 (with WWW-Authenticate), before the processors start
// 503; the right token gets through.
func TestErrorsAndToken(t *testing.T) {
	f := newFixture(t)
	early := New(Config{Kafka: f.env.Kafka, Token: "s3cret"})
	ets := httptest.NewServer(early.Handler())
	defer ets.Close()
	defer early.Close()
	if code, hdr, _ := get(t, ets.URL, "/v1/service-points/X", "s3cret"); code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("before the processors start: %d, Retry-After %q; want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}

	_, ts, _ := f.start(t, t.TempDir(), "s3cret")
	waitCaughtUp(t, f)
	sp := ""
	for id := range stage1(t, f.files) {
		sp = id
		break
	}
	for _, c := range []struct {
		name, path, token string
		want              int
	}{
		{"no token", "/v1/service-points/" + sp, "", http.StatusUnauthorized},
		{"wrong token", "/v1/service-points/" + sp, "nope", http.StatusUnauthorized},
		{"right token", "/v1/service-points/" + sp, "s3cret", http.StatusOK},
		{"unknown service point", "/v1/service-points/NO-SUCH-SP", "s3cret", http.StatusNotFound},
		{"unknown customer", "/v1/customers/NO-SUCH-CUSTOMER", "s3cret", http.StatusNotFound},
		{"unknown customer at a premise", "/v1/customers/NO-SUCH-CUSTOMER/premises/P1", "s3cret", http.StatusNotFound},
		{"tab in the id", "/v1/service-points/A%09B", "s3cret", http.StatusBadRequest},
		{"newline in a customer id", "/v1/customers/A%0AB", "s3cret", http.StatusBadRequest},
		{"leading space", "/v1/service-points/%20A", "s3cret", http.StatusBadRequest},
		{"not UTF-8", "/v1/service-points/%FF%FE", "s3cret", http.StatusBadRequest},
		{"too long", "/v1/service-points/" + strings.Repeat("9", 300), "s3cret", http.StatusBadRequest},
		{"control character in a premise id", "/v1/customers/C1/premises/%01", "s3cret", http.StatusBadRequest},
		{"no such endpoint", "/v1/meters/1", "s3cret", http.StatusNotFound},
	} {
		code, hdr, body := get(t, ts.URL, c.path, c.token)
		if code != c.want {
			t.Errorf("%s: GET %s: %d %s, want %d", c.name, c.path, code, body, c.want)
			continue
		}
		if code == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
		if code != http.StatusOK {
			e := decode[Error](t, body)
			if e.Error == "" {
				t.Errorf("%s: error body without a message: %s", c.name, body)
			}
		}
	}
	// The metrics count the answers by endpoint and status.
	if got := testutil.ToFloat64(f.apiRequests(t, "service_point", "401")); got != 2 {
		t.Errorf("usagestream_query_requests_total{endpoint=service_point,code=401} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(f.apiRequests(t, "service_point", "400")); got != 4 {
		t.Errorf("usagestream_query_requests_total{endpoint=service_point,code=400} = %v, want 4", got)
	}
	// A known customer at a premise it has no account at.
	var cust string
	for _, m := range kafkatest.Decode(t, f.env.Kafka, kafkatest.ReadAll(t, f.env.Kafka, f.env.Topics.Eligibility)) {
		cust = m["customer_id"].(string)
		break
	}
	if code, _, body := get(t, ts.URL, "/v1/customers/"+cust+"/premises/NO-SUCH-PREMISE", "s3cret"); code != http.StatusNotFound || !strings.Contains(string(body), "no account at premise") {
		t.Errorf("known customer, unknown premise: %d %s", code, body)
	}
}

// TestKeyOnAnotherInstance: with two instances sharing the partitions, each
// answers every key: its own from its state, the others' by asking the
// owner (named in X-Usagestream-Served-By); a request already passed on once
// is answered with 421 naming the owner and its address.
func TestKeyOnAnotherInstance(t *testing.T) {
	f := newFixture(t)
	peer := func(c *Config) { c.PeerToken = "peer-tok" }
	_, tsA, instA := f.start(t, t.TempDir(), "tok", peer)
	_, tsB, instB := f.start(t, t.TempDir(), "tok", peer)
	waitCaughtUp(t, f)
	// Wait until the service point stage's partitions are split between the
	// two and the group has settled.
	waitSplit(t, f, instA[0], instB[0])
	n := partitions(t, f)
	memberB, err := instB[0].MemberID()
	if err != nil {
		t.Fatal(err)
	}
	sps := stage1(t, f.files)
	remote, local := 0, 0
	for id := range sps {
		p := runtime.KeyPartition([]byte(id), n)
		ownedByB := slices.Contains(instB[0].Owned(), p)
		code, hdr, body := get(t, tsA.URL, "/v1/service-points/"+url.PathEscape(id), "tok")
		if code != http.StatusOK {
			t.Fatalf("A for %s (partition %d, B owns it: %v): %d %s", id, p, ownedByB, code, body)
		}
		v := decode[ServicePoint](t, body)
		if v.ServicePointID != id || v.Partition != p || len(v.Timeline) != len(sps[id].Periods) {
			t.Errorf("A for %s: %+v", id, v)
		}
		if ownedByB {
			remote++
			if hdr.Get(servedByHeader) != memberB {
				t.Errorf("%s is on B (%s) but was served by %q", id, memberB, hdr.Get(servedByHeader))
			}
			// Passed on once already: 421 with the owner's address.
			code, _, body := get(t, tsA.URL, "/v1/service-points/"+url.PathEscape(id), "tok", forwardedHeader, "http://elsewhere")
			e := decode[Error](t, body)
			if code != http.StatusMisdirectedRequest || e.Owner == nil || e.Owner.Member != memberB || e.Owner.URL != tsB.URL || e.Owner.Partition != p {
				t.Errorf("forwarded request for %s: %d %+v, want 421 naming %s at %s", id, code, e, memberB, tsB.URL)
			}
			// Without the token, the owner refuses as well.
			if code, _, _ := get(t, tsA.URL, "/v1/service-points/"+url.PathEscape(id), ""); code != http.StatusUnauthorized {
				t.Errorf("no token, remote key: %d", code)
			}
		} else {
			local++
		}
	}
	if remote == 0 || local == 0 {
		t.Fatalf("%d remote and %d local keys: the test checks too little", remote, local)
	}
}

// partitions is the billing topic's partition count.
func partitions(t *testing.T, f *fixture) int {
	t.Helper()
	d := newDirectory(f.env.Kafka)
	defer d.Close()
	n, err := d.partitions(f.ctx, f.env.Topics.Billing)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// apiRequests is the request counter of the last API started, by labels.
func (f *fixture) apiRequests(t *testing.T, endpoint, code string) prometheus.Collector {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != "usagestream_query_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == endpoint && labels["code"] == code {
				c.Add(m.GetCounter().GetValue())
			}
		}
	}
	return c
}

// waitSplit waits until the service point stage's partitions are split
// between two instances and the group has settled.
func waitSplit(t *testing.T, f *fixture, a, b *runtime.Instance) {
	t.Helper()
	n := partitions(t, f)
	var oa, ob []int32
	if !testwait.For(3*time.Minute, func() bool {
		oa, ob = a.Owned(), b.Owned()
		return len(oa) > 0 && len(ob) > 0 && len(oa)+len(ob) == n
	}) {
		t.Fatalf("partitions not split after 3 minutes: A %v, B %v", oa, ob)
	}
}
