package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/producers/adapter"
	"github.com/usagestream/usagestream/producers/httpin"
)

// intervalFlags configure the NDJSON endpoint for interval reads that run
// serves on --http-addr (POST /v1/intervals).
type intervalFlags struct {
	IntervalsUtility       string   `name:"intervals-utility" env:"USAGESTREAM_INTERVALS_UTILITY" help:"Utility code of reads posted to /v1/intervals; empty: the endpoint is not served."`
	IntervalsMaxBody       int64    `name:"intervals-max-body" env:"USAGESTREAM_INTERVALS_MAX_BODY" default:"8388608" help:"Largest body /v1/intervals accepts, in bytes; a larger one publishes nothing (413)."`
	IntervalsMaxLines      int      `name:"intervals-max-lines" env:"USAGESTREAM_INTERVALS_MAX_LINES" default:"50000" help:"Most reads in one POST /v1/intervals; a body with more publishes nothing (413)."`
	IntervalsMaxErrors     int      `name:"intervals-max-errors" env:"USAGESTREAM_INTERVALS_MAX_ERRORS" default:"100" help:"Not-accepted lines listed with their errors in an answer; the rest are counted per reason (counts, errors_omitted)."`
	IntervalsMaxConcurrent int      `name:"intervals-max-concurrent" env:"USAGESTREAM_INTERVALS_MAX_CONCURRENT" default:"4" help:"POST /v1/intervals requests served at once; more are answered 503 with Retry-After."`
	IntervalsUnits         []string `name:"intervals-units" env:"USAGESTREAM_INTERVALS_UNITS" default:"KWH,WH,MWH,KVARH,THERM,CCF,HCF,CF,M3,GAL" help:"Allowed units of posted reads."`
	IntervalsTZ            string   `name:"intervals-tz" env:"USAGESTREAM_INTERVALS_TZ" default:"UTC" help:"The utility's time zone (IANA name): a posted read whose interval_end is in UTC (Z) gets its local date and time there."`
}

// intervalEndpoint is the mounted endpoint and the client behind it.
type intervalEndpoint struct {
	client *adapter.Client
	h      http.Handler
}

// newIntervalEndpoint connects the endpoint's client; nil when no utility is
// configured. token is the bearer token (USAGESTREAM_API_TOKEN), shared with
// the query API.
func newIntervalEndpoint(ctx context.Context, kc kafkaconf.Config, f intervalFlags, token string, log *slog.Logger) (*intervalEndpoint, error) {
	if f.IntervalsUtility == "" {
		log.Info("POST /v1/intervals is not served: give --intervals-utility (USAGESTREAM_INTERVALS_UTILITY) to accept interval reads over HTTP")
		return nil, nil
	}
	loc, err := time.LoadLocation(f.IntervalsTZ)
	if err != nil {
		return nil, fmt.Errorf("--intervals-tz %q is not a time zone: give an IANA name like America/New_York: %w", f.IntervalsTZ, err)
	}
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return nil, fmt.Errorf("starting the interval endpoint: %w", err)
	}
	opts, err := kc.Opts()
	if err != nil {
		return nil, fmt.Errorf("starting the interval endpoint: %w", err)
	}
	c, err := adapter.New(ctx, rc, adapter.Config{Utility: f.IntervalsUtility, Name: "http", Kind: adapter.KindHTTP,
		Units: f.IntervalsUnits, Location: loc, TopicPrefix: kc.TopicPrefix}, opts...)
	if err != nil {
		return nil, fmt.Errorf("starting the interval endpoint: %w (registry %s)", err, kc.RedactedRegistryURL())
	}
	return &intervalEndpoint{client: c, h: httpin.Handler(c, httpin.Config{Token: token, MaxBodyBytes: f.IntervalsMaxBody,
		MaxLines: f.IntervalsMaxLines, MaxErrors: f.IntervalsMaxErrors, MaxConcurrent: f.IntervalsMaxConcurrent, Logger: log})}, nil
}

func (e *intervalEndpoint) mount(mux *http.ServeMux) {
	if e != nil {
		// Every method: the endpoint answers another one 405 with Allow,
		// rather than the query API under /v1/ a 404.
		mux.Handle(httpin.Path, e.h)
	}
}

func (e *intervalEndpoint) Close() {
	if e != nil {
		_ = e.client.Close(context.Background())
	}
}
