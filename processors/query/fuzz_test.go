package query

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/usagestream/usagestream/internal/kafkaconf"
)

// FuzzPathID: the ids in the query API's paths, through the handler (no
// processors attached, so an id that passes validation meets 503).
// escaped: id is sent percent-encoded as one path segment, so the handler
// sees exactly id; otherwise id is the raw segment as a client may send it.
//
// Properties: no panic; an id is refused with 400 and a JSON error naming
// the field when, and only when, it is empty, longer than 256 bytes, not
// UTF-8, has surrounding spaces or holds a control character (checked here
// independently of checkID); an id that is accepted is none of those.
func FuzzPathID(f *testing.F) {
	for _, s := range []string{"SP1", "", " SP1", "SP1\t", "a/b", "%ff", "%00", "..", ".", "\xff",
		strings.Repeat("x", 256), strings.Repeat("x", 257), strings.Repeat("é", 128), "SP\u00a0", "SP\u2028", "%2e%2e", "a?b#c"} {
		f.Add(uint8(0), true, s, "P1")
		f.Add(uint8(2), false, "C1", s)
	}
	f.Add(uint8(1), false, "C%201", "P1")
	h := New(Config{}).Handler()
	f.Fuzz(func(t *testing.T, endpoint uint8, escaped bool, id, premise string) {
		if len(id) > 4096 || len(premise) > 4096 {
			return
		}
		seg := func(s string) string {
			if escaped {
				return url.PathEscape(s)
			}
			return s
		}
		var raw, field, sent string
		switch endpoint % 3 {
		case 0:
			raw, field, sent = "/v1/service-points/"+seg(id), "service_point_id", id
		case 1:
			raw, field, sent = "/v1/customers/"+seg(id), "customer_id", id
		default:
			raw, field, sent = "/v1/customers/"+seg(id)+"/premises/"+seg(premise), "premise_id", premise
		}
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return // no client can send it
		}
		if !escaped {
			// The handler sees the path as the server decodes it.
			parts := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
			if len(parts) != 3 && len(parts) != 5 || u.RawQuery != "" || u.Fragment != "" {
				return // another endpoint, or not an id at all
			}
			p, err := url.PathUnescape(parts[len(parts)-1])
			if err != nil {
				return
			}
			sent = p
			if len(parts) == 5 {
				if id, err = url.PathUnescape(parts[2]); err != nil {
					return
				}
			}
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL, r.RequestURI = u, raw
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if (w.Code >= 300 && w.Code < 400 || w.Code == http.StatusNotFound) && path.Clean(u.Path) != u.Path {
			// The mux cleans the decoded path (".", "..", "//", an id "/"):
			// it redirects or finds no endpoint, and the handler never sees
			// the id. Such ids cannot be asked for (reported, issue 13).
			return
		}
		var body Error
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" {
			t.Fatalf("status %d without a JSON error: %q", w.Code, w.Body.String())
		}
		// The premise endpoint checks the premise, then the customer id.
		bad := badID(sent)
		if endpoint%3 == 2 && bad == "" && badID(id) != "" {
			field, bad = "customer_id", badID(id)
		}
		switch {
		case w.Code == http.StatusNotFound && (sent == "" || id == ""):
			// An empty segment matches no pattern ("/v1/customers/").
		case bad != "":
			if w.Code != http.StatusBadRequest || !strings.Contains(body.Error, field) {
				t.Fatalf("%s %q (%s): status %d %q, want 400 naming %s", field, sent, bad, w.Code, body.Error, field)
			}
		case w.Code != http.StatusServiceUnavailable:
			t.Fatalf("valid %s %q: status %d %q, want 503 (no processors)", field, sent, w.Code, body.Error)
		}
		if w.Code == http.StatusBadRequest && bad == "" {
			t.Fatalf("%s %q refused though valid: %q", field, sent, body.Error)
		}
	})
}

