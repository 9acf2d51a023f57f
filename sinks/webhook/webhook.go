// Package webhook is the webhook sink: it POSTs batches of events as JSON to
// a URL, signed with HMAC-SHA256, retrying with exponential back-off; a batch
// the receiver has not taken within the retry budget (or refused with a 4xx
// that retrying cannot change) goes to a dead-letter topic, and the sink goes
// on. It runs in a consumer group of its own, so a slow or failing receiver
// never holds back the other sinks.
//
// Body:
//
//	{"batch_id":"…","events":[{"topic":"usagestream.eligibility.v1","partition":0,"offset":12,
//	  "key":"C1","timestamp":"…","schema_id":7,"event":{…}}, …]}
//
// The event is the Avro value as JSON (records/avro.JSONSchema: fields in
// schema order, ISO dates, RFC 3339 timestamps, unions unwrapped).
//
// Headers: Content-Type application/json; X-Usagestream-Batch-Id (also
// Idempotency-Key), the same for the same events, so the same on every retry
// (a batch delivered again after a restart may be cut differently: receivers
// drop repeated events by event_id); X-Usagestream-Signature: t=<unix
// seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the shared secret> (see
// Verify).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/sinks/sink"
)

// Config configures the sink.
type Config struct {
	URL    string
	Secret string
	// Timeout bounds one POST (default 10s).
	Timeout time.Duration
	// RetryMin, RetryMax: the back-off between attempts, doubling from
	// RetryMin up to RetryMax (defaults 500ms, 15s).
	RetryMin, RetryMax time.Duration
	// RetryFor is the retry budget of one batch (default 1m): after it the
	// batch goes to the dead-letter topic.
	RetryFor time.Duration
	// DeadLetterTopic receives undeliverable events (default
	// <prefix>sink-webhook-dead-letter.v1), created when missing with
	// Partitions and Replication.
	DeadLetterTopic string
	Partitions      int32
	Replication     int16
	Kafka           kafkaconf.Config
	Client          *http.Client // default: a client with Timeout
	Logger          *slog.Logger
	Metrics         *Metrics
}

// DeadLetterTopic is the default dead-letter topic for a prefix.
func DeadLetterTopic(prefix string) string { return prefix + "sink-webhook-dead-letter.v1" }

// WriteTimeout is the longest one Write can take with this configuration
// (retries and the dead-letter write included); the consume loop's
// WriteTimeout and RebalanceTimeout must exceed it.
func (c Config) WriteTimeout() time.Duration {
	return c.RetryFor + c.Timeout + c.RetryMax + 30*time.Second
}

// Sink delivers batches to the webhook.
type Sink struct {
	cfg  Config
	log  *slog.Logger
	dlq  *kgo.Client
	host string
}

// Open checks the configuration, makes sure the dead-letter topic exists and
// returns the sink.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	if cfg.URL == "" {
		return nil, errors.New("no webhook URL: set --webhook-url or USAGESTREAM_WEBHOOK_URL")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("the webhook URL must be http:// or https:// with a host")
	}
	if cfg.Secret == "" {
		return nil, errors.New("no webhook secret: set USAGESTREAM_WEBHOOK_SECRET (the receiver checks X-Usagestream-Signature with it)")
	}
	cfg = cfg.WithDefaults()
	s := &Sink{cfg: cfg, log: cfg.Logger.With("sink", "webhook"), host: u.Host}
	cl, err := cfg.Kafka.NewClient(ctx)
	if err != nil {
		return nil, err
	}
	if err := topics.Ensure(ctx, kadm.NewClient(cl), []topics.Spec{{Name: cfg.DeadLetterTopic, Doc: "webhook events not delivered"}}, cfg.Partitions, cfg.Replication); err != nil {
		cl.Close()
		return nil, err
	}
	s.dlq = cl
	return s, nil
}

// WithDefaults fills in the defaults.
func (c Config) WithDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 500 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 15 * time.Second
	}
	if c.RetryFor <= 0 {
		c.RetryFor = time.Minute
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DeadLetterTopic(c.Kafka.TopicPrefix)
	}
	if c.Partitions <= 0 {
		c.Partitions = 1
	}
	if c.Replication == 0 {
		c.Replication = -1 // the broker's default
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	// Never follow a redirect: a 301/302/303 turns the signed POST into a GET
	// without its body (the batch would count as delivered and be lost), and
	// a 307/308 re-posts the signed body to wherever the Location points. A
	// copy, so a caller's client is not changed under it.
	cl := *c.Client
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Client = &cl
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	return c
}

// Close closes the dead-letter producer.
func (s *Sink) Close() {
	if s.dlq != nil {
		s.dlq.Close()
	}
}

type event struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       string          `json:"key"`
	Timestamp time.Time       `json:"timestamp"`
	SchemaID  int             `json:"schema_id"`
	Event     json.RawMessage `json:"event"`
}

type body struct {
	BatchID string  `json:"batch_id"`
	Events  []event `json:"events"`
}

// BatchID names a set of events by their positions: the same events give
// the same id, so a receiver can drop a batch it already took.
func BatchID(batch []sink.Event) string {
	h := sha256.New()
	for _, e := range batch {
		fmt.Fprintf(h, "%s/%d/%d\n", e.Topic, e.Partition, e.Offset)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Sign is the X-Usagestream-Signature value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header against body, as a receiver does: the
// HMAC must match and its time be within tolerance of now (replays of an old
// request fail).
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("malformed signature header: want t=<unix seconds>,v1=<hex>")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature time is %s away from now", d.Round(time.Second))
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("signature does not match the body")
	}
	return nil
}

