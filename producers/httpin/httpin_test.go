package httpin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/adapter"
	"github.com/usagestream/usagestream/producers/interval"
)

func post(t testing.TB, h http.Handler, token, body string) (int, Response) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var resp Response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("status %d, body %q is not a Response: %v", w.Code, w.Body.String(), err)
	}
	return w.Code, resp
}

// TestEndpoint: on the embedded broker, good lines land on the interval
// topic and every line gets its own result; the token and the body limit hold.
func TestEndpoint(t *testing.T) {
	env := kafkatest.Start(t)
	c := newClient(t, env.Kafka)
	defer c.Close(context.Background())
	h := Handler(c, Config{Token: "s3cret", MaxBodyBytes: 2048})
	body := `{"service_point_id":"SP1","interval_end":"2024-11-03T01:00:00-04:00","minutes":60,"value":1.5,"units":"kwh","is_estimate":"A"}
{"service_point_id":"SP1","interval_end":"2024-11-03T01:00:00-05:00","minutes":60,"value":1.25,"units":"KWH"}

{"service_point_id":"SP1","interval_end":"2024-11-03T01:30:00-05:00","minutes":60,"value":1,"units":"KWH"}
{"service_point_id":"SP1","interval_end":"2024-11-03T02:00:00-05:00","minutes":60,"value":"abc","units":"KWH"}
not json
{"service_point_id":"SP1","interval_end":"2024-11-03T02:00:00-05:00","minutes":60,"value":1,"units":"BTU","colour":"red"}
{"interval_end":"2024-11-03T02:00:00-05:00","minutes":60,"value":1,"units":"BTU"}
`
	if code, _ := post(t, h, "", body); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := post(t, h, "wrong", body); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	code, resp := post(t, h, "s3cret", body)
	if code != http.StatusOK || resp.Lines != 7 || resp.Accepted != 2 || resp.Rejected != 5 || len(resp.Results) != 7 {
		t.Fatalf("%d %+v", code, resp)
	}
	want := []string{"1 accepted", "2 accepted", "4 rejected time:OFF_GRID", "5 rejected value:BAD_JSON", "6 rejected :BAD_JSON", "7 rejected colour:BAD_JSON", "8 rejected service_point_id:REQUIRED"}
	for i, r := range resp.Results {
		got := strings.TrimSpace(strings.Join([]string{itoa(r.Line), r.Status}, " "))
		if len(r.Errors) > 0 {
			got += " " + r.Errors[0].Field + ":" + r.Errors[0].Code
		}
		if got != want[i] {
			t.Fatalf("result %d: %q, want %q (%+v)", i, got, want[i], r)
		}
	}
	reads := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals))
	if len(reads) != 2 {
		t.Fatalf("%d reads on the topic", len(reads))
	}
	r0, o, _ := interval.FromNative(reads[0])
	r1, _, _ := interval.FromNative(reads[1])
	if o.Kind != interval.OriginHTTP || r0.Line != 1 || r1.EndMillis-r0.EndMillis != 3_600_000 || r0.Units != "KWH" {
		t.Fatalf("reads %+v %+v from %+v: the repeated hour must be two instants an hour apart", r0, r1, o)
	}
	big := strings.Repeat(`{"service_point_id":"SP1","interval_end":"2024-11-03T03:00:00-05:00","minutes":60,"value":1,"units":"KWH"}`+"\n", 30)
	if code, resp := post(t, h, "s3cret", big); code != http.StatusRequestEntityTooLarge || resp.Error == "" {
		t.Fatalf("big body: %d %+v", code, resp)
	}
	if n := len(kafkatest.ReadAll(t, env.Kafka, env.Topics.Intervals)); n != 2 {
		t.Fatalf("a body over the limit published %d reads", n-2)
	}
	// Every rejected line is on rejected.v1 with its origin and line, as a
	// rejected file row is: the ones that were no read first, then the
	// ones the contract refused.
	rej := kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, env.Topics.Rejected))
	var got []string
	for _, r := range rej {
		src := r["source"].(map[string]any)
		code := r["reasons"].([]any)[0].(map[string]any)["code"].(string)
		got = append(got, fmt.Sprintf("%v %v %s", src["file"], src["line"], code))
		if r["raw"] == "" {
			t.Fatalf("rejected record without its line: %v", r)
		}
	}
	sort.Strings(got)
	if w := "http:http 4 OFF_GRID,http:http 5 BAD_JSON,http:http 6 BAD_JSON,http:http 7 BAD_JSON,http:http 8 REQUIRED"; strings.Join(got, ",") != w {
		t.Fatalf("rejected.v1 holds %v, want %s", got, w)
	}
}

