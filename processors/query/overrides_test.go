package query

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/kafkatest"
)

func post(t *testing.T, base, path, token, body string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
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
	return resp.StatusCode, b
}

// TestOverridesPostAndList: POST /v1/overrides writes an audited operator
// action (201, with the position its events will cite) only with the API
// token; GET /v1/overrides lists it.
func TestOverridesPostAndList(t *testing.T) {
	env := kafkatest.Start(t)
	api := New(Config{Kafka: env.Kafka, Token: "s3cret", PeerToken: "peer-tok"})
	defer api.Close()
	ts := httptest.NewServer(api.Handler())
	defer ts.Close()
	open := New(Config{Kafka: env.Kafka})
	defer open.Close()
	ots := httptest.NewServer(open.Handler())
	defer ots.Close()

	hold := func(program string) string {
		return `{"kind":"HOLD_INELIGIBLE","utility":"tst","customer_id":"C1","premise_id":"P1","program":` + program + `,"actor":"ops","reason":"complaint","ticket":"OPS-6","action_id":"act-api-2"}`
	}
	good := `{"kind":"CLEAR_ANOMALY","utility":"tst","service_point_id":"SP1","anomaly_code":"ACTIVE_DATE_CHANGED","actor":"ops","reason":"confirmed","ticket":"OPS-5","action_id":"act-api-1"}`
	for _, c := range []struct {
		name, base, token, body string
		hdr                     []string
		want                    int
	}{
		{"no token", ts.URL, "", good, nil, http.StatusUnauthorized},
		{"wrong token", ts.URL, "nope", good, nil, http.StatusUnauthorized},
		{"the peer token on a passed-on request", ts.URL, "peer-tok", good, []string{forwardedHeader, "other"}, http.StatusForbidden},
		{"an instance without a token", ots.URL, "", good, nil, http.StatusForbidden},
		{"no ticket", ts.URL, "s3cret", strings.Replace(good, `"ticket":"OPS-5",`, "", 1), nil, http.StatusBadRequest},
		{"a hold without a program", ts.URL, "s3cret", strings.Replace(good, "CLEAR_ANOMALY", "HOLD_ELIGIBLE", 1), nil, http.StatusBadRequest},
		{"a hold of no program", ts.URL, "s3cret", hold(`"newsletter"`), nil, http.StatusBadRequest},
		{"a hold until a day already past", ts.URL, "s3cret", strings.Replace(hold(`"web_access"`), `"actor"`, `"until":"2020-01-01","actor"`, 1), nil, http.StatusBadRequest},
		{"a hold until no date", ts.URL, "s3cret", strings.Replace(hold(`"web_access"`), `"actor"`, `"until":"soon","actor"`, 1), nil, http.StatusBadRequest},
		{"a clear until a date", ts.URL, "s3cret", strings.Replace(good, `"actor"`, `"until":"2099-01-01","actor"`, 1), nil, http.StatusBadRequest},
		{"an unknown field", ts.URL, "s3cret", strings.Replace(good, `"actor"`, `"who":"x","actor"`, 1), nil, http.StatusBadRequest},
		{"two values", ts.URL, "s3cret", good + good, nil, http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, b := post(t, c.base, "/v1/overrides", c.token, c.body, c.hdr...); code != c.want {
				t.Errorf("%d %s, want %d", code, b, c.want)
			}
		})
	}
	if code, _, _ := get(t, ts.URL, "/v1/overrides", ""); code != http.StatusUnauthorized {
		t.Errorf("GET without the token: %d, want 401", code)
	}
	if code, _, b := get(t, ts.URL, "/v1/overrides", "s3cret"); code != http.StatusOK || len(decode[Overrides](t, b).Overrides) != 0 {
		t.Fatalf("GET before any override: %d %s; want 200 and none (refused requests wrote nothing)", code, b)
	}

	code, b := post(t, ts.URL, "/v1/overrides", "s3cret", good)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, b)
	}
	written := decode[Override](t, b)
	if written.ActionID != "act-api-1" || written.Cause.Topic != env.Topics.OperatorActions || written.RequestedAt == "" {
		t.Errorf("POST answered %+v", written)
	}
	code, b = post(t, ts.URL, "/v1/overrides", "s3cret", strings.Replace(hold(`"web_access"`), `"actor"`, `"until":"2099-01-31","actor"`, 1))
	if code != http.StatusCreated {
		t.Fatalf("POST a hold: %d %s", code, b)
	}
	held := decode[Override](t, b)
	if held.Program != "web_access" || held.CustomerID != "C1" || held.Cause.Topic != env.Topics.OperatorHolds || held.Until != "2099-01-31" {
		t.Errorf("POST a hold until 2099-01-31 answered %+v", held)
	}
	code, _, b = get(t, ts.URL, "/v1/overrides", "s3cret")
	if code != http.StatusOK {
		t.Fatalf("GET: %d %s", code, b)
	}
	list := decode[Overrides](t, b).Overrides
	if len(list) != 2 || list[0] != written || list[1] != held {
		t.Errorf("GET listed %+v, want exactly %+v and %+v", list, written, held)
	}
}
