package httpin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/adapter"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
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
	c, err := adapter.New(context.Background(), env.Kafka, adapter.Config{Utility: "gec", Name: "http", Kind: interval.OriginHTTP, Topics: &env.Topics})
	if err != nil {
		t.Fatal(err)
	}
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
	want := []string{"1 accepted", "2 accepted", "4 rejected time:OFF_GRID", "5 rejected value:BAD_JSON", "6 rejected :BAD_JSON", "7 rejected :BAD_JSON", "8 rejected service_point_id:REQUIRED"}
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
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// recorder validates like the adapter client and keeps what it would send.
type recorder struct {
	v     *interval.Validator
	reads []records.IntervalRead
}

func (r *recorder) SendBatch(_ context.Context, reads []records.IntervalRead) []error {
	errs := make([]error, len(reads))
	for i := range reads {
		if rs := r.v.Validate(&reads[i]); rs != nil {
			errs[i] = &adapter.ReadError{ServicePointID: reads[i].ServicePointID, Reasons: rs}
			continue
		}
		r.reads = append(r.reads, reads[i])
	}
	return errs
}

// FuzzEndpoint: any body gets a JSON answer with one result per non-blank
// line, counts that add up, and never a panic.
func FuzzEndpoint(f *testing.F) {
	f.Add(`{"service_point_id":"SP1","interval_end":"2024-11-03T01:00:00-04:00","minutes":60,"value":1.5,"units":"KWH"}` + "\n")
	f.Add("{}\n\n[1,2]\n{\"minutes\":-99999999999}\n")
	f.Add(`{"service_point_id":"","interval_end":"2024-11-03T01:00:00+14:45","minutes":5,"value":1e308,"units":"kwh","is_estimate":"u"}`)
	f.Fuzz(func(t *testing.T, body string) {
		v, _ := interval.NewValidator(interval.Check{})
		rec := &recorder{v: v}
		code, resp := post(t, Handler(rec, Config{}), "", body)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if len(resp.Results) != resp.Lines || resp.Accepted+resp.Rejected+resp.Failed != resp.Lines || resp.Accepted != len(rec.reads) {
			t.Fatalf("counts do not add up: %+v, %d sent", resp, len(rec.reads))
		}
		for _, r := range resp.Results {
			if r.Status == "rejected" && (len(r.Errors) == 0 || r.Errors[0].Message == "") {
				t.Fatalf("rejected without a reason: %+v", r)
			}
		}
	})
}
