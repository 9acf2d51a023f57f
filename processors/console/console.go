// Package console is the operator's web console: a page that answers "why
// is this customer not getting reports?" from the query API
// (processors/query, docs/openapi.yaml). It serves only static assets,
// embedded in the binary so that it works with no internet; every datum it
// shows is fetched by the page from /v1/ with the bearer token the operator
// typed, kept in the tab's sessionStorage and sent as a header, never in a
// URL. The console itself holds no data and no token: serving its assets
// needs none.
package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Path is where the console is served.
const Path = "/console/"

// DefaultRulesURL is where a rule id links to: the rule catalogue, one
// anchor per id (docs/rules.md#U2).
const DefaultRulesURL = "https://github.com/usagestream/usagestream/blob/main/docs/rules.md"

// Config configures the console.
type Config struct {
	// RulesURL is the rule catalogue a rule id links to, with "#" and the
	// id appended (default DefaultRulesURL).
	RulesURL string
	// TokenRequired: the query API asks for a bearer token, so the page
	// asks for it before its first request instead of being refused once.
	TokenRequired bool
}

// securityHeaders are sent with every answer: scripts and styles only from
// the console's own files (no inline script, so an id that slipped through
// into the page cannot run), data only from this origin, never framed.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
	"Cache-Control":          "no-store",
}

// Handler serves the console under Path; mount it on the query API's mux.
func Handler(cfg Config) (http.Handler, error) {
	if cfg.RulesURL == "" {
		cfg.RulesURL = DefaultRulesURL
	}
	if !strings.HasPrefix(cfg.RulesURL, "https://") && !strings.HasPrefix(cfg.RulesURL, "http://") && !strings.HasPrefix(cfg.RulesURL, "/") {
		return nil, fmt.Errorf("console: rules URL %q is neither an http(s) URL nor a path", cfg.RulesURL)
	}
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	tmpl, err := template.ParseFS(files, "index.html")
	if err != nil {
		return nil, fmt.Errorf("console: parsing index.html: %w", err)
	}
	var index bytes.Buffer
	if err := tmpl.Execute(&index, cfg); err != nil {
		return nil, fmt.Errorf("console: rendering index.html: %w", err)
	}
	page := index.Bytes()
	assets := http.FileServerFS(files)
	started := time.Now()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path, http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET "+Path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeContent(w, r, "index.html", started, bytes.NewReader(page))
	})
	mux.HandleFunc("GET "+Path+"{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		switch path.Ext(name) {
		case ".js", ".css", ".svg":
		default:
			// index.html is served rendered, at Path only.
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		assets.ServeHTTP(w, r2)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		mux.ServeHTTP(w, r)
	}), nil
}