// badID says what is wrong with an id, or "".
func badID(id string) string {
	switch {
	case id == "":
		return "empty"
	case len(id) > 256:
		return "too long"
	case !utf8.ValidString(id):
		return "not UTF-8"
	case strings.TrimSpace(id) != id:
		return "spaces"
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return "control"
		}
	}
	return ""
}

// FuzzEndpointValue: the values of query-endpoints.v1 (an instance's
// advertised address, keyed by its group instance id), as the directory
// keeps them and the API uses them: the address looked up for a member, the
// 421 answer naming it, and the request passed on to it.
//
// Properties: no panic; the address of a member is exactly its latest
// value, and none once a tombstone deleted it; the 421 answer is valid JSON
// that names the member and the address (as JSON can carry them: invalid
// UTF-8 becomes U+FFFD); passing a request on to the address either fails to
// build or, for an address that is a base URL, goes to its host and keeps
// the asked path and query.
func FuzzEndpointValue(f *testing.F) {
	f.Add("usagestream-1", "http://host-1:8090", false)
	f.Add("usagestream-1", "", false)
	f.Add("usagestream-1", "http://host-1:8090", true)
	f.Add("", "http://[::1]:8090", false)
	f.Add("m\xff", "http://h\xff", false)
	f.Add("m", "file:///etc/passwd", false)
	f.Add("m", "http://h:99999999999", false)
	f.Add("m", "http://h/%zz", false)
	f.Add("m", "h o s t", false)
	f.Add("m", "\x00", false)
	f.Fuzz(func(t *testing.T, member, value string, tombstone bool) {
		if len(member) > 4096 || len(value) > 4096 {
			return
		}
		d := newDirectory(kafkaconf.Config{})
		urls := map[string]string{"other": "http://other:8090"}
		// As url() builds its table from the topic: a value, then perhaps
		// a tombstone for the same key.
		urls[member] = value
		if tombstone {
			delete(urls, member)
		}
		d.urls, d.urlsTaken = urls, time.Now()
		got, err := d.url(context.Background(), member)
		if err != nil {
			t.Fatalf("a fresh table: %v", err)
		}
		want := value
		if tombstone {
			want = ""
		}
		if got != want {
			t.Fatalf("address of %q is %q, want %q", member, got, want)
		}
		if got == "" {
			return
		}
		owner := Owner{Member: member, URL: got, Partition: 3}
		w := httptest.NewRecorder()
		writeError(w, http.StatusMisdirectedRequest, "partition 3 of customer lives on instance "+member, &owner)
		var e Error
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Owner == nil {
			t.Fatalf("421 answer is not the JSON error: %v %q", err, w.Body.String())
		}
		if e.Owner.Member != asJSON(member) || e.Owner.URL != asJSON(got) || e.Owner.Partition != 3 {
			t.Fatalf("421 answer names %+v, want %+v", *e.Owner, owner)
		}
		// remote() passes a request on to got+path without parsing got, so
		// only a base URL (http or https, a host, no query or fragment)
		// keeps the host and path asked: anything else may send it, with
		// the caller's token, elsewhere ("A000:/" + "/v1/..." asks host
		// v1). Not refused yet (reported, issue 13); checked for base URLs.
		base, err := url.Parse(got)
		if err != nil || base.Scheme != "http" && base.Scheme != "https" || base.Host == "" || strings.ContainsAny(got, "?#") {
			return
		}
		const asked = "/v1/customers/C1?x=1"
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, got+asked, nil)
		if err != nil {
			return // remote() answers 421 naming the owner
		}
		if req.URL.Host != strings.TrimSuffix(base.Host, ":") || !strings.HasSuffix(req.URL.RequestURI(), asked) {
			t.Fatalf("passing %s on to %q asks %s for %q", asked, got, req.URL.Host, req.URL.RequestURI())
		}
	})
}

// asJSON is s as a JSON string carries it: each invalid UTF-8 byte U+FFFD.
func asJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError for an invalid byte, n == 1
		i += n
	}
	return b.String()
}
