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
// channel (service_quantity_identifier), service_type and is_estimate
// (default E) are optional.
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
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/ellipsis"
	"github.com/usagestream/usagestream/producers/adapter"
	"github.com/usagestream/usagestream/producers/interval/readrules"
	"github.com/usagestream/usagestream/records"
)

// Path is where the endpoint is mounted.
const Path = "/v1/intervals"

// DefaultMaxBodyBytes bounds a request body when Config.MaxBodyBytes is 0:
// about 50,000 reads.
const DefaultMaxBodyBytes = 8 << 20

// Sender delivers validated reads; *adapter.Client is one.
type Sender interface {
	SendBatch(ctx context.Context, reads []records.IntervalRead) []error
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
	// Dates is the plausible date window. Default: readrules' (the zero
	// Window).
	Dates  readrules.Window
	Logger *slog.Logger // Default: discard.
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
		reply(w, http.StatusMethodNotAllowed, Response{Error: "POST an NDJSON body of interval reads"})
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
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			reply(w, http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("the body is over %d bytes; nothing was published: send it in smaller parts", h.cfg.MaxBodyBytes)})
			return
		}
		reply(w, http.StatusBadRequest, Response{Error: fmt.Sprintf("reading the body: %v; nothing was published", err)})
		return
	}
	if n := countLines(body); n > h.cfg.MaxLines {
		reply(w, http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("the body holds %d reads, over the limit of %d; nothing was published: send it in smaller parts", n, h.cfg.MaxLines)})
		return
	}
	resp, reads, idx := Parse(body, h.cfg.Dates.Bounds())
	resp.Counts = map[string]int{}
	for _, r := range resp.Results {
		for _, f := range r.Errors {
			resp.Counts[f.Code]++
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
			case errors.As(err, &re) && len(re.Reasons) > 0:
				r.Status, r.Errors = "rejected", fails(re.Reasons)
				resp.Rejected++
			default:
				r.Status, r.Errors = "failed", []LineFail{{Code: "NOT_DELIVERED", Message: err.Error()}}
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

// Parse reads an NDJSON body into reads and a Response whose Results hold a
// rejected result for every line that is not a read; idx[k] is the index in
// Results of reads[k]. Lines are numbered from 1; blank lines are skipped.
func Parse(body []byte, bounds readrules.Bounds) (Response, []records.IntervalRead, []int) {
	var (
		resp  Response
		reads []records.IntervalRead
		idx   []int
	)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), len(body)+1)
	n := 0
	for sc.Scan() {
		n++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		resp.Lines++
		rd, fs := parseLine(text, bounds)
		rd.Line = int64(n)
		resp.Results = append(resp.Results, Result{Line: n, Status: "rejected", Errors: fs})
		if fs != nil {
			resp.Rejected++
			continue
		}
		reads = append(reads, rd)
		idx = append(idx, len(resp.Results)-1)
	}
	return resp, reads, idx
}

func parseLine(text []byte, bounds readrules.Bounds) (records.IntervalRead, []LineFail) {
	var (
		l  line
		rd records.IntervalRead
		fs []LineFail
	)
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		field := ""
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field = te.Field
		}
		return rd, []LineFail{{Field: field, Code: "BAD_JSON", Message: fmt.Sprintf("the line is not a JSON object of an interval read: %v", err)}}
	}
	if dec.More() {
		return rd, []LineFail{{Code: "BAD_JSON", Message: "the line holds more than one JSON value; put one read per line"}}
	}
	req := func(field string, missing bool) {
		if missing {
			fs = append(fs, LineFail{Field: field, Code: records.CodeRequired, Message: field + " is missing; it is required"})
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
	rd.ServicePointID, rd.Channel, rd.ServiceType, rd.Value, rd.Units = *l.ServicePointID, l.Channel, l.ServiceType, *l.Value, *l.Units
	if *l.Minutes < 0 || *l.Minutes > 1440 {
		return rd, []LineFail{{Field: "minutes", Code: records.CodeBadLength, Message: fmt.Sprintf("minutes %d is not one of 5, 15, 30, 60, 1440", *l.Minutes)}}
	}
	rd.Minutes = int16(*l.Minutes)
	t, err := time.Parse(time.RFC3339, *l.IntervalEnd)
	if err != nil || t.Second() != 0 || t.Nanosecond() != 0 {
		return rd, []LineFail{{Field: "interval_end", Code: records.CodeBadTime,
			Message: fmt.Sprintf("interval_end %q is not an RFC 3339 time on a whole minute with the local offset, like 2024-06-01T00:15:00-04:00", clip(*l.IntervalEnd))}}
	}
	_, off := t.Zone()
	rd.LocalDate = dates.FromCivil(t.Date())
	rd.LocalTime = int16(t.Hour()*60 + t.Minute())
	rd.OffsetMinutes, rd.OffsetGiven = int16(off/60), true
	if off%60 != 0 || off/60 < -12*60 || off/60 > 14*60 {
		return rd, []LineFail{{Field: "interval_end", Code: records.CodeBadOffset, Message: "the offset of interval_end is not a real UTC offset"}}
	}
	switch strings.ToUpper(l.IsEstimate) {
	case "":
	case "A", "E", "U":
		rd.Estimate = records.Estimate(strings.ToUpper(l.IsEstimate)[0])
	default:
		return rd, []LineFail{{Field: "is_estimate", Code: records.CodeBadEstimate, Message: fmt.Sprintf("is_estimate %q must be A, E or U (or absent for E)", clip(l.IsEstimate))}}
	}
	// The rules every way in shares (producers/interval/readrules); JSON
	// decoding turned bytes that are not UTF-8 into U+FFFD, which they refuse.
	for _, vi := range readrules.Check(readrules.Fields{ServicePointID: rd.ServicePointID, Channel: rd.Channel, Date: rd.LocalDate, HasDate: true}, bounds) {
		fs = append(fs, LineFail{Field: vi.Field, Code: vi.Code, Message: vi.Message})
	}
	return rd, fs
}

func fails(rs []records.Reason) []LineFail {
	out := make([]LineFail, len(rs))
	for i, r := range rs {
		out[i] = LineFail{Field: r.Field, Code: r.Code, Message: r.Message}
	}
	return out
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
	head, err := json.Marshal(resp)
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
		b, _ := json.Marshal(&results[k])
		_, _ = bw.Write(b)
	}
	_ = bw.WriteByte(']')
	_, _ = bw.Write(head[i+len(null):])
	_ = bw.WriteByte('\n')
}

func clip(s string) string { return ellipsis.Clip(s, 60) }
