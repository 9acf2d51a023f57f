package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/sinks/jsonl"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
)

const secret = "s3cret-for-tests"

// receiver is a test webhook endpoint: it checks every request's signature
// with its own HMAC computation, answers with the statuses of fail for the
// first attempts, then 200, and records what it took.
type receiver struct {
	t        *testing.T
	mu       sync.Mutex
	fail     []int // statuses for the first requests
	requests int
	batches  map[string][]string // batch id -> event ids, of accepted requests
	ids      []string            // batch ids of every request
	block    chan struct{}       // when set, requests wait on it
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rc.block != nil {
		select {
		case <-rc.block:
		case <-r.Context().Done():
			return
		}
	}
	body, _ := io.ReadAll(r.Body)
	sig := r.Header.Get("X-Usagestream-Signature")
	ts, mac, ok := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts + "." + string(body)))
	if !ok || hex.EncodeToString(h.Sum(nil)) != mac {
		rc.t.Errorf("bad signature %q", sig)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var b struct {
		BatchID string `json:"batch_id"`
		Events  []struct {
			Topic string `json:"topic"`
			Event struct {
				EventID string `json:"event_id"`
			} `json:"event"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		rc.t.Errorf("body is not JSON: %v", err)
	}
	if r.Header.Get("X-Usagestream-Batch-Id") != b.BatchID || b.BatchID == "" {
		rc.t.Errorf("batch id header %q, body %q", r.Header.Get("X-Usagestream-Batch-Id"), b.BatchID)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	rc.ids = append(rc.ids, b.BatchID)
	if rc.requests <= len(rc.fail) {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(rc.fail[rc.requests-1])
		return
	}
	if rc.batches == nil {
		rc.batches = map[string][]string{}
	}
	var ids []string
	for _, e := range b.Events {
		ids = append(ids, e.Topic+" "+e.Event.EventID)
	}
	rc.batches[b.BatchID] = ids
}

func events(topic string, n int) []sink.Event {
	var out []sink.Event
	for i := range n {
		out = append(out, sink.Event{Topic: topic, Offset: int64(i), Key: []byte("k"), Value: []byte{0, 0, 0, 0, 1, byte(i)},
			JSON: []byte(`{"event_id":"e` + string(rune('a'+i)) + `"}`), Timestamp: time.Now()})
	}
	return out
}

func TestRetriesWithBackoffThenDelivers(t *testing.T) {
	env := kafkatest.Start(t)
	rc := &receiver{t: t, fail: []int{503, 500, 429}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	m := NewMetrics(nil)
	s, err := Open(context.Background(), Config{URL: srv.URL, Secret: secret, Kafka: env.Kafka, RetryMin: 20 * time.Millisecond, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	if err := s.Write(context.Background(), events("t", 5)); err != nil {
		t.Fatal(err)
	}
	// Back-off 20, 40, 80 ms (plus jitter) between the four attempts.
	if el := time.Since(start); el < 140*time.Millisecond {
		t.Fatalf("four attempts in %v: no back-off", el)
	}
	if rc.requests != 4 || len(rc.batches) != 1 {
		t.Fatalf("%d requests, %d accepted batches; want 4 and 1", rc.requests, len(rc.batches))
	}
	for _, id := range rc.ids {
		if id != rc.ids[0] {
			t.Fatalf("batch id changed between retries: %v", rc.ids)
		}
	}
	if got := testutil.ToFloat64(m.attempts.WithLabelValues("failed")); got != 3 {
		t.Fatalf("failed attempts %v, want 3", got)
	}
	if len(kafkatest.ReadAll(t, env.Kafka, DeadLetterTopic(env.Kafka.TopicPrefix))) != 0 {
		t.Fatal("a delivered batch must not be dead-lettered")
	}
}

func TestDeadLetterAfterBudgetOrRefusal(t *testing.T) {
	env := kafkatest.Start(t)
	for _, tc := range []struct {
		name         string
		status       int
		wantAttempts int // 0: more than one
	}{{"server errors until the budget is spent", 500, 0}, {"a 400 is not retried", 400, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			fails := make([]int, 1000)
			for i := range fails {
				fails[i] = tc.status
			}
			rc := &receiver{t: t, fail: fails}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			dlt := env.Kafka.TopicPrefix + "dlt-" + strings.ReplaceAll(tc.name, " ", "-")
			m := NewMetrics(nil)
			s, err := Open(context.Background(), Config{URL: srv.URL, Secret: secret, Kafka: env.Kafka, DeadLetterTopic: dlt,
				RetryMin: 20 * time.Millisecond, RetryFor: 500 * time.Millisecond, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			evs := events("src", 4)
			if err := s.Write(context.Background(), evs); err != nil {
				t.Fatalf("a dead-lettered batch is done, not an error: %v", err)
			}
			if (tc.wantAttempts == 0 && rc.requests < 2) || (tc.wantAttempts > 0 && rc.requests != tc.wantAttempts) {
				t.Fatalf("%d attempts", rc.requests)
			}
			recs := kafkatest.ReadAll(t, env.Kafka, dlt)
			if len(recs) != len(evs) {
				t.Fatalf("%d dead letters, want %d", len(recs), len(evs))
			}
			for i, r := range recs {
				h := map[string]string{}
				for _, x := range r.Headers {
					h[x.Key] = string(x.Value)
				}
				if string(r.Value) != string(evs[i].Value) || h["usagestream.source.topic"] != "src" || h["usagestream.source.offset"] != string(rune('0'+i)) ||
					!strings.Contains(h["usagestream.webhook.error"], "HTTP") {
					t.Fatalf("dead letter %d: value %v headers %v", i, r.Value, h)
				}
			}
			if testutil.ToFloat64(m.deadLettered) != float64(len(evs)) {
				t.Fatal("dead-letter metric")
			}
		})
	}
}

func TestVerify(t *testing.T) {
	now := time.Now()
	body := []byte(`{"batch_id":"x"}`)
	h := Sign(secret, now, body)
	if err := Verify(secret, h, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if Verify(secret, h, []byte(`{"batch_id":"y"}`), now, time.Minute) == nil {
		t.Fatal("a changed body must fail")
	}
	if Verify("other", h, body, now, time.Minute) == nil {
		t.Fatal("another secret must fail")
	}
	if Verify(secret, h, body, now.Add(10*time.Minute), time.Minute) == nil {
		t.Fatal("an old signature must fail")
	}
	if Verify(secret, "garbage", body, now, time.Minute) == nil {
		t.Fatal("a malformed header must fail")
	}
}

func TestOpenChecksConfiguration(t *testing.T) {
	for _, c := range []Config{{}, {URL: "ftp://x", Secret: "s"}, {URL: "http://127.0.0.1:1"}} {
		if _, err := Open(context.Background(), c); err == nil {
			t.Errorf("%+v: want an error", c)
		}
	}
}

// TestThroughKafkaAndNeverBlocksOtherSinks: with the receiver stuck, the
// JSON Lines sink still delivers everything; once the receiver answers (after
// failing its first attempts), every event arrives, and dropping repeated
// batch ids leaves each event exactly once.
func TestThroughKafkaAndNeverBlocksOtherSinks(t *testing.T) {
	env := kafkatest.Start(t)
	evs := sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 5), 2000)
	rc := &receiver{t: t, fail: []int{502, 503}, block: make(chan struct{})}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	m := NewMetrics(nil)
	wcfg := Config{URL: srv.URL, Secret: secret, Kafka: env.Kafka, RetryMin: 20 * time.Millisecond, RetryFor: time.Minute, Metrics: m}
	wh, err := Open(ctx, wcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	js, err := jsonl.Open(jsonl.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var running sync.WaitGroup
	var failed atomic.Value
	for name, w := range map[string]sink.Writer{"webhook": wh, "jsonl": js} {
		running.Add(1)
		go func() {
			defer running.Done()
			cfg := sink.Config{Name: name, Kafka: env.Kafka, Format: sink.JSON, MaxBatch: 300}
			if name == "webhook" {
				cfg.WriteTimeout = wcfg.WithDefaults().WriteTimeout()
			}
			if err := sink.Run(ctx, cfg, w); err != nil {
				failed.Store(err)
			}
		}()
	}
	for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
		kafkatest.WaitCaughtUp(t, env.Kafka, sink.GroupFor(env.Kafka.TopicPrefix, "jsonl"), topic, time.Minute)
	}
	rc.mu.Lock()
	took := len(rc.batches)
	rc.mu.Unlock()
	if took != 0 {
		t.Fatalf("the receiver is stuck, yet took %d batches", took)
	}
	close(rc.block)
	for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
		kafkatest.WaitCaughtUp(t, env.Kafka, sink.GroupFor(env.Kafka.TopicPrefix, "webhook"), topic, time.Minute)
	}
	cancel()
	running.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ids := range rc.batches {
		for _, id := range ids {
			seen[id]++
		}
	}
	for _, e := range evs {
		if seen[e.Topic+" "+e.EventID] != 1 {
			t.Fatalf("%s %s received %d times after dropping repeated batches", e.Topic, e.EventID, seen[e.Topic+" "+e.EventID])
		}
	}
	if len(seen) != len(evs) || testutil.ToFloat64(m.attempts.WithLabelValues("failed")) < 2 {
		t.Fatalf("%d distinct events received of %d; failed attempts %v", len(seen), len(evs), testutil.ToFloat64(m.attempts.WithLabelValues("failed")))
	}
}

// TestRedirectIsNotFollowedAndDeadLetters: a receiver answering 302, 307 or
// 308 has not taken the batch. The sink must not follow the redirect (a 302
// turned the POST into a body-less GET counted as delivered; a 307 re-posted
// the signed body to the other host): the batch is retried, then
// dead-lettered, the second host receives nothing, and the error names the
// Location without its query string.
func TestRedirectIsNotFollowedAndDeadLetters(t *testing.T) {
	env := kafkatest.Start(t)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var elsewhere atomic.Int64
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				elsewhere.Add(1)
			}))
			defer other.Close()
			var asked atomic.Int64
			first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				asked.Add(1)
				http.Redirect(w, r, other.URL+"/moved?token=tok-in-query", status)
			}))
			defer first.Close()
			dlt := env.Kafka.TopicPrefix + "dlt-redirect-" + strconv.Itoa(status)
			m := NewMetrics(nil)
			s, err := Open(context.Background(), Config{URL: first.URL, Secret: secret, Kafka: env.Kafka, DeadLetterTopic: dlt,
				RetryMin: 20 * time.Millisecond, RetryFor: 300 * time.Millisecond, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			evs := events("src", 3)
			if err := s.Write(context.Background(), evs); err != nil {
				t.Fatalf("a dead-lettered batch is done, not an error: %v", err)
			}
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("the redirect target received %d requests, want 0", n)
			}
			if asked.Load() < 2 {
				t.Fatalf("%d attempts: a redirect must be retried like a 5xx", asked.Load())
			}
			if got := testutil.ToFloat64(m.delivered); got != 0 {
				t.Fatalf("%v events counted as delivered, want 0", got)
			}
			if got := testutil.ToFloat64(m.attempts.WithLabelValues("ok")); got != 0 {
				t.Fatalf("%v ok attempts, want 0", got)
			}
			recs := kafkatest.ReadAll(t, env.Kafka, dlt)
			if len(recs) != len(evs) || testutil.ToFloat64(m.deadLettered) != float64(len(evs)) {
				t.Fatalf("%d dead letters (metric %v), want %d", len(recs), testutil.ToFloat64(m.deadLettered), len(evs))
			}
			var cause string
			for _, h := range recs[0].Headers {
				if h.Key == "usagestream.webhook.error" {
					cause = string(h.Value)
				}
			}
			if !strings.Contains(cause, "HTTP "+strconv.Itoa(status)) || !strings.Contains(cause, other.URL+"/moved") || strings.Contains(cause, "tok-in-query") {
				t.Fatalf("dead-letter error %q: want the status and the Location without its query", cause)
			}
		})
	}
}

// TestRedirectNotFollowedWithCallerClient: a client passed in Config is used
// without following redirects either, and is not changed.
func TestRedirectNotFollowedWithCallerClient(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	first := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusTemporaryRedirect))
	defer first.Close()
	mine := &http.Client{Timeout: time.Second}
	s := &Sink{cfg: Config{URL: first.URL, Secret: secret, Client: mine}.WithDefaults(), host: "x"}
	if _, err := s.post(context.Background(), "b", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "HTTP 307") {
		t.Fatalf("post through a redirect: %v, want an HTTP 307 error", err)
	}
	if elsewhere.Load() != 0 || mine.CheckRedirect != nil {
		t.Fatalf("redirect followed (%d) or the caller's client changed", elsewhere.Load())
	}
}
