package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/processors/console"
)

func serve(t *testing.T, cfg console.Config) *httptest.Server {
	t.Helper()
	h, err := console.Handler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestHandlerServesTheAssetsWithSecurityHeaders: the page, its script, its
// style and its icon are served with their types; every answer, a 404
// included, carries a CSP with no inline script and no framing, nosniff and
// no referrer; the page loads nothing from another origin; the template
// file itself and unknown kinds of file are not served.
func TestHandlerServesTheAssetsWithSecurityHeaders(t *testing.T) {
	t.Parallel()
	ts := serve(t, console.Config{RulesURL: "https://example.test/rules.md"})
	for path, typ := range map[string]string{
		"/console/": "text/html", "/console/app.js": "text/javascript", "/console/style.css": "text/css", "/console/icon.svg": "image/svg+xml",
		"/console/index.html": "", "/console/console.go": "", "/console/nope.js": "",
	} {
		resp, body := fetch(t, ts.URL+path)
		if typ == "" {
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", path, resp.StatusCode)
			}
		} else if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) || body == "" {
			t.Errorf("%s: %d %q, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), typ)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline or eval'd script", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
	_, page := fetch(t, ts.URL+"/console/")
	if !strings.Contains(page, `<meta name="rules-url" content="https://example.test/rules.md">`) {
		t.Errorf("the page does not carry the rules URL:\n%s", page)
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "http://") || strings.Contains(page, "//cdn") || strings.Contains(page, "onclick=") || strings.Contains(page, "onload=") {
		t.Errorf("the page has an inline script or a remote resource:\n%s", page)
	}
	_, js := fetch(t, ts.URL+"/console/app.js")
	for _, bad := range []string{"innerHTML", "eval(", "localStorage", "?token", "access_token"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %q: values reach the page as text only, and the token stays in sessionStorage and a header", bad)
		}
	}
	if resp, _ := fetch(t, ts.URL+"/console"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/console/" {
		t.Errorf("/console: %d to %q, want a redirect to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestRulesURLIsChecked: a rules URL that is no http(s) URL or path (a
// javascript: URL would become every rule link) is refused.
func TestRulesURLIsChecked(t *testing.T) {
	t.Parallel()
	if _, err := console.Handler(console.Config{RulesURL: "javascript:alert(1)"}); err == nil {
		t.Error("a javascript: rules URL was accepted")
	}
	h, err := console.Handler(console.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/console/", nil))
	if !strings.Contains(w.Body.String(), console.DefaultRulesURL) {
		t.Error("the default rules URL is not on the page")
	}
}
