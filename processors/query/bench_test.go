package query

import (
	"io"
	"net/http"
	"net/url"
	"testing"
)

// BenchmarkServicePointLocal answers GET /v1/service-points/{id} from the
// local store over HTTP (loopback, keep-alive), keys taken in turn from a
// generated file's service points (14 months each).
func BenchmarkServicePointLocal(b *testing.B) {
	f := newFixture(b)
	_, ts, _ := f.start(b, b.TempDir(), "tok")
	waitCaughtUp(b, f)
	var ids []string
	for id := range stage1(b, f.files) {
		ids = append(ids, "/v1/service-points/"+url.PathEscape(id))
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
	req.Header.Set("Authorization", "Bearer tok")
	i := 0
	b.ResetTimer()
	for b.Loop() {
		u, _ := url.Parse(ts.URL + ids[i%len(ids)])
		req.URL = u
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", ids[i%len(ids)], resp.StatusCode)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		i++
	}
}
