// Package httpserve builds the HTTP servers usagestream runs (health,
// metrics, the query API, POST /v1/intervals, the embedded registry) with the
// same limits, so that no client can hold a connection or memory without
// bound: a client that sends headers and then nothing, or a body at a
// trickle, is cut off; too many connections wait in the kernel's backlog.
package httpserve

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bound what one client can hold.
type Limits struct {
	ReadHeaderTimeout time.Duration // the request line and headers
	// ReadTimeout bounds reading a whole request, body included: an 8 MiB
	// NDJSON body needs well under a minute even on a slow link.
	ReadTimeout time.Duration
	// WriteTimeout bounds a handler and its answer (an ingest of a full
	// request to Kafka included).
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration // a kept-alive connection between requests
	MaxHeaderBytes int
	MaxConns       int // open connections at once; more wait to be accepted
}

// Defaults are the limits of every server unless a command says otherwise.
func Defaults() Limits {
	return Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		MaxConns:          256,
	}
}

// Server is an http.Server for h with the limits.
func Server(h http.Handler, l Limits) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
		WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout, MaxHeaderBytes: l.MaxHeaderBytes}
}

// Listen listens on addr with at most l.MaxConns connections open.
func Listen(addr string, l Limits) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s (in use? choose another address): %w", addr, err)
	}
	return Limit(ln, l), nil
}

// Limit caps the connections of an existing listener.
func Limit(ln net.Listener, l Limits) net.Listener {
	if l.MaxConns <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, l.MaxConns)
}
