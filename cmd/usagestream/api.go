package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/queryapi"
	"github.com/usagestream/usagestream/processors/runtime"
)

// apiFlags configure the query API that run and process serve on
// --http-addr beside /metrics.
type apiFlags struct {
	APIToken     string `name:"api-token" env:"USAGESTREAM_API_TOKEN" help:"Bearer token the query API (/v1/) requires; empty: none (the API then relies on --http-addr being 127.0.0.1)."`
	APIAdvertise string `name:"api-advertise" env:"USAGESTREAM_API_ADVERTISE" placeholder:"URL" help:"URL the other instances reach this one's query API at (default: http://<--http-addr>, a wildcard address replaced by the host name)."`

	// api is set by the command before the processors start; demo runs
	// processors without one.
	api *queryapi.Server
}

func (f *apiFlags) newAPI(kc kafkaconf.Config, reg prometheus.Registerer, log *slog.Logger) *queryapi.Server {
	f.api = queryapi.New(queryapi.Config{Kafka: kc, Token: f.APIToken, Advertise: f.APIAdvertise, Logger: log, Metrics: reg})
	return f.api
}

// attach makes an instance's state answerable, when this process serves
// the API.
func (f *apiFlags) attach(ctx context.Context, in *runtime.Instance) {
	if f.api != nil {
		f.api.Attach(ctx, in)
	}
}

// mountAPI adds the query API to a mux, when there is one.
func mountAPI(mux *http.ServeMux, api *queryapi.Server, addr string) {
	if api == nil {
		return
	}
	api.Listening(addr)
	mux.Handle("/v1/", api.Handler())
}
