package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/processors/console"
	"github.com/usagestream/usagestream/processors/query"
	"github.com/usagestream/usagestream/processors/runtime"
)

// apiFlags configure the query API that run and process serve on
// --http-addr beside /metrics.
type apiFlags struct {
	APIToken     string   `name:"api-token" env:"USAGESTREAM_API_TOKEN" help:"Bearer token the query API (/v1/) requires; empty: none (the API then relies on --http-addr being 127.0.0.1)."`
	APIAdvertise string   `name:"api-advertise" env:"USAGESTREAM_API_ADVERTISE" placeholder:"URL" help:"URL the other instances reach this one's query API at (default: http://<--http-addr>, a wildcard address replaced by the host name)."`
	PeerToken    string   `name:"peer-token" env:"USAGESTREAM_PEER_TOKEN" help:"This instance's own credential towards the other instances, the same on all: sent when passing a request on to the instance that holds the key (never the caller's token), accepted only on requests passed on. Empty with --api-token set: nothing is passed on (421 names the owner)."`
	PeerAllow    []string `name:"peer-allow" env:"USAGESTREAM_PEER_ALLOW" default:"127.0.0.0/8,::1/128" placeholder:"CIDR|HOST:PORT" help:"Addresses requests may be passed on to, as other instances advertise them on the query-endpoints topic (default: 127.0.0.0/8,::1/128, loopback only); an owner advertising another address is not contacted (502)."`
	PeerCA       string   `name:"peer-ca" env:"USAGESTREAM_PEER_CA" type:"existingfile" placeholder:"FILE" help:"PEM CA certificates that https peers (an https:// --api-advertise) must chain to (default: the system's)."`

	// api is set by the command before the processors start; demo runs
	// processors without one.
	api *query.Server
	// allow and roots are --peer-allow and --peer-ca, read by Validate.
	allow *query.Allowlist
	roots *x509.CertPool
}

// Validate reads --peer-allow and --peer-ca before anything starts, so a
// typo stops the command instead of silently refusing every peer.
func (f *apiFlags) Validate() error {
	allow, err := query.ParseAllowlist(f.PeerAllow)
	if err != nil {
		return err
	}
	f.allow = allow
	if f.PeerCA != "" {
		pem, err := os.ReadFile(f.PeerCA)
		if err != nil {
			return fmt.Errorf("--peer-ca: %w", err)
		}
		f.roots = x509.NewCertPool()
		if !f.roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--peer-ca %s holds no PEM certificate: give the CA that signed the peers' certificates", f.PeerCA)
		}
	}
	return nil
}

func (f *apiFlags) newAPI(kc kafkaconf.Config, reg prometheus.Registerer, log *slog.Logger) *query.Server {
	gatherer, _ := reg.(prometheus.Gatherer) // GET /v1/stages reads the stages' metrics
	f.api = query.New(query.Config{Kafka: kc, Token: f.APIToken, Advertise: f.APIAdvertise, Logger: log, Metrics: reg,
		PeerToken: f.PeerToken, PeerAllow: f.allow, PeerRootCAs: f.roots, Gatherer: gatherer})
	return f.api
}

// attach makes an instance's state answerable, when this process serves
// the API.
func (f *apiFlags) attach(ctx context.Context, in *runtime.Instance) {
	if f.api != nil {
		f.api.Attach(ctx, in)
	}
}

// mountAPI adds the query API and the web console that reads it
// (processors/console, /console/) to a mux, when there is one.
func mountAPI(mux *http.ServeMux, api *query.Server, addr string) {
	if api == nil {
		return
	}
	api.Listening(addr)
	mux.Handle("/v1/", api.Handler())
	// Handler refuses only a RulesURL that is no URL, and none is set here.
	if h, err := console.Handler(console.Config{TokenRequired: api.TokenRequired()}); err == nil {
		mux.Handle("/console", h)
		mux.Handle(console.Path, h)
	}
}