// newClient is the endpoint's client on the test broker, as cmd makes it.
func newClient(t testing.TB, kc kafkaconf.Config) *adapter.Client {
	t.Helper()
	rc, err := kc.NewRegistryClient()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := kc.Opts()
	if err != nil {
		t.Fatal(err)
	}
	c, err := adapter.New(context.Background(), rc, adapter.Config{Utility: "gec", Name: "http", Kind: adapter.KindHTTP, TopicPrefix: kc.TopicPrefix}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAnswersWithoutGoInternals (issue 19): a wrong method is 405 with
// Allow, the 401 text is plain (not "\u003c"), and a line of the wrong
// JSON type is explained in the JSON's terms, not Go's.
func TestAnswersWithoutGoInternals(t *testing.T) {
	h := Handler(&recorder{}, Config{Token: "s3cret"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, Path, nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Fatalf("GET: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, Path, strings.NewReader("{}")))
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "Bearer <USAGESTREAM_API_TOKEN>") {
		t.Fatalf("401: %d %s", w.Code, w.Body.String())
	}
	h = Handler(&recorder{}, Config{})
	for _, c := range []struct{ line, field, want string }{
		{`{"service_point_id":"SP1","interval_end":"2024-06-01T00:15:00-04:00","minutes":15,"value":"0.5","units":"KWH"}`, "value", "value is a string; it must be a number"},
		{`{"service_point_id":1,"interval_end":"2024-06-01T00:15:00-04:00","minutes":15,"value":0.5,"units":"KWH"}`, "service_point_id", "service_point_id is a number; it must be a string"},
		{`{"service_point_id":"SP1","interval_end":"2024-06-01T00:15:00-04:00","minutes":15.5,"value":0.5,"units":"KWH"}`, "minutes", "minutes is a number 15.5; it must be a whole number"},
		{`{"service_point_id":"SP1","colour":"red"}`, "colour", `unknown key "colour"`},
		{`[1,2]`, "", "the line is an array; it must be a JSON object"},
		{`{"service_point_id":"SP1",`, "", "the line ends inside a JSON value"},
		{`not json`, "", "the line is not valid JSON"},
	} {
		_, resp := post(t, h, "", c.line)
		e := resp.Results[0].Errors[0]
		if e.Code != "BAD_JSON" || e.Field != c.field || !strings.Contains(e.Message, c.want) ||
			strings.Contains(e.Message, "Go ") || strings.Contains(e.Message, "struct") || strings.Contains(e.Message, "float64") || strings.Contains(e.Message, "json:") {
			t.Errorf("%s: %+v, want field %q and %q", c.line, e, c.field, c.want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// recorder takes every read (the contract is the adapter client's, tested
// there) and keeps what it would send and reject.
type recorder struct {
	reads    []adapter.Read
	rejected []adapter.Rejection
}

func (r *recorder) SendBatch(_ context.Context, reads []adapter.Read) []error {
	r.reads = append(r.reads, reads...)
	return make([]error, len(reads))
}

func (r *recorder) Reject(_ context.Context, rjs ...adapter.Rejection) error {
	r.rejected = append(r.rejected, rjs...)
	return nil
}

// FuzzEndpoint: any body gets a JSON answer with one result per non-blank
// line, counts that add up, and never a panic.
func FuzzEndpoint(f *testing.F) {
	f.Add(`{"service_point_id":"SP1","interval_end":"2024-11-03T01:00:00-04:00","minutes":60,"value":1.5,"units":"KWH"}` + "\n")
	f.Add("{}\n\n[1,2]\n{\"minutes\":-99999999999}\n")
	f.Add(`{"service_point_id":"","interval_end":"2024-11-03T01:00:00+14:45","minutes":5,"value":1e308,"units":"kwh","is_estimate":"u"}`)
	f.Fuzz(func(t *testing.T, body string) {
		rec := &recorder{}
		code, resp := post(t, Handler(rec, Config{}), "", body)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if len(resp.Results) != resp.Lines || resp.Accepted+resp.Rejected+resp.Failed != resp.Lines || resp.Accepted != len(rec.reads) || resp.Rejected != len(rec.rejected) {
			t.Fatalf("counts do not add up: %+v, %d sent", resp, len(rec.reads))
		}
		for _, r := range resp.Results {
			if r.Status == "rejected" && (len(r.Errors) == 0 || r.Errors[0].Message == "") {
				t.Fatalf("rejected without a reason: %+v", r)
			}
		}
	})
}

// FuzzFastLine: whatever line fastLine takes, encoding/json decodes to the
// same read; so the fast path changes no answer.
func FuzzFastLine(f *testing.F) {
	f.Add(`{"service_point_id":"SP1","interval_end":"2024-11-03T01:00:00-04:00","minutes":60,"value":1.5,"units":"KWH","is_estimate":"A"}`)
	f.Add(` { "service_point_id" : "SP\u00e9" , "minutes" : -0 , "value" : 1e-3, "channel":"" } `)
	f.Add(`{"value":01}`)
	f.Add(`{"value":1.}`)
	f.Add(`{"minutes":1e2}`)
	f.Add(`{"units":"é"}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, text string) {
		var fast line
		if !fastLine([]byte(text), &fast) {
			return
		}
		var ref line
		if fs := decodeLine([]byte(text), &ref); fs != nil {
			t.Fatalf("fastLine took %q, encoding/json refuses it: %+v", text, fs)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%q: fastLine %+v, encoding/json %+v", text, fast, ref)
		}
	})
}

// TestTimesOfALine: an interval_end with an offset is the local end; in UTC
// the instant alone; one with seconds passes the parser, for the contract
// to refuse with the code every path gives (BAD_TIME, TestReadTimeRules).
func TestTimesOfALine(t *testing.T) {
	for _, c := range []struct {
		end   string
		local bool
	}{{"2024-06-01T00:15:00-04:00", true}, {"2024-06-01T04:15:00Z", false}, {"2024-06-01T04:15:30Z", false}} {
		rd, fs := parseLine([]byte(`{"service_point_id":"SP1","interval_end":"` + c.end + `","minutes":15,"value":1,"units":"KWH"}`))
		if fs != nil || rd.LocalEnd.IsZero() != !c.local || rd.End.IsZero() != c.local {
			t.Errorf("%s: %+v %v", c.end, rd, fs)
		}
	}
}
