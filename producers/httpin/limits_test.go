package httpin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usagestream/usagestream/producers/adapter"
)

// countingWriter records how an answer is written: its total size and its
// largest single Write, which shows whether it was streamed.
type countingWriter struct {
	hdr          http.Header
	code, writes int
	total, max   int
	body         strings.Builder
}

func (c *countingWriter) Header() http.Header  { return c.hdr }
func (c *countingWriter) WriteHeader(code int) { c.code = code }
func (c *countingWriter) Write(b []byte) (int, error) {
	c.writes++
	c.total += len(b)
	c.max = max(c.max, len(b))
	c.body.Write(b)
	return len(b), nil
}

// TestEmptyObjectLinesAreBounded: 100,000 `{}` lines (five reasons each)
// are refused with 413 before any parsing; under the line cap the answer
// lists only the first MaxErrors rejections with their errors, counts every
// reason, and is streamed in small writes.
func TestEmptyObjectLinesAreBounded(t *testing.T) {
	h := Handler(&recorder{}, Config{})
	code, resp := post(t, h, "", strings.Repeat("{}\n", 100_000))
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(resp.Error, "100000 reads") {
		t.Fatalf("100k lines: %d %+v", code, resp.Error)
	}
	const n = 5000
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(strings.Repeat("{}\n", n)))
	w := &countingWriter{hdr: http.Header{}}
	h.ServeHTTP(w, req)
	if w.code != http.StatusOK {
		t.Fatalf("status %d", w.code)
	}
	var got Response
	if err := jsonUnmarshal(w.body.String(), &got); err != nil {
		t.Fatal(err)
	}
	withErrors := 0
	for _, r := range got.Results {
		if len(r.Errors) > 0 {
			withErrors++
		}
	}
	if got.Rejected != n || withErrors != DefaultMaxErrors || got.ErrorsOmitted != n-DefaultMaxErrors || got.Counts["REQUIRED"] != 5*n {
		t.Fatalf("rejected %d, %d with errors, %d omitted, counts %v", got.Rejected, withErrors, got.ErrorsOmitted, got.Counts)
	}
	// 5000 bare results are ~40 bytes each; with every error listed it was ~2.5 MB.
	if w.total > 400_000 || w.max > 16<<10 || w.writes < 5 {
		t.Fatalf("answer of %d bytes in %d writes, the largest %d: not bounded and streamed", w.total, w.writes, w.max)
	}
}

// blocking is a Sender that holds every batch until released.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) SendBatch(_ context.Context, reads []adapter.Read) []error {
	b.entered <- struct{}{}
	<-b.release
	return make([]error, len(reads))
}

func (b *blocking) Reject(context.Context, ...adapter.Rejection) error { return nil }

// TestConcurrentRequestsAboveTheLimit: with one request being served and a
// limit of one, the next is answered 503 with Retry-After at once.
func TestConcurrentRequestsAboveTheLimit(t *testing.T) {
	b := &blocking{entered: make(chan struct{}), release: make(chan struct{})}
	h := Handler(b, Config{MaxConcurrent: 1})
	line := `{"service_point_id":"SP1","interval_end":"2024-06-01T00:15:00-04:00","minutes":15,"value":1,"units":"KWH"}` + "\n"
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if code, _ := post(t, h, "", line); code != http.StatusOK {
			t.Errorf("first request: %d", code)
		}
	}()
	<-b.entered
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(line))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("second request: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	close(b.release)
	wg.Wait()
}

// TestLargeContentLengthAnsweredBeforeTheBody: a request announcing a huge
// body and sending none gets 401 without the token and 413 with it, at once:
// the body is never waited for.
func TestLargeContentLengthAnsweredBeforeTheBody(t *testing.T) {
	ts := httptest.NewServer(Handler(&recorder{}, Config{Token: "tok"}))
	defer ts.Close()
	for _, c := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Authorization: Bearer tok\r\n", http.StatusRequestEntityTooLarge}} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: 1000000000\r\n\r\n", Path, c.auth)
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: no answer before the body: %v", c.auth, err)
		}
		if resp.StatusCode != c.want {
			t.Errorf("%q: %d, want %d", c.auth, resp.StatusCode, c.want)
		}
		conn.Close()
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
