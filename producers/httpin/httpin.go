// Package httpin is the HTTP way in for MDMS adapters not written in Go:
// POST /v1/intervals with an NDJSON body, one interval read per line, answers
// with a result per line. Accepted reads become the same IntervalRead records
// as interval files and the Go adapter give (producers/adapter).
//
// A line:
//
//	{"service_point_id":"SP1","interval_end":"2024-06-01T00:15:00-04:00","minutes":15,
//	 "value":0.25,"units":"KWH","is_estimate":"A","service_type":"E","channel":""}
//
// interval_end is RFC 3339 with the offset of the local time it came from, so
// the repeated hour at the end of daylight saving time stays two instants.
// An interval_end in UTC ("Z") is the instant alone: its local date, time
// and offset come from the utility's time zone (adapter.Config.Location).
// channel (service_quantity_identifier), service_type and is_estimate
// (default E) are optional. Every read goes through the Go SDK's client
// (producers/adapter), so it meets the one contract of a read; lines that
// are not even a read (bad JSON, a missing key) and reads the contract
// refuses are written to rejected.v1 with the origin "http:<name>" and
// their line, as rejected file rows are.
package httpin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/ellipsis"
	"github.com/usagestream/usagestream/producers/adapter"
	"github.com/usagestream/usagestream/records"
)

// Path is where the endpoint is mounted.
const Path = "/v1/intervals"

// DefaultMaxBodyBytes bounds a request body when Config.MaxBodyBytes is 0:
// about 50,000 reads.
const DefaultMaxBodyBytes = 8 << 20

// Sender checks and delivers reads, and keeps lines that are no read on
// rejected.v1; *adapter.Client is one.
type Sender interface {
	SendBatch(ctx context.Context, reads []adapter.Read) []error
	Reject(ctx context.Context, rjs ...adapter.Rejection) error
}

// Config configures the endpoint.
type Config struct {
	// Token, when set, must come as "Authorization: Bearer <token>".
	Token        string
	MaxBodyBytes int64 // Default: DefaultMaxBodyBytes.
	// MaxLines bounds the reads of one request; a body with more publishes
	// nothing (413). Default: DefaultMaxLines.
	MaxLines int
	// MaxErrors is how many not-accepted lines carry their errors in the
	// answer; Counts still counts every reason. Default: DefaultMaxErrors.
	MaxErrors int
	// MaxConcurrent requests are served at once; more are answered 503 with
	// Retry-After at once. Default: DefaultMaxConcurrent.
	MaxConcurrent int
	Logger        *slog.Logger // Default: discard.
}

// withDefaults returns c with the defaults its fields' docs state in place
// of zero values.
func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxLines <= 0 {
		c.MaxLines = DefaultMaxLines
	}
	if c.MaxErrors <= 0 {
		c.MaxErrors = DefaultMaxErrors
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Defaults of Config.
const (
	DefaultMaxLines      = 50_000
	DefaultMaxErrors     = 100
	DefaultMaxConcurrent = 4
)

// Response is the body of every answer to a POST.
type Response struct {
	Lines    int      `json:"lines"`    // reads in the body (blank lines are not reads)
	Accepted int      `json:"accepted"` // on Kafka
	Rejected int      `json:"rejected"` // wrong: fix and send again
	Failed   int      `json:"failed"`   // not delivered: send again as they are
	Results  []Result `json:"results"`  // one per read, in body order
	// Counts is the number of times each reason code occurred, over every
	// line (only the first MaxErrors not-accepted lines list their errors).
	Counts        map[string]int `json:"counts,omitempty"`
	ErrorsOmitted int            `json:"errors_omitted,omitempty"` // not-accepted lines listed without their errors
	Error         string         `json:"error,omitempty"`
}

// Result is the outcome of one line.
type Result struct {
	Line   int        `json:"line"`
	Status string     `json:"status"` // accepted, rejected or failed
	Errors []LineFail `json:"errors,omitempty"`
}

// LineFail is one reason a line was not accepted.
type LineFail struct {
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	rule    string // cited on rejected.v1
}

// line is the JSON of one read.
type line struct {
	ServicePointID *string  `json:"service_point_id"`
	Channel        string   `json:"channel"`
	ServiceType    string   `json:"service_type"`
	IntervalEnd    *string  `json:"interval_end"`
	Minutes        *int     `json:"minutes"`
	Value          *float64 `json:"value"`
	Units          *string  `json:"units"`
	IsEstimate     string   `json:"is_estimate"`
}

// Handler returns the endpoint.
func Handler(s Sender, cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	return &handler{s: s, cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent)}
}

