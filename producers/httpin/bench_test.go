package httpin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
)

// BenchmarkPost: NDJSON bodies of 5,000 reads POSTed over HTTP (a real
// listener on 127.0.0.1) to the endpoint, its client writing into the
// embedded broker (in this process); one op is one read. reads/s is the
// figure of docs/intervals.md (target: 200,000 reads/s on 2 cores).
//
//	go test -run X -bench Post -benchtime 400000x ./producers/httpin/
func BenchmarkPost(b *testing.B) {
	env := kafkatest.Start(b)
	c := newClient(b, env.Kafka)
	defer c.Close(context.Background())
	srv := httptest.NewServer(Handler(c, Config{}))
	defer srv.Close()
	const perBody = 5000
	start := time.Date(2024, 6, 1, 0, 0, 0, 0, time.FixedZone("", -4*3600))
	bodies := make([][]byte, 0, 16)
	for k := 0; k < 16; k++ {
		var buf bytes.Buffer
		for i := 0; i < perBody; i++ {
			end := start.Add(time.Duration(k*5+i/1000+1) * 15 * time.Minute)
			fmt.Fprintf(&buf, `{"service_point_id":"SP-E-%05d","interval_end":%q,"minutes":15,"value":0.25,"units":"KWH","is_estimate":"A"}`+"\n", i%1000, end.Format(time.RFC3339))
		}
		bodies = append(bodies, buf.Bytes())
	}
	want := fmt.Sprintf(`{"lines":%d,"accepted":%d,"rejected":0,"failed":0,`, perBody, perBody)
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += perBody {
		resp, err := http.Post(srv.URL+Path, "application/x-ndjson", bytes.NewReader(bodies[(sent/perBody)%len(bodies)]))
		if err != nil {
			b.Fatal(err)
		}
		// The counts come first: the harness checks them and reads the
		// rest unparsed, so that it takes little of the 2 cores.
		var head [64]byte
		n, _ := io.ReadFull(resp.Body, head[:])
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.HasPrefix(head[:n], []byte(want)) {
			b.Fatalf("%d: %s %v", resp.StatusCode, head[:n], err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}