// Write implements sink.Writer: the batch as one POST, retried within the
// budget, then dead-lettered.
func (s *Sink) Write(ctx context.Context, batch []sink.Event) error {
	b := body{BatchID: BatchID(batch), Events: make([]event, len(batch))}
	for i, e := range batch {
		b.Events[i] = event{e.Topic, e.Partition, e.Offset, string(e.Key), e.Timestamp.UTC(), e.SchemaID, e.JSON}
	}
	payload, err := json.Marshal(b)
	if err != nil {
		return sink.Permanent(fmt.Errorf("rendering the webhook body: %w", err))
	}
	m := s.cfg.Metrics
	deadline := time.Now().Add(s.cfg.RetryFor)
	backoff := s.cfg.RetryMin
	var last error
	attempts := 0
	for {
		attempts++
		retryAfter, err := s.post(ctx, b.BatchID, payload)
		if err == nil {
			m.attempts.WithLabelValues("ok").Inc()
			m.delivered.Add(float64(len(batch)))
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var refused refusedError
		if errors.As(err, &refused) {
			m.attempts.WithLabelValues("refused").Inc()
			break
		}
		m.attempts.WithLabelValues("failed").Inc()
		wait := max(backoff+rand.N(backoff/4+1), retryAfter)
		if time.Now().Add(wait).After(deadline) {
			break
		}
		s.log.Warn("webhook delivery failed; retrying", "host", s.host, "batch_id", b.BatchID, "attempt", attempts, "retry_in", wait.Round(time.Millisecond).String(), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, s.cfg.RetryMax)
	}
	if err := s.deadLetter(ctx, batch, attempts, last); err != nil {
		return fmt.Errorf("webhook delivery failed (%v) and so did the dead-letter topic %s: %w", last, s.cfg.DeadLetterTopic, err)
	}
	m.deadLettered.Add(float64(len(batch)))
	s.log.Error("webhook batch dead-lettered", "host", s.host, "batch_id", b.BatchID, "events", len(batch), "attempts", attempts,
		"topic", s.cfg.DeadLetterTopic, "err", last)
	return nil
}

// refusedError is an answer retrying cannot change (a 4xx but 408, 425, 429).
type refusedError struct{ status int }

func (r refusedError) Error() string {
	return fmt.Sprintf("the receiver refused the batch with HTTP %d", r.status)
}

// post sends one attempt; on a retryable failure it returns how long the
// receiver asked to wait (Retry-After), if it did.
func (s *Sink) post(ctx context.Context, batchID string, payload []byte) (time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.cfg.URL, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "usagestream-webhook-sink")
	req.Header.Set("X-Usagestream-Batch-Id", batchID)
	req.Header.Set("Idempotency-Key", batchID)
	req.Header.Set("X-Usagestream-Signature", Sign(s.cfg.Secret, time.Now(), payload))
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		// The error names the URL; keep only the cause (the URL may carry a token).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("POST to %s: %w", s.host, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return 0, nil
	case c >= 300 && c < 400:
		// Not delivered: retried like a 5xx (the receiver may be moving), then
		// dead-lettered. The Location is named without its query string, which
		// may carry a token.
		return 0, fmt.Errorf("the receiver answered HTTP %d redirecting to %s; redirects are not followed (the signed body would be dropped or sent elsewhere): set the webhook URL to the final address",
			c, redactedLocation(req.URL, resp.Header.Get("Location")))
	case c == http.StatusRequestTimeout || c == http.StatusTooEarly || c == http.StatusTooManyRequests || c >= 500:
		var wait time.Duration
		if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && sec > 0 {
			wait = min(time.Duration(sec)*time.Second, s.cfg.RetryMax)
		}
		return wait, fmt.Errorf("the receiver answered HTTP %d", c)
	default:
		return 0, refusedError{c}
	}
}

// redactedLocation is a redirect's target, resolved against the request URL,
// without user info, query string or fragment.
func redactedLocation(base *url.URL, loc string) string {
	if loc == "" {
		return "no Location"
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "an unparsable Location"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// deadLetter writes the batch's records, as they were on their topics, to
// the dead-letter topic with headers saying where they came from and why.
func (s *Sink) deadLetter(ctx context.Context, batch []sink.Event, attempts int, cause error) error {
	recs := make([]*kgo.Record, len(batch))
	for i, e := range batch {
		recs[i] = &kgo.Record{Topic: s.cfg.DeadLetterTopic, Key: e.Key, Value: e.Value, Headers: []kgo.RecordHeader{
			{Key: "usagestream.source.topic", Value: []byte(e.Topic)},
			{Key: "usagestream.source.partition", Value: []byte(strconv.Itoa(int(e.Partition)))},
			{Key: "usagestream.source.offset", Value: []byte(strconv.FormatInt(e.Offset, 10))},
			{Key: "usagestream.webhook.attempts", Value: []byte(strconv.Itoa(attempts))},
			{Key: "usagestream.webhook.error", Value: []byte(cause.Error())},
		}}
	}
	return s.dlq.ProduceSync(ctx, recs...).FirstErr()
}

// Metrics are the sink's own Prometheus metrics.
type Metrics struct {
	attempts     *prometheus.CounterVec
	delivered    prometheus.Counter
	deadLettered prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_sink_webhook_attempts_total", Help: "POSTs by result: ok, failed (retried or dead-lettered), refused (a 4xx: dead-lettered).",
		}, []string{"result"}),
		delivered:    prometheus.NewCounter(prometheus.CounterOpts{Name: "usagestream_sink_webhook_delivered_events_total", Help: "Events the receiver took."}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{Name: "usagestream_sink_webhook_dead_lettered_events_total", Help: "Events written to the dead-letter topic after the retry budget."}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.delivered, m.deadLettered)
	}
	return m
}