type handler struct {
	s     Sender
	cfg   Config
	slots chan struct{} // one per request being served
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, Response{Error: req.Method + " is not served here: POST an NDJSON body of interval reads, one JSON object per line"})
		return
	}
	if h.cfg.Token != "" {
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="usagestream"`)
			reply(w, http.StatusUnauthorized, Response{Error: "missing or wrong bearer token; send Authorization: Bearer <USAGESTREAM_API_TOKEN>"})
			return
		}
	}
	// Refused before a byte of the body is read: a client announcing too
	// much cannot hold the connection by sending it slowly.
	if req.ContentLength > h.cfg.MaxBodyBytes {
		reply(w, http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("the body is over %d bytes; nothing was published: send it in smaller parts", h.cfg.MaxBodyBytes)})
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		reply(w, http.StatusServiceUnavailable, Response{Error: fmt.Sprintf("%d requests are being served, the most at once; nothing was published: retry after a second", h.cfg.MaxConcurrent)})
		return
	}
	// The whole body is read before anything is sent, so a body over the
	// limit publishes nothing: the sender splits it and sends every part.
	body, err := readBody(http.MaxBytesReader(w, req.Body, h.cfg.MaxBodyBytes), req.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			reply(w, http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("the body is over %d bytes; nothing was published: send it in smaller parts", h.cfg.MaxBodyBytes)})
			return
		}
		reply(w, http.StatusBadRequest, Response{Error: "the body could not be read to its end (the connection broke or timed out); nothing was published: send it again"})
		return
	}
	n := countLines(body)
	if n > h.cfg.MaxLines {
		reply(w, http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("the body holds %d reads, over the limit of %d; nothing was published: send it in smaller parts", n, h.cfg.MaxLines)})
		return
	}
	resp, reads, idx, rejs := parse(body, n)
	resp.Counts = map[string]int{}
	for _, r := range resp.Results {
		for _, f := range r.Errors {
			resp.Counts[f.Code]++
		}
	}
	// Lines that are no read are kept on rejected.v1 first: if that fails,
	// nothing is published and the whole body can be sent again.
	if len(rejs) > 0 {
		if err := h.s.Reject(req.Context(), rejs...); err != nil {
			h.cfg.Logger.Warn("rejected lines could not be written", "err", err)
			reply(w, http.StatusServiceUnavailable, Response{Error: "the rejected lines could not be written to Kafka; nothing was published: send the body again"})
			return
		}
	}
	if len(reads) > 0 {
		errs := h.s.SendBatch(req.Context(), reads)
		for k, err := range errs {
			r := &resp.Results[idx[k]]
			var re *adapter.ReadError
			switch {
			case err == nil:
				r.Status = "accepted"
				resp.Accepted++
			case errors.As(err, &re) && len(re.Reasons) > 0 && re.Err == nil:
				r.Status, r.Errors = "rejected", fails(re.Reasons)
				resp.Rejected++
			default:
				r.Status, r.Errors = "failed", []LineFail{{Code: "NOT_DELIVERED", Message: "Kafka did not take this read in time; send the line again"}}
				resp.Failed++
			}
			for _, f := range r.Errors {
				resp.Counts[f.Code]++
			}
		}
	}
	// Only the first MaxErrors not-accepted lines keep their errors: five
	// reasons on each of 50,000 lines would be a response of hundreds of MB.
	listed := 0
	for i := range resp.Results {
		if r := &resp.Results[i]; r.Status != "accepted" {
			if listed >= h.cfg.MaxErrors {
				r.Errors = nil
				resp.ErrorsOmitted++
			}
			listed++
		}
	}
	status := http.StatusOK
	if resp.Failed > 0 {
		status = http.StatusServiceUnavailable
		resp.Error = "some reads could not be delivered to Kafka; send the failed lines again"
	}
	h.cfg.Logger.Info("interval reads received", "lines", resp.Lines, "accepted", resp.Accepted, "rejected", resp.Rejected, "failed", resp.Failed)
	reply(w, status, resp)
}

// Parse reads an NDJSON body into reads and a Response whose Results hold
// a rejected result for every line that is not a read (bad JSON, a missing
// key, a time that is no RFC 3339 time), with its Rejection for
// rejected.v1; idx[k] is the index in Results of reads[k]. Lines are
// numbered from 1; blank lines are skipped. The contract of a read is not
// checked here: the Sender checks it, as for every way in.
func Parse(body []byte) (resp Response, reads []adapter.Read, idx []int, rejs []adapter.Rejection) {
	return parse(body, 0)
}

// parse is Parse with room made for n reads.
func parse(body []byte, n int) (resp Response, reads []adapter.Read, idx []int, rejs []adapter.Rejection) {
	resp.Results = make([]Result, 0, n)
	reads = make([]adapter.Read, 0, n)
	idx = make([]int, 0, n)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), len(body)+1)
	ln := 0
	for sc.Scan() {
		ln++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		resp.Lines++
		rd, fs := parseLine(text)
		rd.Line = int64(ln)
		resp.Results = append(resp.Results, Result{Line: ln, Status: "rejected", Errors: fs})
		if fs != nil {
			resp.Rejected++
			rj := adapter.Rejection{Line: int64(ln), Raw: string(text), ServicePointID: rd.ServicePointID}
			for _, f := range fs {
				rj.Reasons = append(rj.Reasons, adapter.Reason{Field: f.Field, Code: f.Code, Rule: f.rule, Message: f.Message})
			}
			rejs = append(rejs, rj)
			continue
		}
		reads = append(reads, rd)
		idx = append(idx, len(resp.Results)-1)
	}
	return resp, reads, idx, rejs
}

// keys are the JSON keys of a read, for messages.
const keys = "service_point_id, interval_end, minutes, value, units, is_estimate, service_type, channel"

// jsonKinds names the JSON type each key takes, for messages.
var jsonKinds = map[string]string{"service_point_id": "a string", "channel": "a string", "service_type": "a string",
	"interval_end": "a string", "minutes": "a whole number", "value": "a number", "units": "a string", "is_estimate": "a string"}

// badJSON turns a decoding error into a message for the sender, in the
// terms of the JSON it sent, never of Go's types.
func badJSON(err error) LineFail {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &te) && te.Field != "":
		want := jsonKinds[te.Field]
		if want == "" {
			want = "another type"
		}
		return LineFail{Field: te.Field, Code: codeBadJSON, rule: ruleJSON, Message: fmt.Sprintf("%s is %s; it must be %s", te.Field, article(te.Value), want)}
	case errors.As(err, &te):
		return LineFail{Code: codeBadJSON, rule: ruleJSON, Message: fmt.Sprintf("the line is %s; it must be a JSON object with the keys %s", article(te.Value), keys)}
	case errors.As(err, &se):
		return LineFail{Code: codeBadJSON, rule: ruleJSON, Message: fmt.Sprintf("the line is not valid JSON (at byte %d); send one JSON object per line", se.Offset)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		k := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return LineFail{Field: strings.Trim(k, `"`), Code: codeBadJSON, rule: ruleJSON, Message: fmt.Sprintf("unknown key %s; the keys are %s", clip(k), keys)}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return LineFail{Code: codeBadJSON, rule: ruleJSON, Message: "the line ends inside a JSON value; send one whole JSON object per line"}
	}
	return LineFail{Code: codeBadJSON, rule: ruleJSON, Message: "the line is not a JSON object of an interval read; send one JSON object per line with the keys " + keys}
}

// article renders a JSON type name from a decoding error ("string",
// "number 1.5") for a message.
func article(v string) string {
	switch {
	case v == "":
		return "of another type"
	case strings.IndexByte("aeiou", v[0]) >= 0:
		return "an " + v
	}
	return "a " + v
}

const (
	codeBadJSON = "BAD_JSON"
	// ruleJSON is the rule a line that is no read breaks: the read
	// columns of the data contract, as a file row with a missing field.
	ruleJSON = records.RuleIntervalColumns
)

// decodeLine decodes a line with encoding/json: every line fastLine does
// not take, and the reference it is tested against.
func decodeLine(text []byte, l *line) []LineFail {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(l); err != nil {
		return []LineFail{badJSON(err)}
	}
	if dec.More() {
		return []LineFail{{Code: codeBadJSON, rule: ruleJSON, Message: "the line holds more than one JSON value; put one read per line"}}
	}
	return nil
}

func parseLine(text []byte) (adapter.Read, []LineFail) {
	var (
		l  line
		rd adapter.Read
		fs []LineFail
	)
	if !fastLine(text, &l) {
		l = line{}
		if fs := decodeLine(text, &l); fs != nil {
			return rd, fs
		}
	}
	if l.ServicePointID != nil {
		rd.ServicePointID = *l.ServicePointID
	}
	req := func(field string, missing bool) {
		if missing {
			fs = append(fs, LineFail{Field: field, Code: records.CodeRequired, rule: records.RuleIntervalColumns, Message: field + " is missing; it is required"})
		}
	}
	req("service_point_id", l.ServicePointID == nil)
	req("interval_end", l.IntervalEnd == nil)
	req("minutes", l.Minutes == nil)
	req("value", l.Value == nil)
	req("units", l.Units == nil)
	if fs != nil {
		return rd, fs
	}
	rd.Channel, rd.ServiceType, rd.Value, rd.Units, rd.Minutes, rd.Estimate = l.Channel, l.ServiceType, *l.Value, *l.Units, *l.Minutes, l.IsEstimate
	t, err := time.Parse(time.RFC3339, *l.IntervalEnd)
	if err != nil {
		return rd, []LineFail{{Field: "interval_end", Code: records.CodeBadTime, rule: records.RuleIntervalColumns,
			Message: fmt.Sprintf("interval_end %q is not an RFC 3339 time with the local offset, like 2024-06-01T00:15:00-04:00 (or UTC, like 2024-06-01T04:15:00Z)", clip(*l.IntervalEnd))}}
	}
	// "Z" is the instant alone (local fields from the utility's zone); an
	// offset is the meter's local clock, and the instant it names.
	if e := *l.IntervalEnd; strings.HasSuffix(e, "Z") || strings.HasSuffix(e, "z") {
		rd.End = t
	} else {
		rd.LocalEnd = t
	}
	rd.Raw = string(text)
	return rd, nil
}

func fails(rs []adapter.Reason) []LineFail {
	out := make([]LineFail, len(rs))
	for i, r := range rs {
		out[i] = LineFail{Field: r.Field, Code: r.Code, Message: r.Message, rule: r.Rule}
	}
	return out
}

// readBody reads the whole body, in one allocation when its length is
// announced (the reader bounds it either way).
func readBody(r io.Reader, announced int64) ([]byte, error) {
	if announced <= 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, announced+1) // +1: room to see the end without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) { // longer than announced: the limit still holds
			b = append(b, 0)[:len(b)]
		}
	}
}

// countLines counts the non-blank lines of body without parsing them.
func countLines(body []byte) int {
	n := 0
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}

// reply streams resp: the results are encoded one at a time through a small
// buffer, never the whole answer at once.
func reply(w http.ResponseWriter, status int, resp Response) {
	results := resp.Results
	resp.Results = nil
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	head, err := marshal(resp)
	if err != nil {
		return
	}
	bw := bufio.NewWriterSize(w, 16<<10)
	defer bw.Flush()
	// head ends with "results":null} (or more fields after it); put the
	// streamed array in its place.
	const null = `"results":null`
	i := bytes.Index(head, []byte(null))
	_, _ = bw.Write(head[:i])
	_, _ = bw.WriteString(`"results":[`)
	for k := range results {
		if k > 0 {
			_ = bw.WriteByte(',')
		}
		if r := &results[k]; len(r.Errors) == 0 { // most results: no encoder needed
			_, _ = bw.WriteString(`{"line":`)
			_, _ = bw.WriteString(strconv.Itoa(r.Line))
			_, _ = bw.WriteString(`,"status":`)
			_, _ = bw.WriteString(strconv.Quote(r.Status))
			_ = bw.WriteByte('}')
			continue
		}
		b, _ := marshal(&results[k])
		_, _ = bw.Write(b)
	}
	_ = bw.WriteByte(']')
	_, _ = bw.Write(head[i+len(null):])
	_ = bw.WriteByte('\n')
}

// marshal is json.Marshal without HTML escaping: the answers are JSON for
// programs and people, not HTML, so "<token>" stays "<token>", not
// "\u003ctoken\u003e".
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func clip(s string) string { return ellipsis.Clip(s, 60) }
